"""Per-suite assets, built from each suite's suite.yaml: cases -> scored runs (gated by the policy) -> baseline.

For a suite `demo`:
  demo/golden_cases, demo/regression_set    the datasets (data version = content sha256; checked by GX)
  demo/pr_run, demo/nightly_run             scored runs of the two tiers; their checks are the suite's policy
                                            rules (one multi-asset check reading the decision of record once)
  demo/promoted_baseline                    the runs the promotion policy lets become a tier's baseline
plus the jobs demo_pr and demo_nightly and a nightly schedule. Adding a suite folder and reloading the
code location is all it takes. Everything here is thin: the work is in evalplatform.
"""


import json
from dataclasses import dataclass, field

import dagster as dg
from pydantic import ValidationError

from assets.catalog import SuiteEntry
from assets.config import ScoredRunConfig, run_config_for
from assets.resources import EvalProject
from evalplatform.errors import EvalPlatformError, InputError
from evalplatform.request import ErrorRecord, RunOptions
from evalplatform.run_view import md_cell

TIERS = ("pr", "nightly")
HISTORY_POOL = "history_writer"
RELEASE_CHECK = "release_decision_passed"


@dataclass
class SuiteDefinitions:
    assets: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    jobs: list = field(default_factory=list)
    schedules: list = field(default_factory=list)


def as_failure(err: EvalPlatformError) -> dg.Failure:
    """Our error as a Dagster failure that keeps file, field and fix (a typed record in its metadata)."""
    record = ErrorRecord.of(err)
    return dg.Failure(description=str(err), metadata={"evalplatform_error": dg.MetadataValue.json(
        record.model_dump(mode="json"))}, allow_retries=False)


def _raise_typed(fn):
    """Run fn; an EvalPlatformError leaves as a dg.Failure carrying its ErrorRecord."""
    try:
        return fn()
    except EvalPlatformError as err:
        raise as_failure(err) from None


def _dataset_asset(entry: SuiteEntry, kind: str) -> dg.AssetsDefinition:
    from evalplatform import case_sets

    key = dg.AssetKey([entry.key_prefix, f"{kind}_cases" if kind == "golden" else "regression_set"])
    description = {
        "golden": "The suite's golden cases (JSONL/CSV/Parquet): rows validated by pydantic; data version = sha256 "
                  "of the canonical content.",
        "regression": "The append-only regression set: cases that once failed and must keep passing. A case may be "
                      "retired only by listing it under `retired:` in suite.yaml (with a reason and a date).",
    }[kind]

    @dg.asset(key=key, group_name=entry.name, kinds={"polars"}, description=description,
              tags={"suite": entry.name})
    def _cases(context: dg.AssetExecutionContext, eval_project: EvalProject) -> dg.Output[dict]:
        def build():
            project, store = eval_project.project(), eval_project.store()
            view = case_sets.load_case_set(project, entry.name, kind)
            if kind == "regression":
                store.record_case_set(entry.name, "regression_set", view.version, view.members)
            return view

        with eval_project.reading():
            view = _raise_typed(build)
        return dg.Output(
            {"suite": entry.name, "kind": kind, "version": view.version, "n_cases": view.n,
             "members": view.members},
            data_version=dg.DataVersion(view.version),
            metadata={"dataset_hash": view.version, "n_cases": view.n,
                      "categories": dg.MetadataValue.json(view.categories),
                      "files": dg.MetadataValue.json(view.files),
                      "retired": dg.MetadataValue.json(view.retired)},
        )

    return _cases


def _gx_check(entry: SuiteEntry, asset: dg.AssetsDefinition, kind: str) -> dg.AssetChecksDefinition:
    from evalplatform import case_sets

    @dg.asset_check(asset=asset, name="cases_pass_great_expectations", blocking=True,
                    description="Great Expectations on the batch: at least one case, ids present and unique, "
                                "source and severity in their vocabularies (run once per data version).")
    def _gx(context: dg.AssetCheckExecutionContext, eval_project: EvalProject) -> dg.AssetCheckResult:
        with eval_project.reading():
            summary = _raise_typed(lambda: case_sets.great_expectations_check(
                eval_project.project(), eval_project.store(), entry.name, kind))
        return dg.AssetCheckResult(
            passed=summary["success"], severity=dg.AssetCheckSeverity.ERROR, description=summary["description"],
            metadata={"cached": summary["cached"], "failed": dg.MetadataValue.json(summary["failed"])})

    return _gx


