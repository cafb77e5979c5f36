"""Whether each rule of a policy can decide at a tier's size, checked before anything runs.

Per rule and tier: the units it will see (cases, or clusters; repeats never count as independent), the
best bound a perfect result reaches (a blocking rule that cannot PASS even then is refused), the chance
of a PASS at the baseline's own rate (the false-block risk of a no-change re-run) and the smallest change
it blocks with 80% power, all from `evalplatform.stats` (exact binomial and trinomial enumeration).

The model (stats.decidability): a case passes a re-run with its own probability. The rate is the
baseline's on the rule's selection, as (passes + 1/2)/(cases + 1) so an all-pass baseline does not claim
its cases can never fail. The no-change discordance psi (how often two runs of a case disagree) comes
from the baseline's repeats when it has them, else it is taken at its largest, 2p(1-p) (then a re-run
is Binomial(n, p)). A deterministic target measured with repeats flakes far less than that.
The same schedule of looks (the tier's `adaptive:` budget, the error spent over the looks) is what
the run uses, so the plan's numbers are the run's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import polars as pl

from evalplatform import results as rt
from evalplatform import stats
from evalplatform.errors import InputError
from evalplatform.policy.evaluate import selection_expr
from evalplatform.policy.metrics import (
    METRICS,
    Calibrations,
    judge_corrected_bounds,
    judge_youden,
    resolve_calibration,
)
from evalplatform.policy.model import Policy, Rule
from evalplatform.policy.units import Missing, RuleFailure, Selected, cluster_expr
from evalplatform.suite import Adaptive

if TYPE_CHECKING:
    from evalplatform.history import HistoryStore
    from evalplatform.runner import RunPlan
    from evalplatform.suite import LoadedSuite

RISK_LIMIT = 0.05  # a rule that blocks a no-change re-run more often than this is flagged
POWER = 0.8
REPEAT_METRICS = ("pass_at_k", "pass_hat_k")


@dataclass
class RuleSchedule:
    """The looks a rule gets in a run: units and one-sided confidence at each, and the evidence added."""

    extension: str | None = None  # "cases", "repeats" or None (one look)
    looks: list[int] = field(default_factory=list)
    confs: list[float] = field(default_factory=list)
    extra_cases: list[int] = field(default_factory=list)  # cumulative extra cases at each look
    extra_repeats: list[int] = field(default_factory=list)  # cumulative extra repeats at each look
    case_order: list[str] = field(default_factory=list)  # the cases added, in order

    def cases_at(self, look: int) -> list[str]:
        return self.case_order[: self.extra_cases[look]] if self.extra_cases else []


@dataclass
class RulePlan:
    rule_id: str
    metric: str
    severity: str
    blocks_inconclusive: bool
    kind: str  # absolute | paired | point
    bound: str
    n: int
    n_max: int
    best_bound: float | None = None
    can_pass: bool | None = None
    n_needed: int | None = None
    rate: float | None = None
    rate_source: str = "unknown"
    discordance: float | None = None
    discordance_source: str = "unknown"
    p_pass_first_look: float | None = None
    p_pass: float | None = None
    false_block_risk: float | None = None
    detectable: float | None = None
    safe_rate: float | None = None
    n_for_low_risk: int | None = None
    refused: bool = False
    notes: list[str] = field(default_factory=list)
    schedule: RuleSchedule = field(default_factory=RuleSchedule)
    # Set when the tier's choice of scorers decides the rule by itself (evalplatform.tiers.rule_scope): "NO_DATA"
    # when it is not applicable on the tier, "ERROR" when it would read a judge that may not gate.
    scoped: str | None = None

    @property
    def gates(self) -> bool:
        return self.severity == "blocking"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["schedule"] = {k: v for k, v in out["schedule"].items() if k != "case_order"}
        return out


@dataclass
class TierPlan:
    suite: str
    tier: str
    n_cases: int
    repeats: int
    adaptive: dict[str, Any]
    rules: list[RulePlan]
    policy_file: str = "policy"
    baseline_run_id: str | None = None
    evidence_runs: list[str] = field(default_factory=list)
    evidence_note: str = "no baseline or earlier run of this tier: rates unknown (run the tier once)"

    def rule(self, rule_id: str) -> RulePlan:
        return next(r for r in self.rules if r.rule_id == rule_id)

    def refused(self) -> list[RulePlan]:
        return [r for r in self.rules if r.refused]

    def warnings(self) -> list[str]:
        """One line per blocking rule that cannot decide here or that blocks a no-change re-run too often."""
        out = []
        for r in self.rules:
            if not r.gates:
                continue
            where = f"{self.tier} tier ({r.n} {'case' if r.n == 1 else 'cases'})"
            if r.scoped is not None:
                out.append(f"rule {r.rule_id}: {'; '.join(r.notes)}"
                           + ("; it gates only the tiers that run its scorers" if r.scoped == "NO_DATA" else ""))
            elif r.n == 0:
                out.append(f"rule {r.rule_id}: selects no case on the {self.tier} tier; it will be NO_DATA or ERROR")
            elif r.can_pass is False:
                out.append(f"rule {r.rule_id}: cannot PASS on the {where} even if every case passes "
                           f"(best bound {_fmt(r.best_bound)}, bound {r.bound})"
                           + (f"; needs about {r.n_needed} cases" if r.n_needed else ""))
            elif r.false_block_risk is not None and r.false_block_risk > RISK_LIMIT:
                more = f"; about {r.n_for_low_risk} cases would bring it under {RISK_LIMIT:.0%}" \
                    if r.n_for_low_risk else ""
                out.append(f"rule {r.rule_id}: blocks a no-change re-run {r.false_block_risk:.0%} of the time on the "
                           f"{where}, at rate {_fmt(r.rate)} ({r.rate_source}){more}")
        return out

    def check(self) -> None:
        """InputError (exit 2) for the first blocking rule that cannot PASS at this tier's size."""
        for r in self.refused():
            raise InputError(
                self.policy_file, f"rules ({r.rule_id})",
                f"cannot PASS on the {self.tier} tier of suite {self.suite}: even with every one of its {r.n_max} "
                f"cases passing the best bound is {_fmt(r.best_bound)} against {r.bound}; it needs "
                + (f"at least {r.n_needed} cases" if r.n_needed else "a different bound (no case count can reach it)"),
                f"add cases to tiers.{self.tier}, loosen the bound, or set inconclusive: pass or severity: advisory")

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "tier": self.tier, "n_cases": self.n_cases, "repeats": self.repeats,
                "adaptive": self.adaptive, "baseline_run_id": self.baseline_run_id,
                "evidence_runs": list(self.evidence_runs), "evidence_note": self.evidence_note,
                "rules": [r.to_dict() for r in self.rules], "warnings": self.warnings()}


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def plan_table(plans: "TierPlan | Sequence[TierPlan]") -> str:
    """Plain-text table of one or more tier plans: what `evalplatform plan` prints (see plan_report)."""
    from evalplatform.plan_report import plan_table as render

    return render(plans)


