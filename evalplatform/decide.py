"""A scored run's release decision: the suite's policy (or its pass-rate floor) against the promoted baseline."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from evalplatform.history import HistoryStore
from evalplatform.policy import Decision, JudgeCalibration, Policy, Rule, evaluate_policy, load_policy
from evalplatform.policy.evaluate import RuleResult
from evalplatform.provenance import canonical_json, sha256_text
from evalplatform.suite import Gate, LoadedSuite

if TYPE_CHECKING:
    from evalplatform.adaptive import AdaptiveOutcome, EvidenceSource
    from evalplatform.planning import TierPlan
    from evalplatform.tiers import TierScope

FLOOR_RULE = "pass_rate_at_least_floor"


@dataclass
class EffectivePolicy:
    policy: Policy
    sha256: str
    source: str  # the policy file, or "suite gate" when the suite has none


def floor_policy(suite_name: str, gate: Gate) -> Policy:
    """The suite's `gate:` as a one-rule policy, with the floor gate's exact semantics."""
    return Policy.model_validate({
        "name": f"{suite_name}-floor", "suite": suite_name,
        "rules": [{
            "id": FLOOR_RULE, "description": f"Case pass rate is at least {gate.pass_rate_floor:.0%} "
            f"(one-sided {gate.confidence:.0%} lower bound).",
            "metric": "pass_rate", "bound": {"min": gate.pass_rate_floor}, "confidence": gate.confidence,
            "errors": "exclude", "max_error_share": 0.05, "severity": "blocking",
        }],
    })


def _advisory_scorers(suite: LoadedSuite) -> list[str]:
    """Scorers the suite marks `advisory: true` (judges that report but must not gate)."""
    return sorted(s.id for s in suite.spec.scorers if getattr(s, "advisory", False))


def _with_advisory(policy: Policy, advisory: list[str]) -> Policy:
    merged = sorted(set(policy.advisory_scorers) | set(advisory))
    if merged == sorted(policy.advisory_scorers):
        return policy
    # Only what the file said: a re-validated default would count as written (see Rule's unused settings).
    return Policy.model_validate({**policy.model_dump(mode="json", exclude_unset=True, exclude_none=True),
                                  "advisory_scorers": merged})


def effective_policy(suite: LoadedSuite) -> EffectivePolicy:
    """The suite's policy file (or its floor as a policy), with the suite's advisory scorers kept out of gating."""
    advisory = _advisory_scorers(suite)
    if suite.spec.policy:
        loaded = load_policy(suite.root / suite.spec.policy)
        return EffectivePolicy(_with_advisory(loaded.policy, advisory), loaded.sha256, str(loaded.path))
    pol = _with_advisory(floor_policy(suite.name, suite.spec.gate), advisory)
    return EffectivePolicy(pol, sha256_text(canonical_json(pol.model_dump(mode="json"))), "suite gate")


# At most this many promoted runs of the baseline's target are pooled into it (the newest first).
MAX_POOLED_RUNS = 5


@dataclass
class BaselineRuns:
    """The baseline a run compares against: the run of record, and every promoted run of the same target
    pooled into one frame (repeats renumbered run after run), or nothing."""

    run_id: str | None = None
    frame: pl.DataFrame | None = None
    run_ids: list[str] = field(default_factory=list)


def _target_identity(run: dict[str, Any] | None) -> tuple | None:
    """What makes two runs the same baseline: the model, its parameters (the seed aside: a re-run under
    another seed samples the same model), the prompt and the judges."""
    if not run:
        return None
    params = {k: v for k, v in (run.get("target_params") or {}).items() if k != "seed"}
    return (run.get("target_model"), canonical_json(params), run.get("prompt_hash"),
            canonical_json(run.get("judge_pins") or {}))


def _pool(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Runs of one target as one baseline: the first run's rows, then the other runs' rows of cases whose
    content is unchanged (or that the first did not run), their repeats numbered after the ones before."""
    first = frames[0]
    hashes = first.group_by("case_id").agg(pl.col("case_hash").max().alias("_first_hash"))
    out, offset = [first], int(first["repeat"].max()) + 1 if first.height else 0
    for frame in frames[1:]:
        if frame.height == 0:
            continue
        same = frame.join(hashes, on="case_id", how="left").filter(
            pl.col("_first_hash").is_null() | pl.col("case_hash").is_null()
            | (pl.col("case_hash") == pl.col("_first_hash"))).drop("_first_hash")
        out.append(same.with_columns((pl.col("repeat") + offset).cast(pl.Int32).alias("repeat")))
        offset += int(frame["repeat"].max()) + 1
    return pl.concat(out, how="vertical_relaxed")