def _dataset_checks(entry: SuiteEntry, golden: dg.AssetsDefinition, regression: dg.AssetsDefinition) -> list:
    from evalplatform import case_sets

    checks = [_gx_check(entry, golden, "golden"), _gx_check(entry, regression, "regression")]

    @dg.asset_check(asset=regression, name="regression_set_is_append_only", blocking=True,
                    description="No case the regression set ever held is missing or changed, unless retired "
                                "explicitly (suite.yaml `retired:` with a reason and a date).")
    def _append_only(context: dg.AssetCheckExecutionContext, eval_project: EvalProject) -> dg.AssetCheckResult:
        with eval_project.reading():
            found = _raise_typed(lambda: case_sets.append_only_violations(
                eval_project.project(), eval_project.store(), entry.name))
        bad = found["missing"] + found["changed"]
        desc = "every case ever held is still there, unchanged" if not bad else (
            "; ".join(filter(None, [
                f"missing: {', '.join(found['missing'][:20])}" if found["missing"] else "",
                f"changed: {', '.join(found['changed'][:20])}" if found["changed"] else "",
            ])) + " (restore them, or retire them in suite.yaml with a reason and a date)")
        return dg.AssetCheckResult(passed=not bad, severity=dg.AssetCheckSeverity.ERROR, description=desc,
                                   metadata={"missing": dg.MetadataValue.json(found["missing"]),
                                             "changed": dg.MetadataValue.json(found["changed"]),
                                             "retired": dg.MetadataValue.json(found["retired"]),
                                             "n_ever_held": found["n_ever_held"]})

    checks.append(_append_only)
    return checks


def _run_asset(entry: SuiteEntry, tier: str, upstream: list[dg.AssetKey],
               judge_keys: list[dg.AssetKey]) -> dg.AssetsDefinition:
    from evalplatform.pipeline import run_for_dagster

    key = dg.AssetKey([entry.key_prefix, f"{tier}_run"])
    description = {
        "pr": "The PR tier: the regression set plus a stratified slice, cheap scorers; decided by the suite's policy.",
        "nightly": "The nightly tier: every case, the tier's repeats, fresh samples (no response cache).",
    }[tier]

    @dg.asset(key=key, group_name=entry.name, deps=[*upstream, *judge_keys], kinds={"duckdb"}, pool=HISTORY_POOL,
              description=description + " The results, outputs, provenance and decision are stored atomically in "
                                         "the DuckDB history.",
              tags={"suite": entry.name, "tier": tier})
    def _run(context: dg.AssetExecutionContext, config: ScoredRunConfig, eval_project: EvalProject) -> dg.Output[dict]:
        try:
            request = config.request(entry.name, tier)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise as_failure(InputError(None, f"run config: {'.'.join(map(str, first['loc']))}", first["msg"])) \
                from None
        view = _raise_typed(lambda: run_for_dagster(eval_project.project(), request, dagster_run_id=context.run_id,
                                                    store=eval_project.store(),
                                                    on_estimate=lambda e, _plan: context.log.info(e.line())))
        # Tags that make runs tell apart in the runs list (which model, which decision).
        context.instance.add_run_tags(context.run_id, {k: v for k, v in view.tags.items() if v})
        for warning in view.warnings:
            if warning.startswith("plan: "):
                context.log.warning(warning)  # a rule that may block a no-change re-run at this size
        return dg.Output(view.value, metadata=_run_metadata(view, eval_project))

    return _run


def _run_metadata(view, eval_project: EvalProject) -> dict:
    """What the UI shows on a scored run: the decision, rates with intervals, the failing cases, identity."""
    t = view.totals
    return {
        "decision": view.decision,
        "history_run_id": view.run_id,
        "model": view.model,
        "tier": view.tier,
        "commit": view.commit or "",
        "baseline_run_id": view.baseline_run_id or "",
        "cases": t.get("n_cases", 0), "pass": t.get("n_pass", 0), "fail": t.get("n_fail", 0),
        "error": t.get("n_error", 0),
        "model_calls": t.get("model_calls", 0), "cache_hits": t.get("cache_hits", 0),
        "cost_usd": float(t.get("cost_usd") or 0.0), "wall_s": float(t.get("wall_s") or 0.0),
        "judge_calls": t.get("judge_calls", 0), "judge_cost_usd": float(t.get("judge_cost_usd") or 0.0),
        "total_cost_usd": float(t.get("total_cost_usd") or 0.0),
        "estimated_calls": view.estimate.get("calls", 0),
        "estimated_cost_usd": float(view.estimate.get("cost_usd") or 0.0),
        "flaky_cases": view.flaky.get("n_flaky_cases", 0),
        "flaky_by_scorer": dg.MetadataValue.json(view.flaky.get("by_scorer") or {}),
        "scorers_not_run": dg.MetadataValue.json(view.scorers_not_run),
        "report": dg.MetadataValue.path(view.report_path or ""),
        "policy_rules": dg.MetadataValue.md(view.rules_md),
        "pass_rates": dg.MetadataValue.md(view.criteria_md),
        "failing_cases": dg.MetadataValue.md(
            f"{view.n_failures} failing or errored scorer rows"
            + (" (the first 100; `evalplatform history show " + view.run_id + " --failures` lists all)"
               if view.n_failures > 100 else "") + "\n\n" + view.failures_md),
        "history": str(eval_project.project().history_path),
        "warnings": dg.MetadataValue.md("\n".join(f"- {md_cell(w, 400)}" for w in view.warnings) or "none"),
    }


