"""One scored run end to end, recorded in the history: the steps the Dagster assets call, and the direct path."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from evalplatform import provenance
from evalplatform.datasets import Dataset
from evalplatform.errors import EvalPlatformError, InfraError, InputError
from evalplatform.history import DecisionRecord, HistoryStore, new_run_id
from evalplatform.models.redact import redact
from evalplatform.project import Project
from evalplatform.request import RunRequest
from evalplatform.planning import plan_tier
from evalplatform.runner import ScoredRun, execute, load_dataset, more_evidence, plan_run, totals_of
from evalplatform.suite import LoadedSuite, find_suite, load_suite
from evalplatform.targets.dispatch import target_record


def resolve_suite(project: Project, name_or_path: str) -> LoadedSuite:
    return load_suite(find_suite(name_or_path, project.datasets_dir))


def checked_dataset(project: Project, suite: LoadedSuite, store: HistoryStore | None = None,
                    dataset: Dataset | None = None) -> tuple[Dataset, dict]:
    """Load and validate the dataset; the Great Expectations batch check runs once per dataset version.

    A failed batch check is bad input (exit 2), remembered so a re-run fails fast with the same reason.
    """
    dataset = dataset or load_dataset(suite)
    store = store or HistoryStore(project.history_path)
    check = store.get_dataset_check(dataset.version)
    cached = check is not None
    if check is None:
        from evalplatform.dataset_checks import validate_dataset

        summary = validate_dataset(dataset.cases)
        store.put_dataset_check(dataset.version, summary["success"], summary)
        check = {"success": summary["success"], "summary": summary}
    summary = check.get("summary") or {}
    if not check["success"]:
        first = (summary.get("failed") or [{}])[0]
        from evalplatform.dataset_checks import describe_failure

        raise InputError(dataset.files[0], first.get("column"), describe_failure(first))
    return dataset, {"success": True, "cached": cached, "statistics": summary.get("statistics")}


def _judge_pins(suite: LoadedSuite) -> dict[str, str]:
    from evalplatform.judges.suites import judge_pins

    return judge_pins(suite)


def run_record(project: Project, suite: LoadedSuite, dataset: Dataset, plan, run_id: str,
               dagster_run_id: str | None) -> dict:
    prov = provenance.collect(project.root, project.lock_file if project.lock_file.exists() else None)
    return {
        "run_id": run_id,
        "suite": suite.name,
        "tier": plan.tier,
        "started_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
        "git_commit": prov.get("git_commit"),
        "git_dirty": prov.get("git_dirty"),
        "package_version": prov.get("package_version"),
        "lock_hash": prov.get("lock_hash"),
        "dataset_hash": dataset.version,
        "prompt_hash": suite.prompt_hash,
        "suite_hash": suite.suite_hash,
        **target_record(plan.target, suite),
        "judge_pins": _judge_pins(suite),
        "seed": plan.target.seed,
        "repeats": plan.repeats,
        "dagster_run_id": dagster_run_id,
        "provenance": {**prov, "suite_file": str(suite.path), "dataset_files": list(dataset.files),
                       "n_selected_cases": plan.cases.height, "gate": suite.spec.gate.model_dump()},
    }


# Set by the CLI on a terminal so a run inside the in-process Dagster job shows progress too.
DEFAULT_PROGRESS: Callable[[int], Callable] | None = None


def scored_run(
    project: Project,
    request: RunRequest,
    *,
    dagster_run_id: str | None = None,
    progress: Callable[[int], Callable] | None = None,
    store: HistoryStore | None = None,
    on_estimate: Callable | None = None,
) -> tuple[ScoredRun, dict]:
    """Plan, call, score and store one run; returns it with its history record. Atomic in the history.

    `on_estimate` gets the run's estimate (budget.Estimate) and its plan before the first call."""
    store = store or HistoryStore(project.history_path)
    suite = resolve_suite(project, request.suite)
    # Every check that needs no write comes first: bad input and a refused plan or budget must leave the history
    # untouched. Their reads share one connection (the block ends before any model call).
    with store.shared_reads():
        plan = planned_run(store, suite, request)
        # Whether each rule can decide at this tier's size, before any model call: a blocking rule that cannot
        # pass even with a perfect result is refused (exit 2); rules likely to block a no-change re-run are
        # warned of.
        tier_plan = plan_tier(suite, plan.tier, store=store, run_plan=plan)
        tier_plan.check()
        cache_dir = project.cache_dir if request.use_cache() else None
        # What the run will call and spend, before it calls anything: over a limit it is refused here (exit 2).
        estimate, limits = estimate_and_check(plan, store, request, cache_dir)
        if on_estimate is not None:
            on_estimate(estimate, plan)
        # The dataset's data-quality check (recorded once per dataset version: the first write).
        dataset, _ = checked_dataset(project, suite, store, plan.dataset)
    run_id = new_run_id()
    record = run_record(project, suite, dataset, plan, run_id, dagster_run_id)
    record["provenance"]["request"] = request.model_dump(mode="json")
    record["provenance"]["scorers"] = plan.scope.to_dict() if plan.scope is not None else None
    record["provenance"]["estimate"] = estimate.to_dict()
    store.begin_run(record)
    from evalplatform.budget import Budget
    from evalplatform.decide import decide_results

    budget = Budget(limits)
    started = time.perf_counter()
    try:
        run = execute(plan, run_id, cache_dir=cache_dir, concurrency=request.concurrency,
                      on_result=_progress(progress, plan.n_calls), budget=budget)
        # The policy is pure over the results and the promoted baseline: decide before storing, so
        # the results (with any evidence an undecided rule added), totals and the decision of record
        # land in one transaction (all or nothing). A run out of budget buys no more evidence.
        source = more_evidence(plan, run_id, cache_dir=cache_dir, concurrency=request.concurrency, budget=budget)
        with store.shared_reads():
            outcome = decide_results(store, suite, run_id, results=run.results, record=False, tier=plan.tier,
                                     plan=tier_plan, evidence=None if budget.exhausted else source,
                                     scope=plan.scope)
        decision = outcome.decision
        decision.inputs["estimate"] = estimate.to_dict()
        decision.inputs["budget"] = budget.to_dict()
        if budget.exhausted:
            _fail_closed_for_budget(decision, budget)
        if outcome.results.height != run.results.height:
            run = _with_evidence(run, outcome.results, source.outputs, time.perf_counter() - started)
        store.complete_run(run_id, run.results, run.outputs, run.totals, decision=DecisionRecord(
            overall=decision.overall, policy_hash=decision.policy_hash, inputs=decision.inputs,
            rules=[r.to_dict() for r in decision.rules]))
    except BaseException as exc:
        _close_failed(store, run_id, exc)
        raise
    run.totals["decision"] = decision.overall
    record.update(run.totals)
    record["decision_detail"] = decision
    return run, record


