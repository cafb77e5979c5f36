"""INCONCLUSIVE buys evidence before it blocks: more cases (or repeats) in stages, each look at its share of the error.

A blocking rule that can be extended (planning.RuleSchedule) is judged at look j with the one-sided
confidence its schedule fixed before the run: the rule's error alpha is spent over its looks by a spending
function of the information fraction n_j / n_max, with group-sequential boundaries that account for the
looks sharing data (stats.group_sequential_levels; to the normal approximation Wilson and Tango make), or,
for an exact Clopper-Pearson rule, the union bound (stats.alpha_per_look: the chance that any look passes
a rule that should not pass stays below the sum of the looks' levels, alpha). The evidence a look adds is
fixed in advance too: the first cases of the rule's own extension order (or its next repeats), whatever
other rules did, so each look's data is a fixed set. The run stops extending once every blocking rule is
decided, once a rule already blocks (more evidence cannot change the decision), or once the budget is
spent; only then does INCONCLUSIVE block.

The evidence comes from a callable, so the pipeline uses it with real model calls and tests with a
synthetic target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import polars as pl

from evalplatform import results as rt
from evalplatform.planning import RuleSchedule
from evalplatform.policy.evaluate import (
    Decision,
    RuleResult,
    decision_from_rules,
    evaluate_rule,
    evaluate_rules,
    selection_expr,
)
from evalplatform.policy.model import Policy, Rule
from evalplatform.suite import Adaptive


@dataclass(frozen=True)
class EvidenceRequest:
    """The (case, repeat) runs a look asks for: new cases with the run's repeats, or more repeats of cases."""

    look: int
    runs: tuple[tuple[str, int], ...]

    @property
    def cases(self) -> list[str]:
        return sorted({c for c, _ in self.runs})


@dataclass
class Evidence:
    """What a source returns: canonical result rows for the requested runs, and what they cost."""

    results: pl.DataFrame
    cost_usd: float = 0.0


EvidenceSource = Callable[[EvidenceRequest], Evidence]


@dataclass
class AdaptiveOutcome:
    decision: Decision
    results: pl.DataFrame  # the run's results with every added row
    looks: list[dict[str, Any]] = field(default_factory=list)
    cost_usd: float = 0.0

    @property
    def added_runs(self) -> int:
        return sum(look.get("runs_added", 0) for look in self.looks)


def _at(rule: Rule, conf: float) -> Rule:
    return rule if conf == rule.confidence else rule.model_copy(update={"confidence": conf})


def _extendable(schedules: Mapping[str, RuleSchedule], rule: Rule) -> RuleSchedule | None:
    sched = schedules.get(rule.id)
    return sched if sched is not None and sched.extension and len(sched.looks) > 1 else None


def _note(result: RuleResult, sched: RuleSchedule, look: int, history: list[dict]) -> RuleResult:
    """The rule's result at a look, carrying every look so far (what reports show)."""
    n = result.numbers
    history = history + [{"look": look + 1, "n": n.get("n"), "lower": n.get("lower"), "upper": n.get("upper"),
                          "confidence": sched.confs[look], "outcome": result.outcome,
                          "cases_added": sched.extra_cases[look], "repeats_added": sched.extra_repeats[look]}]
    result.numbers = {**n, "look": look + 1, "max_looks": len(sched.looks), "looks": history}
    added = (f", +{sched.extra_cases[look]} cases" if sched.extra_cases[look] else "") + \
        (f", +{sched.extra_repeats[look]} repeats" if sched.extra_repeats[look] else "")
    result.reason += f" (look {look + 1} of {len(sched.looks)} at {sched.confs[look]:.2%}{added})"
    return result


def _rows_for(results: pl.DataFrame, sched: RuleSchedule, look: int, planned: set[str], repeats: int) -> pl.DataFrame:
    """The rule's own evidence at a look: the run's cases and the extra ones its schedule added by then."""
    if sched.extension == "cases":
        keep = planned | set(sched.cases_at(look))
        return results.filter(pl.col("case_id").is_in(list(keep)))
    return results.filter(pl.col("case_id").is_in(list(planned)) & (pl.col("repeat") < repeats + sched.extra_repeats[look]))