def _rule_checks(entry: SuiteEntry, run: dg.AssetsDefinition, tier: str) -> dg.AssetChecksDefinition:
    """Every rule of the suite's policy as a check on the run, plus the overall decision: one evaluation."""
    from evalplatform.pipeline import recorded_decision

    # The decision is what gates: its check is the one Dagster-blocking check (it stops promotion in the run,
    # and automation waits for it). Each rule is a check of its own for the UI: failed with ERROR when its
    # outcome blocks, failed with WARN when it did not pass but does not block, green only on PASS.
    rules = entry.policy.policy.rules
    specs = [dg.AssetCheckSpec(r.id, asset=run.key, blocking=False,
                               description=(r.description or r.id) + f" [{r.severity} rule of {entry.policy.source}]")
             for r in rules]
    specs.append(dg.AssetCheckSpec(RELEASE_CHECK, asset=run.key, blocking=True, description=(
        "The policy's overall decision is PASS: at least one blocking rule had data and passed and none blocks "
        "(NO_DATA never passes). The gate promotion waits for.")))

    @dg.multi_asset_check(specs=specs, name=f"{entry.op_prefix}__{tier}_run_policy",
                          ins={"scored": dg.AssetIn(key=run.key)},
                          description=f"The rules of {entry.policy.source} on the {tier} run, read from its "
                                      "decision of record.")
    def _checks(context: dg.AssetCheckExecutionContext, eval_project: EvalProject, scored: dict):
        from evalplatform.pipeline import write_run_report

        # The run's HTML report (its materialization links to it), drawn here: this step holds no history pool.
        with eval_project.reading():
            problem = write_run_report(eval_project.project(), entry.name, scored["run_id"], eval_project.store())
            decision = _raise_typed(lambda: recorded_decision(eval_project.store(), scored["run_id"]))
        if problem:
            context.log.warning(problem)
        by_id = {r["rule_id"]: r for r in decision["rules"]}
        for rule in rules:
            found = by_id.get(rule.id)
            if found is None:
                # The policy changed since the run was decided: nothing recorded says this rule passed.
                yield dg.AssetCheckResult(
                    check_name=rule.id, asset_key=run.key, passed=False,
                    severity=dg.AssetCheckSeverity.ERROR if rule.severity == "blocking" else dg.AssetCheckSeverity.WARN,
                    description=f"not in the decision of record of run {scored['run_id']} (the policy changed since;"
                                " re-run the tier)", metadata={"run_id": scored["run_id"]})
                continue
            yield _check_result(run.key, found, scored["run_id"])
        overall = decision["overall"]
        yield dg.AssetCheckResult(
            check_name=RELEASE_CHECK, asset_key=run.key, passed=overall == "PASS",
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{overall}: " + ("every blocking rule passed" if overall == "PASS" else "; ".join(
                f"{r['rule_id']} {r['outcome']}" for r in decision["rules"] if r.get("blocks")) or
                "no blocking rule had data"),
            metadata={"run_id": scored["run_id"], "decision": overall,
                      "decision_id": decision.get("decision_id") or ""})

    return _checks


def _check_result(key: dg.AssetKey, rule: dict, run_id: str) -> dg.AssetCheckResult:
    """Only PASS is green: a blocking non-pass is an ERROR failure, any other non-pass a WARN failure."""
    numbers = {k: v for k, v in (rule.get("numbers") or {}).items() if isinstance(v, (int, float, str, bool))}
    metadata = {**numbers, "outcome": rule["outcome"], "reason": rule.get("reason") or "", "run_id": run_id,
                "metric": rule.get("metric") or "", "blocks": bool(rule.get("blocks"))}
    passed = rule["outcome"] == "PASS"
    # A failure is ERROR when it blocks the release, WARN when it does not; a pass carries its rule's weight.
    blocking = rule.get("blocks") or (passed and rule.get("severity") == "blocking")
    severity = dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(check_name=rule["rule_id"], asset_key=key, passed=passed, severity=severity,
                               description=f"{rule['outcome']}: {rule.get('reason') or ''}", metadata=metadata)