def planned_run(store: HistoryStore, suite: LoadedSuite, request: RunRequest):
    """The run a request asks for, with the tier's scorers: judges that would gate and may not are left out
    (the trained judge, calibrated on first use, is counted allowed until then)."""
    from evalplatform.decide import effective_policy, judges_not_allowed

    not_allowed = judges_not_allowed(store, suite, effective_policy(suite).policy, calibrate=False)
    return plan_run(suite, request.tier, model=request.model, repeats=request.repeats, seed=request.seed,
                    dataset=load_dataset(suite), not_allowed=not_allowed)


def estimate_and_check(plan, store: HistoryStore, request: RunRequest, cache_dir):
    """The run's estimate and limits; InputError (exit 2, one line) when the estimate exceeds a limit."""
    from evalplatform.budget import check, estimate_run, limits_for

    limits = limits_for(plan, request)
    estimate = estimate_run(plan, store, cache_dir)
    check(estimate, limits, plan.suite.path)
    return estimate, limits


def _fail_closed_for_budget(decision, budget) -> None:
    """A run that stopped calling for its budget is missing evidence it planned: it blocks, whatever its rules
    made of the rest, and says why in a rule of its own (which every report and the release check show)."""
    from evalplatform.budget import BUDGET_RULE
    from evalplatform.policy.evaluate import RuleResult

    decision.rules.append(RuleResult(
        rule_id=BUDGET_RULE, metric="budget", severity="blocking", outcome="ERROR", blocks=True,
        reason=budget.reason(), numbers=budget.to_dict(),
        description="The run made every model call it planned within its budget (budget_usd, max_calls)."))
    decision.overall = "BLOCK"  # plain text, as a validated decision holds it
    decision.warnings.append(f"decision: BLOCK: {budget.reason()}")


