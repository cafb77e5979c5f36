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
from evalplatform.policy import RuleResult
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


def policy_of(project, suite_name: str) -> tuple[set[str], str]:
    """Rule ids and sha256 of a suite's effective policy, cached per suite file content within the process."""
    from evalplatform.pipeline import resolve_suite

    suite = resolve_suite(project, suite_name)
    key = (str(suite.path), suite.suite_hash)
    if key not in _POLICIES:
        eff = effective_policy(suite)
        _POLICIES[key] = ({r.id for r in eff.policy.rules}, eff.sha256)
    return _POLICIES[key]


_POLICIES: dict[tuple[str, str], tuple[set[str], str]] = {}


def recorded_rule(store, run_id: str, rule_id: str, policy_sha256: str) -> RuleResult | None:
    """The rule's result in the run's decision of record: the check reports what the run decided
    (one evaluation, one answer), instead of evaluating the policy a second time. A later re-decision
    (`evalplatform gate --run`) never counts, and a record under another policy is not this rule's."""
    stored = store.decision_of_record(run_id)
    if stored is None or stored["policy_hash"] != policy_sha256:
        return None
    found = next((r for r in stored["rules"] if r["rule_id"] == rule_id), None)
    return RuleResult(**found) if found else None


def build_rule_check(rule_id: str, blocking: bool, description: str) -> dg.AssetChecksDefinition:
    # Partitioned like scored_run: a run for one suite evaluates (and loads) only that suite's partition.
    @dg.asset_check(asset=scored_run, name=rule_id, blocking=blocking, description=description,
                    partitions_def=suite_partitions)
    def _check(context: dg.AssetCheckExecutionContext, eval_project: EvalProject,
               scored_run: dict) -> dg.AssetCheckResult:
        project = eval_project.project()
        # Rules of other suites' policies: answered from the suite file, without touching the history.
        rule_ids, policy_sha256 = policy_of(project, context.partition_key)
        if rule_id not in rule_ids:
            return dg.AssetCheckResult(passed=True, metadata={"applies": False, "run_id": scored_run["run_id"]},
                                       description=f"suite {context.partition_key!r} has no rule {rule_id!r}")
        store = eval_project.store()
        run_id = scored_run["run_id"]
        result = recorded_rule(store, run_id, rule_id, policy_sha256)
        if result is None:  # no decision recorded with the run (an older run): evaluate the rule now
            record = store.get_run(run_id)
            result = evaluate_one_rule(store, load_suite(record["provenance"]["suite_file"]), run_id, rule_id)
        if result is None:
            return dg.AssetCheckResult(passed=True, metadata={"applies": False, "run_id": run_id},
                                       description=f"suite {context.partition_key!r} has no rule {rule_id!r}")
        advisory = result.severity == "advisory"
        meta = {k: v for k, v in result.numbers.items() if isinstance(v, (int, float, str, bool))}
        meta.update({"outcome": result.outcome, "reason": result.reason, "run_id": run_id,
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