def baseline_runs(store: HistoryStore, suite_name: str, run_id: str | None,
                  tier: str | None = None) -> BaselineRuns:
    """The baseline a run of `tier` compares against: the tier's promoted baseline, else the suite's latest of
    any tier; none when that is the run itself (a run compared with itself shows no change).

    The baseline is a sample too: one lucky run would set the bar high, an unlucky one low. So every other
    promoted run of the same target (same model, parameters, prompt and judges; any tier, up to
    MAX_POOLED_RUNS, newest first, never the run itself) is pooled in: a relative rule then compares each
    case with the mean over all of the baseline's runs of it (see policy.baseline.compare), and cases a
    nightly baseline ran but the PR baseline did not become comparable.
    """
    base_id = store.latest_baseline(suite_name, tier) if tier is not None else None
    if base_id is None:
        base_id = store.latest_baseline(suite_name)
    if base_id is None or base_id == run_id:
        return BaselineRuns()
    identity = _target_identity(store.get_run(base_id))
    ids = [base_id]
    for entry in store.baseline_history(suite_name, limit=200):
        other = entry["run_id"]
        if len(ids) >= MAX_POOLED_RUNS or other in ids or other == run_id:
            continue
        run = store.get_run(other)
        if run and run.get("status") == "complete" and identity is not None and _target_identity(run) == identity:
            ids.append(other)
    frames = [store.get_results(i) for i in ids]
    return BaselineRuns(base_id, _pool(frames) if len(frames) > 1 else frames[0], ids)


def baseline_for(store: HistoryStore, suite_name: str, run_id: str | None,
                 tier: str | None = None) -> tuple[str | None, pl.DataFrame | None]:
    """The baseline run of record and its (pooled) results: the one rule for the run pipeline and
    `gate --baseline promoted` (see baseline_runs)."""
    found = baseline_runs(store, suite_name, run_id, tier)
    return found.run_id, found.frame


def judge_calibrations(store: HistoryStore, suite: LoadedSuite, rules: Iterable[Rule], *,
                       calibrate: bool = True) -> dict[str, JudgeCalibration]:
    """Calibrations for the judge-corrected `rules`, by scorer id (`judge: {calibration: <id>}`).

    Only a calibration of the judge's current identity counts (a changed rubric or model is stale).
    A trained judge with none yet is calibrated here: its calibration is cross-validation on its
    labels, offline and deterministic, so the PR tier never waits on a manual step for it (unless
    `calibrate=False`: planning only reads). LLM judges are calibrated explicitly (`evalplatform calibrate`,
    or the nightly judge job).
    """
    wanted = {r.judge.calibration for r in rules if r.judge is not None and r.judge.calibration}
    if not wanted:
        return {}
    from evalplatform.judges.calibrate import calibrate_judge, latest_calibration, store_report
    from evalplatform.judges.suites import judges_in_suite
    from evalplatform.judges.trained import TrainedJudge

    out: dict[str, JudgeCalibration] = {}
    for judge in judges_in_suite(suite):
        if judge.id not in wanted:
            continue
        cal = latest_calibration(store, judge.identity().key)
        if cal is None and calibrate and isinstance(judge, TrainedJudge):
            report = calibrate_judge(judge)
            store_report(store, report)
            cal = latest_calibration(store, judge.identity().key)
        if cal is None:
            continue
        m = cal["metrics"]
        if m.get("m_human_pass") and m.get("m_human_fail"):
            out[judge.id] = JudgeCalibration(
                judge_pass_on_human_pass=m["judge_pass_on_human_pass"], m_human_pass=m["m_human_pass"],
                judge_fail_on_human_fail=m["judge_fail_on_human_fail"], m_human_fail=m["m_human_fail"])
    return out


def judges_not_allowed(store: HistoryStore, suite: LoadedSuite, policy: Policy, *,
                       calibrate: bool = True) -> dict[str, str]:
    """Scorer id -> why the suite's judge, as configured now, may not gate (stale, refused, uncalibrated).

    Only judges a rule could read count: those not advisory, and those a rule names. A trained judge
    with no calibration of its identity is calibrated here first, as judge_calibrations does (with
    `calibrate=False`, which only reads, it counts as allowed: the run will calibrate it on first use).
    """
    from evalplatform.judges.calibrate import calibrate_judge, gate_status, latest_calibration, store_report
    from evalplatform.judges.suites import judges_in_suite
    from evalplatform.judges.trained import TrainedJudge

    named = {s for r in policy.rules for s in (r.select.scorers() or [])}
    out: dict[str, str] = {}
    for judge in judges_in_suite(suite):
        if judge.id in policy.advisory_scorers and judge.id not in named:
            continue
        if isinstance(judge, TrainedJudge) and latest_calibration(store, judge.identity().key) is None:
            if not calibrate:
                continue
            store_report(store, calibrate_judge(judge))
        status = gate_status(store, judge)
        if not status.allowed:
            out[judge.id] = f"{status.status}: {'; '.join(status.reasons)}"
    return out