def _with_evidence(run: ScoredRun, results, outputs: dict[str, str], wall_s: float) -> ScoredRun:
    """The run with the rows an adaptive extension added: its results, outputs and totals."""
    n_cases = results["case_id"].n_unique()
    return replace(run, results=results, outputs={**run.outputs, **outputs},
                   totals=totals_of(results, wall_s, n_cases), wall_s=wall_s)


def _close_failed(store: HistoryStore, run_id: str, exc: BaseException) -> None:
    """Mark the run failed with the reason; if the history cannot take even that (a full disk), the
    original error is what the user needs: the run stays running until a later writer finds this
    process gone and marks it abandoned."""
    try:
        store.fail_run(run_id, redact(f"{type(exc).__name__}: {exc}")[:500])
    except EvalPlatformError:
        pass


def _progress(factory: Callable[[int], Callable] | None, total: int) -> Callable | None:
    factory = factory or DEFAULT_PROGRESS
    return factory(total) if factory else None


@dataclass
class RunView:
    """A finished scored run as an orchestrator shows it: identity, decision, tables people read, tags."""

    run_id: str
    suite: str
    tier: str
    model: str
    commit: str | None
    decision: str
    baseline_run_id: str | None
    totals: dict
    criteria_md: str
    rules_md: str
    failures_md: str
    n_failures: int
    warnings: list[str]
    estimate: dict = field(default_factory=dict)
    flaky: dict = field(default_factory=dict)
    scorers_not_run: dict = field(default_factory=dict)
    report_path: str | None = None

    @property
    def value(self) -> dict:
        return {"run_id": self.run_id, "suite": self.suite, "tier": self.tier}

    @property
    def tags(self) -> dict[str, str]:
        return {"suite": self.suite, "tier": self.tier, "model": self.model, "commit": (self.commit or "")[:12],
                "decision": self.decision, "history_run_id": self.run_id}


def run_for_dagster(project: Project, request: RunRequest, *, dagster_run_id: str | None = None,
                    store: HistoryStore | None = None, on_estimate: Callable | None = None) -> RunView:
    """The scored run a Dagster asset makes: run it, then describe it for the asset's metadata and run tags."""
    from evalplatform.run_view import criterion_markdown, failing_cases, failing_cases_markdown, rules_markdown

    from evalplatform.flakiness import flaky_cases, summary
    from evalplatform.tiers import not_run

    run, record = scored_run(project, request, dagster_run_id=dagster_run_id, store=store, on_estimate=on_estimate)
    decision = record["decision_detail"]
    rules = [r.to_dict() for r in decision.rules]
    warnings = list(decision.warnings)
    from evalplatform.html_report import default_path

    # Where the run's report goes; it is drawn by the run's policy-check step (write_run_report), outside the
    # one-writer history pool this step holds: matplotlib and four plots take seconds no other writer should wait.
    report = str(default_path(project, record["suite"], run.run_id))
    scorers = record["provenance"].get("scorers") or {}
    return RunView(
        run_id=run.run_id, suite=record["suite"], tier=record["tier"], model=record["target_model"] or "",
        commit=record.get("git_commit"), decision=decision.overall,
        baseline_run_id=(decision.inputs or {}).get("baseline_run_id"), totals=dict(run.totals),
        criteria_md=criterion_markdown(run.results), rules_md=rules_markdown(rules),
        failures_md=failing_cases_markdown(run.results, limit=100),
        n_failures=failing_cases(run.results).height, warnings=warnings,
        estimate=record["provenance"].get("estimate") or {}, flaky=summary(flaky_cases(run.results)),
        scorers_not_run=not_run(scorers),
        report_path=report)


def write_run_report(project: Project, suite: str, run_id: str, store: HistoryStore | None = None) -> str | None:
    """Draw a recorded run's HTML report at its default path; the reason it could not be, or None.

    The run is stored and decided: a report that cannot be drawn is only a warning."""
    try:
        from evalplatform.html_report import write_report

        write_report(project, suite, run_id, store=store)
    except Exception as exc:
        return f"report: not written ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return None


def recorded_decision(store: HistoryStore, run_id: str) -> dict:
    """The run's decision of record (what its checks report); a complete run without one is an infrastructure fault."""
    decision = store.decision_of_record(run_id)
    if decision is None:
        raise InfraError(f"{store.path}: run {run_id} has no decision of record (it did not complete); "
                         "re-run the tier")
    return decision