# -- the rows a tier will produce ------------------------------------------------------------------


def skeleton(suite: "LoadedSuite", cases: pl.DataFrame, scorers: Sequence | None = None) -> pl.DataFrame:
    """The result rows a run of `cases` with `scorers` (default: the suite's) produces (one repeat), without
    outcomes: what rules select."""
    parts = []
    for scorer in (suite.spec.scorers if scorers is None else scorers):
        scope = cases.filter(scorer.applies())
        if scope.height:
            parts.append(scope.select("case_id", "tags", "case_hash").with_columns(
                pl.lit(scorer.id).alias("scorer"), pl.lit(scorer.criterion).alias("criterion"),
                pl.lit(scorer.tier_cost).alias("tier_cost")))
    if not parts:
        return rt.empty()
    frame = pl.concat(parts, how="vertical_relaxed").with_columns(
        pl.lit(suite.name).alias("suite"), pl.lit(0).alias("repeat"), pl.lit("pass").alias("outcome"))
    return rt.conform(frame)


def extension_order(cases: pl.DataFrame, stratify_by: str | None, seed: int) -> list[str]:
    """The order extra cases are drawn in: round robin over the strata, each stratum by the hash of (seed,
    case id) as the tier's slice ranks them, so an extension continues the slice and is the same every run."""
    from evalplatform.selection import _rank

    if cases.height == 0:
        return []
    key = stratify_by if stratify_by and stratify_by in cases.columns else None
    ranked = cases.select(
        "case_id",
        (pl.col(key).cast(pl.Utf8).fill_null("(none)") if key else pl.lit("all")).alias("_stratum"),
        pl.Series("_rank", [_rank(seed, c) for c in cases["case_id"].to_list()], dtype=pl.Utf8),
    ).with_columns(pl.col("_rank").rank("ordinal").over("_stratum").alias("_pos"))
    return ranked.sort("_pos", "_stratum", "_rank")["case_id"].to_list()