def decide_adaptively(
    policy: Policy,
    results: pl.DataFrame,
    baseline: pl.DataFrame | None,
    schedules: Mapping[str, RuleSchedule],
    evidence: EvidenceSource | None,
    *,
    adaptive: Adaptive,
    repeats: int,
    calibrations=None,
    input_warnings: Iterable[str] = (),
    policy_hash: str | None = None,
    results_label: str = "results",
    baseline_label: str = "baseline",
    judges_not_allowed: Mapping[str, str] | None = None,
    scope: Mapping[str, tuple[str, str]] | None = None,
) -> AdaptiveOutcome:
    """Decide the policy on `results`, extending undecided blocking rules with evidence until decided.

    `schedules` (rule id -> schedule, from the tier's plan) says which rules may be extended and how;
    rules without one get a single look at their own confidence.
    """
    planned = set(results["case_id"].unique().to_list()) if results.height else set()
    looked = {r.id: 0 for r in policy.rules}
    first = policy.model_copy(update={"rules": [
        _at(r, s.confs[0]) if (s := _extendable(schedules, r)) else r for r in policy.rules]})
    by_id = {r.rule_id: r for r in evaluate_rules(
        first, results, baseline, calibrations=calibrations, input_warnings=input_warnings,
        results_label=results_label, baseline_label=baseline_label, judges_not_allowed=judges_not_allowed,
        scope=scope)}
    history: dict[str, list[dict]] = {}
    for rule in policy.rules:
        if (sched := _extendable(schedules, rule)) is not None:
            by_id[rule.id] = _note(by_id[rule.id], sched, 0, [])
            history[rule.id] = by_id[rule.id].numbers["looks"]
    looks_log: list[dict[str, Any]] = []
    spent = 0.0
    kwargs = dict(calibrations=calibrations, input_warnings=input_warnings, import_warnings=policy.import_warnings,
                  judges_not_allowed=judges_not_allowed, scope=scope)
    while True:
        pending = [r for r in policy.rules if (s := _extendable(schedules, r)) is not None
                   and by_id[r.id].outcome == "INCONCLUSIVE" and by_id[r.id].blocks and looked[r.id] + 1 < len(s.looks)]
        if not pending:
            break
        blocking = sorted(r.rule_id for r in by_id.values() if r.blocks and r.outcome != "INCONCLUSIVE")
        stop = None
        if blocking:
            stop = f"not extended: rule {blocking[0]} blocks already ({by_id[blocking[0]].outcome})"
        elif evidence is None or not adaptive.enabled:
            stop = "not extended: no evidence source"
        if stop:
            looks_log.append({"stopped": stop})
            break
        # Empty when another rule already asked for every case this look needs: then it just looks again.
        runs = _requested(pending, schedules, looked, results, repeats, planned)
        estimate = _cost_estimate(results, len(runs))
        if adaptive.max_cost_usd is not None and spent + estimate > adaptive.max_cost_usd:
            looks_log.append({"stopped": f"not extended: {len(runs)} more runs would cost about ${estimate:.4f}, "
                                         f"over the budget of ${adaptive.max_cost_usd:g} (${spent:.4f} spent)"})
            break
        look_no = max(looked[r.id] for r in pending) + 2
        cost = 0.0
        if runs:
            got = evidence(EvidenceRequest(look_no, tuple(runs)))
            cost = float(got.cost_usd or 0.0)
            spent += cost
            if got.results.height:
                results = pl.concat([results, rt.conform(got.results)], how="vertical_relaxed")
        entry: dict[str, Any] = {"look": look_no, "runs_added": len(runs),
                                 "cases_added": sorted({c for c, _ in runs} - planned), "cost_usd": cost, "rules": {}}
        for rule in pending:
            sched = schedules[rule.id]
            looked[rule.id] += 1
            j = looked[rule.id]
            rows = _rows_for(results, sched, j, planned, repeats)
            result = evaluate_rule(_at(rule, sched.confs[j]), rows, baseline, **kwargs)
            by_id[rule.id] = _note(result, sched, j, history[rule.id])
            history[rule.id] = by_id[rule.id].numbers["looks"]
            entry["rules"][rule.id] = {"n": result.numbers.get("n"), "lower": result.numbers.get("lower"),
                                       "upper": result.numbers.get("upper"), "confidence": sched.confs[j],
                                       "outcome": result.outcome}
        looks_log.append(entry)
    final = decision_from_rules(policy, [by_id[r.id] for r in policy.rules], policy_hash, list(input_warnings))
    return AdaptiveOutcome(final, results, looks_log, spent)


def _requested(pending: Sequence[Rule], schedules: Mapping[str, RuleSchedule], looked: Mapping[str, int],
               results: pl.DataFrame, repeats: int, planned: set[str]) -> list[tuple[str, int]]:
    """(case, repeat) runs the next look of the pending rules needs and the results do not hold yet."""
    have = set(zip(results["case_id"].to_list(), results["repeat"].to_list())) if results.height else set()
    wanted: list[tuple[str, int]] = []
    for rule in pending:
        sched = schedules[rule.id]
        j = looked[rule.id] + 1
        if sched.extension == "cases":
            wanted += [(c, r) for c in sched.cases_at(j) for r in range(repeats)]
        else:
            cases = results.filter(selection_expr(rule.select) & pl.col("case_id").is_in(list(planned)))
            for case in sorted(set(cases["case_id"].to_list())):
                wanted += [(case, r) for r in range(repeats, repeats + sched.extra_repeats[j])]
    seen: set[tuple[str, int]] = set()
    out = []
    for run in wanted:
        if run not in have and run not in seen:
            seen.add(run)
            out.append(run)
    return out


def _cost_estimate(results: pl.DataFrame, n_runs: int) -> float:
    """Expected cost of n more case runs at the run's mean cost per call so far."""
    calls = rt.call_rows(results) if results.height else results
    if not n_runs or calls.height == 0:
        return 0.0
    mean = calls["cost_usd"].fill_null(0.0).mean()
    return float(mean or 0.0) * n_runs


def summary(outcome: AdaptiveOutcome) -> dict[str, Any]:
    """What the decision records about the extension: every look, the evidence added and its cost."""
    return {"looks": outcome.looks, "runs_added": outcome.added_runs, "cost_usd": round(outcome.cost_usd, 6),
            "cases_added": sorted({c for look in outcome.looks for c in look.get("cases_added", [])})}