def judges_not_allowed_by_pins(store: HistoryStore, pins: Any) -> dict[str, str]:
    """For a recorded run: scorer id -> why the judge identity it ran with (its `judge_pins`) may not gate,
    by that identity's newest calibration in the history (none, or refused by its floors)."""
    from evalplatform.judges.calibrate import latest_calibration

    out: dict[str, str] = {}
    for scorer, key in sorted((pins if isinstance(pins, dict) else {}).items()):
        cal = latest_calibration(store, str(key))
        if cal is None:
            out[scorer] = (f"uncalibrated or stale: no calibration of the identity the run used ({key}); "
                           "run `evalplatform calibrate`")
        elif not cal.get("allowed"):
            reasons = "; ".join(cal.get("reasons") or []) or "its calibration did not clear the floors"
            out[scorer] = f"refused: {reasons}"
    return out


def decide_run(store: HistoryStore, suite: LoadedSuite, run_id: str, results: pl.DataFrame | None = None,
               record: bool = True, tier: str | None = None) -> Decision:
    """The decision on a run's results against its baseline: one look at every rule's own confidence
    (a re-decision of a stored run; a run being made decides through decide_results)."""
    return decide_results(store, suite, run_id, results, record=record, tier=tier).decision


def recorded_scope(store: HistoryStore, suite: LoadedSuite, run_id: str) -> "TierScope | None":
    """The scorers a recorded run ran (its provenance), or None for a run from before tiers chose them."""
    from evalplatform.tiers import from_record

    run = store.get_run(run_id) or {}
    return from_record(suite, (run.get("provenance") or {}).get("scorers"))


def decide_results(store: HistoryStore, suite: LoadedSuite, run_id: str, results: pl.DataFrame | None = None, *,
                   record: bool = True, tier: str | None = None, plan: "TierPlan | None" = None,
                   evidence: "EvidenceSource | None" = None, scope: "TierScope | None" = None) -> "AdaptiveOutcome":
    """Decide a run, extending its undecided blocking rules with `evidence` as the tier's `plan` schedules.

    Without a plan every rule gets one look at its own confidence. The decision's inputs record the
    baseline (and the runs pooled into it), the plan of the tier and every look; its warnings name the
    rules the plan found unable to decide or likely to block a no-change re-run. `scope` (the scorers the run
    ran; read from a recorded run's provenance when not given) makes the rules that read only scorers its tier
    does not run not applicable, and those that would read a judge left uncalled ERROR (evalplatform.tiers).
    """
    from evalplatform.adaptive import AdaptiveOutcome, decide_adaptively, summary
    from evalplatform.suite import Adaptive
    from evalplatform.tiers import rule_scope_of_results

    eff = effective_policy(suite)
    results = results if results is not None else store.get_results(run_id)
    if tier is None:
        tier = (store.get_run(run_id) or {}).get("tier")
    if scope is None:
        scope = recorded_scope(store, suite, run_id)
    base = baseline_runs(store, suite.name, run_id, tier)
    not_allowed = judges_not_allowed(store, suite, eff.policy)
    kwargs = dict(calibrations=judge_calibrations(store, suite, eff.policy.rules), policy_hash=eff.sha256,
                  results_label=f"run {run_id}",
                  baseline_label=f"baseline {base.run_id}" if base.run_id else "baseline",
                  judges_not_allowed=not_allowed,
                  scope=rule_scope_of_results(eff.policy, suite, scope, results))
    if plan is None:
        outcome = AdaptiveOutcome(evaluate_policy(eff.policy, results, base.frame, **kwargs), results)
    else:
        outcome = decide_adaptively(
            eff.policy, results, base.frame, {r.rule_id: r.schedule for r in plan.rules}, evidence,
            adaptive=Adaptive.model_validate(plan.adaptive), repeats=plan.repeats, **kwargs)
    decision = outcome.decision
    decision.inputs = {"run_id": run_id, "baseline_run_id": base.run_id, "policy": eff.source}
    if scope is not None:
        decision.inputs["scorers"] = scope.to_dict()
    if len(base.run_ids) > 1:
        decision.inputs["baseline_pooled_runs"] = list(base.run_ids)
    if plan is not None:
        warnings = plan.warnings()
        decision.warnings = [f"plan: {w}" for w in warnings] + decision.warnings
        decision.inputs["plan"] = plan.to_dict()
        decision.inputs["plan_warnings"] = warnings
        if outcome.looks:
            decision.inputs["adaptive"] = summary(outcome)
    if record:
        store.record_decision(decision.overall, eff.sha256, decision.inputs,
                              [r.to_dict() for r in decision.rules], run_id=run_id)
    return outcome