def _covered(rows: pl.DataFrame, baseline_cases: Mapping[str, str | None]) -> pl.DataFrame:
    """Rows of cases the baseline ran with the same content (a case without a recorded hash pairs by id)."""
    base = pl.DataFrame({"case_id": list(baseline_cases), "_base_hash": list(baseline_cases.values())},
                        schema={"case_id": pl.Utf8, "_base_hash": pl.Utf8})
    joined = rows.join(base, on="case_id", how="inner")
    same = pl.col("_base_hash").is_null() | pl.col("case_hash").is_null() | (pl.col("_base_hash") == pl.col("case_hash"))
    return joined.filter(same).drop("_base_hash")


def _units(rows: pl.DataFrame, rule: Rule) -> int:
    if rows.height == 0:
        return 0
    return rows.select(cluster_expr(rule.cluster).n_unique()).item()


# -- evidence: the baseline's rates and flips ------------------------------------------------------


@dataclass
class _Observed:
    """What the baseline showed of a rule: each case's rate of the units the rule counts (a mean over its
    repeats; bad units for a ceiling), and the no-change discordance its repeats measured."""

    per_case: dict[str, float]
    discordance: float | None

    def rate(self, case_ids: Sequence[str] | None = None) -> tuple[float, float, int]:
        """Over these cases (all the baseline's when it ran none of them): the mean rate, the smoothed rate
        the risk is computed at (never exactly 0 or 1, see stats.smoothed_rate), and how many cases."""
        values = [self.per_case[c] for c in case_ids if c in self.per_case] if case_ids is not None else []
        if not values:
            values = list(self.per_case.values())
        return sum(values) / len(values), stats.smoothed_rate(sum(values), len(values)), len(values)

    def rates_of(self, case_ids: Sequence[str], fallback: float) -> list[float]:
        """The baseline's rate of each of these cases, `fallback` for the ones it did not run."""
        return [self.per_case.get(c, fallback) for c in case_ids]


# A rule's own cases count this many pairs of runs' worth of the suite's flakiness as a prior: its few cases
# alone would either claim they never flip or that they flip at random.
FLIP_PRIOR_PAIRS = 20.0


def suite_discordance(rows: pl.DataFrame | None, advisory: Sequence[str] = ()) -> float | None:
    """How often two runs of a case disagree (case-level pass), over every case the evidence ran twice."""
    if rows is None or rows.height == 0:
        return None
    units = Selected(rows.filter(~pl.col("scorer").is_in(list(advisory)))).case_outcomes("case")
    if units.height == 0:
        return None
    per = units.group_by("case_id").agg(pl.len().alias("n"), (pl.col("outcome") == "pass").sum().alias("c"))
    return stats.pooled_discordance(per["n"].to_list(), per["c"].to_list())


def _observed(rule: Rule, rows: pl.DataFrame, calibrations: Calibrations | None,
              suite_flips: float | None = None) -> _Observed | None:
    """The rule's per-case rates on evidence rows; None when they cannot be computed from them."""
    spec = METRICS[rule.metric]
    sel = Selected(rows.filter(selection_expr(rule.select)))
    if sel.height == 0:
        return None
    try:
        if rule.metric == "judge_corrected_pass_rate":
            units = sel.rows.filter(pl.col("outcome").is_in(["pass", "fail"]))
            per = units.group_by("case_id").agg(pl.len().alias("n"), (pl.col("outcome") == "pass").sum().alias("c"))
        elif spec.per_case is not None:
            per = spec.per_case(sel, rule)
        else:
            return None
    except (Missing, RuleFailure):
        return None
    if per.height == 0:
        return None
    rate = pl.col("value") if "value" in per.columns else pl.col("c") / pl.col("n")
    per = per.with_columns(rate.alias("_r"))
    if rule.metric == "error_rate":  # per_case counts runs without error; the rule bounds the errored share
        per = per.with_columns((1 - pl.col("_r")).alias("_r"))
    flips = None
    if rule.metric in ("pass_rate", "scorer_pass_rate", "judge_corrected_pass_rate") and suite_flips is not None:
        flips = stats.pooled_discordance(per["n"].to_list(), per["c"].to_list(), prior=suite_flips,
                                         prior_pairs=FLIP_PRIOR_PAIRS)
    elif rule.metric in ("pass_rate", "scorer_pass_rate", "error_rate", "judge_corrected_pass_rate"):
        flips = stats.pooled_discordance(per["n"].to_list(), per["c"].to_list())
    return _Observed(dict(zip(per["case_id"].to_list(), per["_r"].to_list())), flips)


