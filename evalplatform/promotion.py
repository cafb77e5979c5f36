"""Promotion is a decision: a run becomes its tier's baseline only where the suite's policy says, or by hand.

Automatically (the `promotion:` section of the policy): a run whose decision of record is PASS, of a tier
the section lists, made on a branch it lists. By hand: `evalplatform promote RUN --reason ...`. Never
implicitly from a PR run. Every change records who, when, why and the run it replaced.
"""

from __future__ import annotations

from evalplatform.history import HistoryStore
from evalplatform.project import Project
from evalplatform.request import TIERS


def promotion_refusal(record: dict, policy) -> str | None:
    """Why the policy does not promote this run automatically, or None when it does."""
    if record.get("status") != "complete":
        return f"run is {record.get('status')}"
    if record.get("decision") != "PASS":
        return f"its decision of record is {record.get('decision') or 'missing'}, not PASS"
    promotion = getattr(policy, "promotion", None)
    if promotion is None:
        return "the policy has no `promotion:` section (promote by hand: evalplatform promote RUN --reason ...)"
    tier = record.get("tier")
    if tier not in promotion.tiers:
        return f"the policy promotes tiers {promotion.tiers or '(none)'}, not {tier}"
    branch = (record.get("provenance") or {}).get("git_branch")
    if promotion.branches and branch not in promotion.branches:
        return f"the run was made on branch {branch or '(unknown)'}; the policy promotes runs on {promotion.branches}"
    return None


def promote_latest(project: Project, store: HistoryStore, suite_name: str, latest: dict[str, str],
                   actor: str) -> dict:
    """Promote, per tier, the given latest run where the policy allows; report what happened and why not."""
    from evalplatform.decide import effective_policy
    from evalplatform.suite import find_suite, load_suite

    policy = effective_policy(load_suite(find_suite(suite_name, project.datasets_dir))).policy
    promoted, not_promoted = [], []
    for tier, run_id in sorted(latest.items()):
        record = store.get_run(run_id)
        if record is None:
            not_promoted.append({"tier": tier, "run_id": run_id, "why": "not in the history"})
            continue
        if store.latest_baseline(suite_name, tier) == run_id:
            continue
        why = promotion_refusal(record, policy)
        if why is not None:
            not_promoted.append({"tier": tier, "run_id": run_id, "why": why})
            continue
        branch = (record.get("provenance") or {}).get("git_branch") or "unknown branch"
        replaced = store.promote(suite_name, run_id, reason=f"decision PASS on {branch}; policy promotes {tier}",
                                 actor=actor, require_pass=True)
        promoted.append({"tier": tier, "run_id": run_id, "replaced": replaced})
    baselines = {tier: store.latest_baseline(suite_name, tier) for tier in TIERS}
    return {"baselines": baselines, "promoted": promoted, "not_promoted": not_promoted}
