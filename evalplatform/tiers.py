"""Which scorers a tier runs, and which rules of the policy apply there: the scorer cost hierarchy, enforced.

A tier lists the scorers it runs (ids or cost tiers; by default the PR tier runs deterministic scorers and
cheap judges, the nightly tier everything). A judge that may not gate (refused, stale, uncalibrated) is not
called at all where it would gate: it costs money and cannot count. A rule that reads only scorers the tier
does not run is not applicable there (NO_DATA that does not block, and never evidence: a decision still needs
a blocking rule that had data and passed); a rule that would read a judge left uncalled for not being allowed
to gate is ERROR, as it was when that judge's rows were there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import polars as pl

from evalplatform.errors import InputError

if TYPE_CHECKING:
    from evalplatform.policy.model import Policy
    from evalplatform.suite import LoadedSuite

NOT_APPLICABLE = "NO_DATA"


@dataclass
class TierScope:
    """The scorers a run of a tier runs (suite order) and, for every other scorer of the suite, why not."""

    tier: str
    run: list = field(default_factory=list)
    not_in_tier: dict[str, str] = field(default_factory=dict)   # id -> why the tier leaves it out
    not_called: dict[str, str] = field(default_factory=dict)    # id -> why the judge may not gate

    @property
    def run_ids(self) -> list[str]:
        return [s.id for s in self.run]

    @property
    def not_run(self) -> dict[str, str]:
        return not_run(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {"tier": self.tier, "run": self.run_ids, "not_in_tier": dict(self.not_in_tier),
                "not_called": dict(self.not_called)}


def select_scorers(suite: "LoadedSuite", tier: str, not_allowed: Mapping[str, str] | None = None) -> TierScope:
    """The tier's scorers: those its `scorers:` selection (or default) names, minus judges that may not gate.

    `not_allowed` (scorer id -> why) holds the judges that would gate and may not (decide.judges_not_allowed).
    """
    from evalplatform.suite import DEFAULT_TIER_SCORERS, TierSpec

    spec = suite.spec.tiers.get(tier) or TierSpec()
    wanted = spec.scorers_for(tier)
    source = f"tiers.{tier}.scorers" if spec.scorers is not None else \
        f"the {tier} tier's default ({', '.join(DEFAULT_TIER_SCORERS.get(tier) or ['every scorer'])})"
    scope = TierScope(tier)
    for scorer in suite.spec.scorers:
        if wanted is not None and scorer.id not in wanted and scorer.tier_cost not in wanted:
            scope.not_in_tier[scorer.id] = f"{scorer.tier_cost} scorer, not in {source}"
        elif not_allowed and scorer.id in not_allowed:
            scope.not_called[scorer.id] = not_allowed[scorer.id]
        else:
            scope.run.append(scorer)
    if not scope.run:
        raise InputError(suite.path, f"tiers.{tier}.scorers", f"the {tier} tier runs no scorer ("
                         + "; ".join(f"{k}: {v}" for k, v in scope.not_run.items()) + ")",
                         "list a scorer id or cost tier the suite has, or calibrate its judges")
    return scope


def not_run(stored: Mapping[str, Any]) -> dict[str, str]:
    """Scorer id -> why a run did not run it, from a scope as recorded (TierScope.to_dict)."""
    return {**dict(stored.get("not_in_tier") or {}),
            **{k: f"not called: the judge may not gate ({v})" for k, v in (stored.get("not_called") or {}).items()}}


def from_record(suite: "LoadedSuite", stored: Mapping[str, Any] | None) -> TierScope | None:
    """The scope a recorded run ran with (its provenance `scorers`), or None for a run recorded before tiers
    chose scorers (every scorer ran)."""
    if not isinstance(stored, Mapping) or not isinstance(stored.get("run"), list):
        return None
    by_id = {s.id: s for s in suite.spec.scorers}
    return TierScope(str(stored.get("tier") or ""), [by_id[i] for i in stored["run"] if i in by_id],
                     dict(stored.get("not_in_tier") or {}), dict(stored.get("not_called") or {}))


def _cases_of(results: pl.DataFrame) -> pl.DataFrame:
    """The run's cases as the scorers' `when` sees them (case id, tags, content hash), from its result rows."""
    return results.select("case_id", "tags", "case_hash").unique("case_id", keep="first", maintain_order=True)


def rule_scope(policy: "Policy", suite: "LoadedSuite", scope: TierScope | None,
               cases: pl.DataFrame) -> dict[str, tuple[str, str]]:
    """Rule id -> (outcome, reason) for the rules the tier's scorer choice decides by itself.

    Which scorers a rule reads is found on the rows a run of every suite scorer over `cases` would produce
    (case tags and the scorers' `when` included), so a rule is judged on what it would actually have read:
    - it names scorers and one of them is not run by the tier, or it reads only scorers the tier does not
      run: not applicable here (NO_DATA, not blocking, never evidence);
    - it would read a judge left uncalled for not being allowed to gate: ERROR (it cannot be decided on it).
    """
    if scope is None or (not scope.not_in_tier and not scope.not_called):
        return {}
    from evalplatform.planning import skeleton
    from evalplatform.policy.evaluate import selection_expr

    rows = skeleton(suite, cases, suite.spec.scorers)
    run = set(scope.run_ids)
    out: dict[str, tuple[str, str]] = {}
    for rule in policy.rules:
        read = set(rows.filter(selection_expr(rule.select))["scorer"].unique().to_list()) if rows.height else set()
        named = set(rule.select.scorers() or ())
        outside = sorted(s for s in read if s in scope.not_in_tier)
        uncalled = sorted(s for s in read if s in scope.not_called)
        if outside and (named or not (read & run)):
            what = ", ".join(f"{s} ({scope.not_in_tier[s]})" for s in outside)
            out[rule.id] = (NOT_APPLICABLE, f"not applicable on the {scope.tier} tier: it reads {what}, "
                                            "which the tier does not run")
        elif uncalled:
            first = uncalled[0]
            out[rule.id] = ("ERROR", f"judge {first} is not allowed to gate: {scope.not_called[first]}"
                            + (f" (+{len(uncalled) - 1} more judge(s))" if len(uncalled) > 1 else "")
                            + "; it was not called, so the rule lacks its verdicts")
    return out


def rule_scope_of_results(policy: "Policy", suite: "LoadedSuite", scope: TierScope | None,
                          results: pl.DataFrame) -> dict[str, tuple[str, str]]:
    """rule_scope over the cases a run's results hold (a recorded run, or one being decided)."""
    if scope is None or results.height == 0:
        return {}
    return rule_scope(policy, suite, scope, _cases_of(results))