# -- planning one rule -----------------------------------------------------------------------------


def _levels(rule: Rule, information: list[float], spending: str) -> list[float]:
    """One-sided confidence per look. The rule's error is spent over its looks; a Clopper-Pearson rule (chosen
    because it is exact) keeps exactness with the union bound, the others get the group-sequential levels
    that account for the looks sharing data (stats.group_sequential_levels), to the normal approximation
    their Wilson or Tango bound already makes. The union bound throws away so much at later looks that
    an extension would often decide less than the run's own look did."""
    alpha = 1 - rule.confidence
    if rule.method == "clopper_pearson":
        return [1 - a for a in stats.alpha_per_look(information, alpha, spending)]
    return [1 - a for a in stats.group_sequential_levels(information, alpha, spending)]


def _schedule(rule: Rule, n: int, pool: list[str], repeats: int, adaptive: Adaptive, extendable: bool) -> RuleSchedule:
    """The looks the tier's adaptive budget allows the rule (one look when it may not be extended)."""
    single = RuleSchedule(None, [n], [rule.confidence], [0], [0])
    if not (adaptive.enabled and extendable and n > 0):
        return single
    stages = adaptive.max_looks - 1
    extra = min(adaptive.max_extra_cases, len(pool))
    if extra > 0 and rule.metric not in REPEAT_METRICS:
        added = sorted({round(extra * j / stages) for j in range(stages + 1)})
        looks = [n + a for a in added]
        confs = _levels(rule, [x / looks[-1] for x in looks], adaptive.spending)
        return RuleSchedule("cases", looks, confs, added, [0] * len(added), pool[:extra])
    if rule.metric in REPEAT_METRICS and adaptive.max_extra_repeats > 0:
        added = sorted({round(adaptive.max_extra_repeats * j / stages) for j in range(stages + 1)})
        runs = [repeats + a for a in added]
        confs = _levels(rule, [r / runs[-1] for r in runs], adaptive.spending)
        return RuleSchedule("repeats", [n * r for r in runs], confs, [0] * len(added), added)
    return single


def _bound_text(rule: Rule) -> str:
    kind, value = rule.bound.kind, rule.bound.value
    return {"min": f">= {value:g}", "max": f"<= {value:g}", "max_drop": f"drop <= {value:g}",
            "max_increase": f"increase <= {value:g}"}[kind]


