"""Gates as asset checks on the scored run: one check per rule of the suites' release policies.

Blocking rules are blocking checks with ERROR severity (a failure stops promoted_baseline);
advisory rules are WARN. The suite's `gate:` floor is rule `pass_rate_at_least_floor` when the
suite has no policy file.
"""

import logging
import warnings

import dagster as dg

from assets.partitions import discover_suites, suite_partitions
from assets.resources import PROJECT_ROOT, EvalProject
from assets.scored_runs import scored_run
from evalplatform.decide import effective_policy, evaluate_one_rule
from evalplatform.errors import EvalPlatformError
from evalplatform.suite import load_suite

log = logging.getLogger(__name__)


def _rules_by_id() -> dict[str, dict]:
    """Every rule id across the suites' effective policies; blocking if it blocks in any suite."""
    rules: dict[str, dict] = {}
    for name in discover_suites():
        try:
            policy = effective_policy(load_suite(PROJECT_ROOT / "datasets" / name / "suite.yaml")).policy
        except EvalPlatformError as exc:
            # A broken suite must not take the whole code location down; its runs fail with the reason.
            log.warning("suite %s: %s", name, exc)
            continue
        for r in policy.rules:
            entry = rules.setdefault(r.id, {"blocking": False, "description": r.description or r.id})
            entry["blocking"] |= r.severity == "blocking"
    return rules


def rule_ids_of(project, suite_name: str) -> set[str]:
    """Rule ids of a suite's effective policy, cached per suite file content within the process."""
    from evalplatform.pipeline import resolve_suite

    suite = resolve_suite(project, suite_name)
    key = (str(suite.path), suite.suite_hash)
    if key not in _RULE_IDS:
        _RULE_IDS[key] = {r.id for r in effective_policy(suite).policy.rules}
    return _RULE_IDS[key]


_RULE_IDS: dict[tuple[str, str], set[str]] = {}


def build_rule_check(rule_id: str, blocking: bool, description: str) -> dg.AssetChecksDefinition:
    # Partitioned like scored_run: a run for one suite evaluates (and loads) only that suite's partition.
    @dg.asset_check(asset=scored_run, name=rule_id, blocking=blocking, description=description,
                    partitions_def=suite_partitions)
    def _check(context: dg.AssetCheckExecutionContext, eval_project: EvalProject,
               scored_run: dict) -> dg.AssetCheckResult:
        project = eval_project.project()
        # Rules of other suites' policies: answered from the suite file, without touching the history.
        if rule_id not in rule_ids_of(project, context.partition_key):
            return dg.AssetCheckResult(passed=True, metadata={"applies": False, "run_id": scored_run["run_id"]},
                                       description=f"suite {context.partition_key!r} has no rule {rule_id!r}")
        store = eval_project.store()
        record = store.get_run(scored_run["run_id"])
        suite = load_suite(record["provenance"]["suite_file"])
        result = evaluate_one_rule(store, suite, record["run_id"], rule_id)
        if result is None:
            return dg.AssetCheckResult(passed=True, metadata={"applies": False, "run_id": record["run_id"]},
                                       description=f"suite {suite.name!r} has no rule {rule_id!r}")
        advisory = result.severity == "advisory"
        meta = {k: v for k, v in result.numbers.items() if isinstance(v, (int, float, str, bool))}
        meta.update({"outcome": result.outcome, "reason": result.reason, "run_id": record["run_id"],
                     "metric": result.metric})
        return dg.AssetCheckResult(
            passed=(result.outcome == "PASS") if advisory else not result.blocks,
            severity=dg.AssetCheckSeverity.WARN if advisory else dg.AssetCheckSeverity.ERROR,
            metadata=meta,
            description=f"{result.outcome}: {result.reason}",
        )

    return _check


with warnings.catch_warnings():
    # Partitioned asset checks are a Dagster "preview" feature; we rely on them knowingly (an
    # unpartitioned check would load every suite's partition of scored_run).
    warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")
    RULE_CHECKS = [build_rule_check(rid, r["blocking"], r["description"])
                   for rid, r in sorted(_rules_by_id().items())]