def _promotion_condition() -> dg.AutomationCondition:
    """A run asset updated, its blocking checks passed, nothing in flight: evaluate promotion (not eager's
    "every dep materialized", so a PR run promotes before the suite's first nightly run)."""
    ac = dg.AutomationCondition
    # Dagster's all_deps_blocking_checks_passed() is false while a dep was never materialized (the nightly run of
    # a new suite): here a missing tier is simply not gating, and every materialized one must have passed its
    # blocking check (the release decision).
    checks_passed = ac.all_deps_match(
        ac.missing() | ac.all_checks_match(ac.check_passed() | ac.will_be_requested(), blocking_only=True)
    ).with_label("materialized_deps_blocking_checks_passed")
    return (ac.any_deps_updated().since_last_handled().with_label("any_deps_updated")
            & checks_passed
            & ~dg.AutomationCondition.any_deps_in_progress()
            & ~dg.AutomationCondition.in_progress())


def _baseline_asset(entry: SuiteEntry, runs: dict[str, dg.AssetsDefinition]) -> dg.AssetsDefinition:
    from evalplatform.promotion import promote_latest

    key = dg.AssetKey([entry.key_prefix, "promoted_baseline"])

    @dg.asset(key=key, group_name=entry.name, deps=[r.key for r in runs.values()], kinds={"duckdb"},
              pool=HISTORY_POOL, automation_condition=_promotion_condition(), tags={"suite": entry.name},
              description="Per tier, the baseline relative rules compare against: the latest run whose decision of "
                          "record is PASS becomes it when the policy's `promotion:` allows (tier, branch); every "
                          "promotion records who, when, why and the run it replaced.")
    def _baseline(context: dg.AssetExecutionContext, eval_project: EvalProject) -> dg.Output[dict]:
        latest = {}
        for tier, run in runs.items():
            event = context.instance.get_latest_materialization_event(run.key)
            meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
            if "history_run_id" in meta:
                latest[tier] = meta["history_run_id"].value
        with eval_project.reading():
            result = _raise_typed(lambda: promote_latest(eval_project.project(), eval_project.store(), entry.name,
                                                         latest, actor=f"dagster run {context.run_id}"))
        return dg.Output(result, metadata={
            "baselines": dg.MetadataValue.json(result["baselines"]),
            "promoted": dg.MetadataValue.json(result["promoted"]),
            "not_promoted": dg.MetadataValue.json(result["not_promoted"]),
        })

    return _baseline


def build_suite(entry: SuiteEntry, judge_keys: dict[str, dg.AssetKey]) -> SuiteDefinitions:
    out = SuiteDefinitions()
    golden, regression = _dataset_asset(entry, "golden"), _dataset_asset(entry, "regression")
    out.assets += [golden, regression]
    out.checks += _dataset_checks(entry, golden, regression)
    used_judges = [judge_keys[j] for j in _judges_of(entry) if j in judge_keys]
    runs = {tier: _run_asset(entry, tier, [golden.key, regression.key], used_judges) for tier in TIERS}
    out.assets += list(runs.values())
    out.checks += [_rule_checks(entry, runs[tier], tier) for tier in TIERS]
    baseline = _baseline_asset(entry, runs)
    out.assets.append(baseline)
    for tier in TIERS:
        op = f"{entry.op_prefix}__{tier}_run"
        job = dg.define_asset_job(
            f"{entry.op_prefix}_{tier}",
            selection=dg.AssetSelection.assets(golden, regression, runs[tier], baseline),
            tags={"suite": entry.name, "tier": tier},
            # Every option is scaffolded in the launchpad; null means "as the suite and tier say".
            config=run_config_for(op, RunOptions()),
            description=f"{tier} tier of suite {entry.name}: cases -> scored run -> policy checks -> baseline.",
        )
        out.jobs.append(job)
    nightly_job = out.jobs[-1]

    @dg.schedule(name=f"{entry.op_prefix}_nightly_schedule", job=nightly_job, cron_schedule="0 2 * * *",
                 execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Every night at 02:00 UTC: the nightly tier of {entry.name}, fresh samples.")
    def _nightly(context: dg.ScheduleEvaluationContext):
        day = context.scheduled_execution_time.strftime("%Y-%m-%d")
        return dg.RunRequest(run_key=f"{day}-{entry.name}", tags={"suite": entry.name, "tier": "nightly"})

    out.schedules.append(_nightly)
    return out


def _judges_of(entry: SuiteEntry) -> list[str]:
    from evalplatform.judges.suites import judges_in_suite

    return [j.judge_name for j in judges_in_suite(entry.suite)]


def error_from_failure_metadata(metadata: dict) -> EvalPlatformError | None:
    """The typed error a failed step carried (see as_failure), or None."""
    raw = metadata.get("evalplatform_error")
    if raw is None:
        return None
    value = raw.value if hasattr(raw, "value") else raw
    return ErrorRecord.model_validate(value if isinstance(value, dict) else json.loads(value)).error()