def plan_rule(rule: Rule, *, planned: pl.DataFrame, pool: pl.DataFrame, order: Sequence[str], repeats: int,
              adaptive: Adaptive, evidence: pl.DataFrame | None, baseline_cases: Mapping[str, str | None] | None,
              calibrations: Calibrations | None = None, suite_flips: float | None = None) -> RulePlan:
    """The plan of one rule on a tier: `planned` and `pool` are skeleton rows of the tier's cases and of the
    suite's other cases, `order` the pool's extension order, `evidence` the baseline's result rows (None:
    unknown) and `baseline_cases` the case id -> content hash the baseline covers (relative rules)."""
    spec = METRICS[rule.metric]
    rows = planned.filter(selection_expr(rule.select))
    relative = rule.bound.relative
    kind = "point" if not spec.probability else ("paired" if relative else "absolute")
    if relative and baseline_cases is not None:
        rows = _covered(rows, baseline_cases)
    n = _units(rows, rule)
    pool_rows = pool.filter(selection_expr(rule.select)) if pool.height else pool
    pool_ids = set(pool_rows["case_id"].to_list()) if pool_rows.height else set()
    if relative:
        pool_ids = set(_covered(pool_rows, baseline_cases)["case_id"].to_list()) if baseline_cases and pool_ids \
            else set()
    rule_order = [c for c in order if c in pool_ids]
    extendable = kind in ("absolute", "paired") and rule.severity == "blocking" and rule.inconclusive == "block"
    sched = _schedule(rule, n, rule_order, repeats, adaptive, extendable)
    if n == 0 or kind == "point":
        plan = RulePlan(rule.id, rule.metric, rule.severity, rule.inconclusive == "block", kind, _bound_text(rule),
                        n, n, schedule=_schedule(rule, n, [], repeats, adaptive, False))
        whole_run = ("bootstrap interval over cases against the baseline (evidence-bound; not simulated here)"
                     if relative else "point estimate without an interval: always decides")
        plan.notes.append(whole_run if n else
                          "selects no case in this tier" + (" the baseline covers" if relative else ""))
        plan.can_pass = True if n else None
        return plan
    case_ids = sorted(set(rows["case_id"].to_list()))
    seen = _observed(rule, evidence, calibrations, suite_flips) if evidence is not None and evidence.height \
        else None

    def planned_with(schedule: RuleSchedule) -> RulePlan:
        plan = RulePlan(rule.id, rule.metric, rule.severity, rule.inconclusive == "block", kind, _bound_text(rule),
                        n, schedule.looks[-1] if schedule.extension == "cases" else n, schedule=schedule)
        if kind == "paired":
            _plan_paired(plan, rule, seen, case_ids)
        else:
            _plan_absolute(plan, rule, seen, calibrations, case_ids, repeats)
        return plan

    plan = planned_with(sched)
    if sched.extension:
        # Spending the error over looks makes the run's own look stricter. So a rule is not extended where that
        # costs more than it buys: where a perfect result could pass one look but no look of the extension, or
        # where one look already blocks a no-change re-run rarely and more looks would block it more often.
        # Where one look blocks often, more evidence is the remedy, and the rule is extended.
        one = planned_with(_schedule(rule, n, [], repeats, adaptive, False))
        if (one.can_pass and not plan.can_pass) or (
                plan.false_block_risk is not None and one.false_block_risk is not None
                and one.false_block_risk <= RISK_LIMIT and plan.false_block_risk > one.false_block_risk):
            one.notes.append("not extended: more looks would decide less than one")
            plan = one
    plan.refused = rule.severity == "blocking" and rule.inconclusive == "block" and plan.can_pass is False
    return plan


def _outcomes_for(rule: Rule, calibrations: Calibrations | None):
    """(n, conf) -> (PASS mask, FAIL mask) over k for the rule's own bound; None when it cannot be known here."""
    if rule.metric != "judge_corrected_pass_rate":
        return lru_cache(maxsize=256)(
            lambda n, conf: stats.absolute_outcomes(n, rule.bound.value, conf, rule.method, rule.bound.kind))
    try:
        cal = resolve_calibration(rule, calibrations)
    except Missing:
        return None
    if judge_youden(cal)[2] < rule.judge.min_youden:
        return None
    import numpy as np

    @lru_cache(maxsize=256)
    def outcomes(n: int, conf: float):
        bounds = [judge_corrected_bounds(k, n, cal, conf, rule.method) for k in range(n + 1)]
        return (np.array([b["lower"] for b in bounds]) >= rule.bound.value,
                np.array([b["upper"] for b in bounds]) < rule.bound.value)

    return outcomes


def repeats_counted(rule: Rule, schedule: RuleSchedule, repeats: int) -> int:
    """Runs per case a rule's gate may count as (partly) independent units: the repeats of a case-level rate
    (pass_rate, scorer_pass_rate, error_rate by case); one for rules with one value per case."""
    if rule.metric in ("pass_rate", "scorer_pass_rate", "error_rate") and rule.cluster == "case" \
            and schedule.extension != "repeats":
        return max(1, repeats)
    return 1


def _plan_absolute(plan: RulePlan, rule: Rule, seen: _Observed | None, calibrations: Calibrations | None,
                   case_ids: Sequence[str], repeats: int = 1) -> None:
    sched, kind = plan.schedule, rule.bound.kind
    outcomes = _outcomes_for(rule, calibrations)
    if outcomes is None:
        plan.notes.append("no usable judge calibration: cannot plan")
        return
    # Risk and power are computed over the case looks; a repeat extension adds runs of the same cases
    # (its benefit is not counted: the plan takes its first look only, at that look's share of the error).
    looks, confs = (list(sched.looks), list(sched.confs)) if sched.extension != "repeats" else \
        ([plan.n], [sched.confs[0]])
    bounds = []  # (a perfect result passes, its bound) per look: every unit passing a floor, none bad under a ceiling
    for n, conf in zip(looks, confs):
        passes, _ = outcomes(n, conf)
        bounds.append((bool(passes[n if kind == "min" else 0]), _perfect_bound(rule, n, conf, calibrations)))
    plan.can_pass = any(ok for ok, _ in bounds)
    plan.best_bound = (max if kind == "min" else min)(b for _, b in bounds)
    plan.n_needed = stats.smallest_n(lambda n: bool(outcomes(n, rule.confidence)[0][n if kind == "min" else 0]), 1,
                                     limit=1_000_000 if rule.metric != "judge_corrected_pass_rate" else 5_000)

    def probabilities(rate: float, psi: float | None, extra: float | None = None, at=None, observed=None):
        at_looks, at_confs = at or (looks, confs)
        return stats.absolute_gate_probabilities(at_looks, at_confs, rule.bound.value, rate, discordance=psi,
                                                 extra_rate=extra, outcomes=outcomes, observed=observed)

    blocks = plan.blocks_inconclusive
    # The rate at which a no-change re-run is blocked at most RISK_LIMIT of the time (flips at their largest).
    plan.safe_rate = _bisect_rate(lambda p: probabilities(p, None).blocked(blocks) <= RISK_LIMIT, kind)
    if seen is None:
        return
    mean, rate, n_seen = seen.rate(case_ids)
    plan.rate, plan.rate_source = mean, f"baseline, {n_seen} cases"
    if seen.discordance is not None:
        plan.discordance, plan.discordance_source = seen.discordance, "baseline repeats"
    extra = extra_mean = None
    observed: list[list[float] | None] = [None] * len(looks)
    if sched.extension == "cases":
        extra_mean, extra, _ = seen.rate(sched.case_order)
        stages = [sched.case_order[a:b] for a, b in zip(sched.extra_cases, sched.extra_cases[1:])]
        observed = [None] + [seen.rates_of(stage, extra) for stage in stages]
    if rule.cluster == "case":  # the same cases: a re-run keeps what the baseline saw, up to its flips
        observed[0] = seen.rates_of(case_ids, rate)
    result = probabilities(rate, plan.discordance, extra, observed=observed)
    plan.p_pass, plan.p_pass_first_look = result.passed, result.by_look[0][0]
    plan.false_block_risk = result.blocked(blocks)

    # A gate counts the repeats of flaky cases as partly independent (its design effect falls towards 1 as a
    # worse model flakes), so it works on between n cases and n x repeats units. Detection is the least of
    # the two ends (a binomial over each): with more units a rate just above the bound passes more often,
    # with fewer a rate below it is confirmed less often. Measured from the rate the baseline showed, not the
    # smoothed one the risk uses.
    per_case = repeats_counted(rule, plan.schedule, repeats)
    ends = [stats.absolute_detectable_change([n * units for n in looks], confs, rule.bound.value, mean, kind=kind,
                                             power=POWER, inconclusive_blocks=blocks, extra_rate=extra_mean,
                                             outcomes=outcomes) for units in sorted({1, per_case})]
    plan.detectable = None if any(e is None for e in ends) else max(ends)
    judge = rule.metric == "judge_corrected_pass_rate"  # its bound is on the corrected rate, not on `rate`
    hopeless = not judge and (rate <= rule.bound.value if kind == "min" else rate >= rule.bound.value)
    if plan.false_block_risk > RISK_LIMIT and not hopeless:
        plan.n_for_low_risk = stats.smallest_n(
            lambda n: probabilities(rate, plan.discordance, None, ([n], [rule.confidence])).blocked(blocks)
            <= RISK_LIMIT, max(1, plan.n), limit=2_000 if judge else 20_000)


def _perfect_bound(rule: Rule, n: int, conf: float, calibrations: Calibrations | None) -> float:
    if rule.metric == "judge_corrected_pass_rate":
        return judge_corrected_bounds(n, n, resolve_calibration(rule, calibrations), conf, rule.method)["lower"]
    return stats.best_bound(n, conf, rule.method, rule.bound.kind)


def _bisect_rate(ok, kind: str) -> float | None:
    """The least favourable rate with ok(rate) (the lowest pass rate for a floor, the highest bad rate for a
    ceiling); None when not even a perfect rate is ok."""
    good, bad = (1.0, 0.0) if kind == "min" else (0.0, 1.0)
    if not ok(good):
        return None
    for _ in range(24):
        mid = (good + bad) / 2
        good, bad = (mid, bad) if ok(mid) else (good, mid)
    return good


def _plan_paired(plan: RulePlan, rule: Rule, seen: _Observed | None, case_ids: Sequence[str]) -> None:
    sched, margin = plan.schedule, rule.bound.value
    if margin >= 1:
        plan.notes.append("a drop of 1 or more cannot be tested")
        return
    # A perfect no-change run is identical to the baseline (no discordant case).
    lowers = [stats.tango_lower_bound(0, 0, n, c) for n, c in zip(sched.looks, sched.confs)]
    plan.best_bound = max(lowers)
    plan.can_pass = plan.best_bound > -margin
    plan.n_needed = stats.smallest_n(lambda n: stats.tango_lower_bound(0, 0, n, rule.confidence) > -margin, 1,
                                     limit=1_000_000)
    if seen is None:
        return
    mean, rate, n_seen = seen.rate(case_ids)
    plan.rate, plan.rate_source = mean, f"baseline, {n_seen} cases"
    if seen.discordance is not None:
        psi, plan.discordance_source = seen.discordance, "baseline repeats"
    else:
        psi, plan.discordance_source = 2 * rate * (1 - rate), "2p(1-p): no repeats to measure it"
    plan.discordance = psi
    result = stats.paired_gate_probabilities(sched.looks, sched.confs, margin, psi / 2, psi / 2)
    plan.p_pass, plan.p_pass_first_look = result.passed, result.by_look[0][0]
    plan.false_block_risk = result.blocked(plan.blocks_inconclusive)
    plan.detectable = stats.paired_detectable_drop(sched.looks, sched.confs, margin, psi, power=POWER,
                                                   inconclusive_blocks=plan.blocks_inconclusive)
    if plan.false_block_risk > RISK_LIMIT and psi > margin ** 2:
        # Connor's normal approximation at 95% power: the size for a no-change run to pass 95% of the time.
        plan.n_for_low_risk = stats.n_for_noninferiority_paired(psi, margin, 0.0, 1 - rule.confidence,
                                                                power=1 - RISK_LIMIT)


# -- a whole tier ------------------------------------------------------------------------------------


def _scoped_plan(rule: Rule, outcome: str, reason: str) -> RulePlan:
    """A rule the tier's choice of scorers decides before anything runs: nothing to plan, never refused."""
    kind = "point" if not METRICS[rule.metric].probability else ("paired" if rule.bound.relative else "absolute")
    return RulePlan(rule.id, rule.metric, rule.severity, rule.inconclusive == "block", kind, _bound_text(rule), 0, 0,
                    notes=[reason], scoped=outcome)


def plan_rules(policy: Policy, *, suite: str, tier: str, planned: pl.DataFrame, pool: pl.DataFrame,
               order: Sequence[str], repeats: int, adaptive: Adaptive, evidence: pl.DataFrame | None = None,
               baseline_cases: Mapping[str, str | None] | None = None, calibrations: Calibrations | None = None,
               policy_file: str = "policy", baseline_run_id: str | None = None,
               evidence_runs: Sequence[str] = (), evidence_note: str | None = None,
               scoped: Mapping[str, tuple[str, str]] | None = None) -> TierPlan:
    """The plan of every rule of `policy` on one tier, from skeleton rows (see plan_rule); pure. `scoped` holds
    the rules the tier's choice of scorers decides by itself (evalplatform.tiers.rule_scope), as the run will."""
    flips = suite_discordance(evidence, policy.advisory_scorers)
    scoped = scoped or {}
    rules = [_scoped_plan(rule, *scoped[rule.id]) if rule.id in scoped else
             plan_rule(rule, planned=planned, pool=pool, order=order, repeats=repeats, adaptive=adaptive,
                       evidence=evidence, baseline_cases=baseline_cases, calibrations=calibrations, suite_flips=flips)
             for rule in policy.rules]
    n_cases = planned["case_id"].n_unique() if planned.height else 0
    plan = TierPlan(suite, tier, n_cases, repeats, adaptive.model_dump(), rules, policy_file, baseline_run_id,
                    list(evidence_runs))
    if evidence_note:
        plan.evidence_note = evidence_note
    return plan


def plan_tier(suite: "LoadedSuite", tier: str, *, store: "HistoryStore | None" = None,
              run_plan: "RunPlan | None" = None) -> TierPlan:
    """The plan of the suite's policy on one tier, with rates from the history's baseline for that tier.

    Reads the history, never writes it. Rates come from the tier's promoted baseline, pooled with the
    other promoted runs of the same target (as relative rules compare against them), else from the
    latest complete run of the tier, else they are unknown.
    """
    from evalplatform.decide import baseline_runs, effective_policy, judge_calibrations, judges_not_allowed
    from evalplatform.runner import load_dataset, plan_run
    from evalplatform.suite import TierSpec
    from evalplatform.tiers import rule_scope

    eff = effective_policy(suite)
    if run_plan is None:
        # The scorers the run would choose: the tier's, less the judges that would gate and may not.
        not_allowed = judges_not_allowed(store, suite, eff.policy, calibrate=False) if store is not None else None
        run_plan = plan_run(suite, tier, dataset=load_dataset(suite), not_allowed=not_allowed)
    tier_spec = suite.spec.tiers.get(tier) or TierSpec()
    all_cases = run_plan.dataset.cases
    planned_ids = set(run_plan.cases["case_id"].to_list())
    rest = all_cases.filter(~pl.col("case_id").is_in(list(planned_ids)))
    evidence = base_cases = base_id = None
    runs: list[str] = []
    note = None
    calibrations: dict = {}
    if store is not None:
        base = baseline_runs(store, suite.name, None, tier)
        if base.run_id is not None:
            evidence, base_id, runs = base.frame, base.run_id, list(base.run_ids)
            base_cases = _case_hashes(evidence)
            note = f"baseline {base.run_id}" + (f" pooled with {len(runs) - 1} promoted run(s) of the same target"
                                                if len(runs) > 1 else "")
        else:
            # Else the latest complete run of the target the tier will run, of this tier if there is one.
            latest = store.list_runs(suite.name, limit=200)
            if latest.height:
                latest = latest.filter(pl.col("target_model") == run_plan.target.model).sort(
                    pl.col("tier") != tier, maintain_order=True)
            if latest.height:
                rid, its_tier = latest["run_id"][0], latest["tier"][0]
                evidence, runs = store.get_results(rid), [rid]
                note = f"no promoted baseline: rates from the latest complete {its_tier} run of " \
                       f"{run_plan.target.model} ({rid})"
        calibrations = judge_calibrations(store, suite, eff.policy.rules, calibrate=False)
    if evidence is not None and evidence.height:
        # The baseline's rows of scorers this tier does not run say nothing about this tier's rules.
        evidence = evidence.filter(pl.col("scorer").is_in([s.id for s in run_plan.scorers]))
    return plan_rules(
        eff.policy, suite=suite.name, tier=tier, planned=skeleton(suite, run_plan.cases, run_plan.scorers),
        pool=skeleton(suite, rest, run_plan.scorers), order=extension_order(rest, tier_spec.stratify_by, tier_spec.seed),
        repeats=run_plan.repeats, adaptive=tier_spec.adaptive_for(tier), evidence=evidence,
        baseline_cases=base_cases, calibrations=calibrations, policy_file=eff.source, baseline_run_id=base_id,
        evidence_runs=runs, evidence_note=note, scoped=rule_scope(eff.policy, suite, run_plan.scope, run_plan.cases))


def _case_hashes(frame: pl.DataFrame) -> dict[str, str | None]:
    if frame is None or frame.height == 0:
        return {}
    per = frame.group_by("case_id").agg(pl.col("case_hash").max())
    return dict(zip(per["case_id"].to_list(), per["case_hash"].to_list()))


def plans_for_suite(suite: "LoadedSuite", tiers: Sequence[str] | None = None, *,
                    store: "HistoryStore | None" = None) -> list[TierPlan]:
    """Plans for the suite's tiers (both when `tiers` is None), for `evalplatform plan --suite S [--tier T]`."""
    from evalplatform.runner import TIERS

    return [plan_tier(suite, t, store=store) for t in (tiers or TIERS)]

