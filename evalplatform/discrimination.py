"""How well a suite's policy catches known degradations of a recorded run: its discrimination, measured.

Mutation testing for evals (stats.md section 8): take a recorded run, break a fraction f of its passing
outputs in every category (flip them to failing, or apply one of the suite's text mutators and re-score
with its deterministic scorers), decide the policy on the result against the run's baseline, and count
how often the policy blocks. Per dose f and per degradation: the share of draws caught, with a Wilson
interval. The suite's discrimination score is the mean share caught over the flip doses; the smallest
dose caught in 80% of draws is what it reliably sees. Decided in one look per draw (no extension).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import polars as pl

from evalplatform import results as rt
from evalplatform import stats
from evalplatform.errors import InputError
from evalplatform.mutators import MUTATORS
from evalplatform.policy import evaluate_policy
from evalplatform.policy.units import case_repeat_outcomes

if TYPE_CHECKING:
    from evalplatform.history import HistoryStore
    from evalplatform.project import Project

FRACTIONS = (0.05, 0.1, 0.2)
POWER = 0.8
# The advisory check passes when flipping this share of passing outputs is caught in POWER of the draws.
CHECK_FRACTION = 0.1
FLIP = "flip"


@dataclass
class Dose:
    """One degradation at one fraction f: how many of its draws the policy blocked, and which rules did."""

    degradation: str
    fraction: float
    draws: int
    caught: int
    interval: list[float]
    outputs_broken: float  # mean outputs degraded per draw
    blocked_by: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.caught / self.draws if self.draws else 0.0


@dataclass
class DiscriminationResult:
    suite: str
    run_id: str
    baseline_run_id: str | None
    policy_hash: str | None
    seed: int
    draws: int
    undegraded: str  # the policy's decision on the run as recorded
    doses: list[Dose]
    passing_outputs: int
    all_outputs: int
    warnings: list[str] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        """Mean share caught over the flip doses."""
        flips = [d.rate for d in self.doses if d.degradation == FLIP]
        return float(np.mean(flips)) if flips else None

    @property
    def detectable_fraction(self) -> float | None:
        """The smallest flip dose the policy blocks in at least 80% of draws."""
        caught = [d.fraction for d in self.doses if d.degradation == FLIP and d.rate >= POWER]
        return min(caught) if caught else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["score"], out["detectable_fraction"] = self.score, self.detectable_fraction
        for dose, d in zip(out["doses"], self.doses):
            dose["rate"] = d.rate
        return out


def _category(frame: pl.DataFrame) -> pl.Expr:
    tagged = pl.col("tags").list.eval(pl.element().filter(pl.element().str.starts_with("category:"))).list.first()
    return tagged.fill_null("(none)").alias("_stratum")


def _pick(units: pl.DataFrame, fraction: float, rng: np.random.Generator) -> pl.DataFrame:
    """A share `fraction` of each category's passing outputs, by randomized rounding (E[count] = f m)."""
    picked = []
    for _, group in units.group_by("_stratum", maintain_order=True):
        m = group.height
        k = min(m, int(math.floor(fraction * m + rng.random())))
        if k:
            picked.append(group[rng.choice(m, size=k, replace=False).tolist()])
    if not picked:
        return units.head(0)
    return pl.concat(picked)


def _flip(results: pl.DataFrame, broken: pl.DataFrame) -> pl.DataFrame:
    """Every passing row of the broken outputs fails (a degraded output fails whatever checks it)."""
    keys = broken.select("case_id", "repeat").with_columns(pl.lit(True).alias("_broken"))
    out = results.join(keys, on=["case_id", "repeat"], how="left")
    hit = pl.col("_broken").fill_null(False) & (pl.col("outcome") == "pass")
    return out.with_columns(
        pl.when(hit).then(pl.lit("fail")).otherwise(pl.col("outcome")).alias("outcome"),
        pl.when(hit & pl.col("score").is_not_null()).then(pl.lit(0.0)).otherwise(pl.col("score")).alias("score"),
    ).drop("_broken")


class _Rescorer:
    """Re-scores mutated outputs with the suite's deterministic scorers (judges keep their verdicts: calling
    a judge model for every draw is what this measurement must not cost)."""

    def __init__(self, suite, store: "HistoryStore", results: pl.DataFrame):
        from evalplatform.runner import RunPlan, load_dataset

        det = [s for s in suite.spec.scorers if s.tier_cost == "deterministic"]
        self.scorers = {s.id for s in det}
        self.suite = suite.model_copy(update={"spec": suite.spec.model_copy(update={"scorers": det})})
        dataset = load_dataset(suite)
        run_cases = results["case_id"].unique().to_list()
        cases = dataset.cases.filter(pl.col("case_id").is_in(run_cases))
        self.plan = RunPlan(suite=self.suite, dataset=dataset, tier="discriminate", cases=cases,
                            target=suite.spec.target, repeats=1)
        calls = rt.call_rows(results).select("case_id", "repeat", "output_hash").unique(["case_id", "repeat"])
        texts = {h: store.get_output(h) for h in calls["output_hash"].drop_nulls().unique().to_list()}
        self.outputs = calls.with_columns(
            pl.col("output_hash").replace_strict(texts, default=None, return_dtype=pl.Utf8).alias("output"))

    def apply(self, results: pl.DataFrame, broken: pl.DataFrame, mutator: str) -> pl.DataFrame:
        from evalplatform.runner import score_outputs

        if broken.height == 0 or not self.scorers:
            return results
        mutate = MUTATORS[mutator]
        chosen = self.outputs.join(broken.select("case_id", "repeat"), on=["case_id", "repeat"], how="inner")
        chosen = chosen.filter(pl.col("output").is_not_null()).with_columns(
            pl.col("output").map_elements(mutate, return_dtype=pl.Utf8))
        if chosen.height == 0:
            return results
        frame = chosen.with_columns(pl.lit(None, dtype=pl.Utf8).alias("call_error")).join(
            self.plan.cases, on="case_id", how="left")
        rescored = score_outputs(self.plan, frame, str(results["run_id"][0]))
        keep = results.join(chosen.select("case_id", "repeat").with_columns(pl.lit(True).alias("_m")),
                            on=["case_id", "repeat"], how="left")
        keep = keep.filter(~(pl.col("_m").fill_null(False) & pl.col("scorer").is_in(list(self.scorers)))).drop("_m")
        # The calls' own numbers (latency, tokens, cost) stay those of the recorded run.
        calls = results.select("case_id", "repeat", "latency_ms", "served_ms", "tokens_in", "tokens_out",
                               "cost_usd", "cache_hit", "attempts").unique(["case_id", "repeat"])
        rescored = rescored.drop("latency_ms", "served_ms", "tokens_in", "tokens_out", "cost_usd", "cache_hit",
                                 "attempts").join(calls, on=["case_id", "repeat"], how="left")
        return pl.concat([keep, rt.conform(rescored)], how="vertical_relaxed")


def discriminate(project: "Project", suite: str, run_id: str | None = None, *,
                 fractions: Sequence[float] = FRACTIONS, draws: int = 40, seed: int = 0,
                 store: "HistoryStore | None" = None, record: bool = True) -> DiscriminationResult:
    """Measure the share of known degradations of a recorded run that the suite's policy blocks.

    `run_id` defaults to the suite's latest promoted baseline, else its latest complete run. Relative
    rules compare against that run's own baseline (pooled as the run pipeline pools it); a run that has
    none is compared with itself undegraded, which leaves out run-to-run noise (the result says so).
    Stored in the history (table `discriminations`) unless record=False.
    """
    from evalplatform.decide import baseline_runs, effective_policy, judge_calibrations, judges_not_allowed_by_pins
    from evalplatform.history import HistoryStore
    from evalplatform.pipeline import resolve_suite

    fractions = [_fraction(f) for f in fractions]
    if not fractions:
        raise InputError(None, "--fraction", "give at least one fraction", "e.g. 0.05 0.1 0.2")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1 or draws > 10_000:
        raise InputError(None, "--draws", f"must be a whole number from 1 to 10000, got {draws!r}")
    store = store or HistoryStore(project.history_path)
    loaded = resolve_suite(project, suite)
    run_id = run_id or store.latest_baseline(loaded.name) or (store.latest_run(loaded.name) or {}).get("run_id")
    run = store.get_run(run_id) if run_id else None
    if run is None:
        raise InputError(project.history_path, "--run", f"no recorded run {run_id!r} of suite {loaded.name!r}"
                         if run_id else f"suite {loaded.name!r} has no complete run", "run the suite first")
    if run["suite"] != loaded.name or run["status"] != "complete":
        raise InputError(project.history_path, "--run", f"run {run['run_id']} is a {run['status']} run of suite "
                         f"{run['suite']!r}; discrimination needs a complete run of {loaded.name!r}")
    results = store.get_results(run["run_id"])
    eff = effective_policy(loaded)
    base = baseline_runs(store, loaded.name, run["run_id"], run.get("tier"))
    warnings: list[str] = []
    baseline = base.frame
    if baseline is None:
        baseline = results
        warnings.append("the run has no baseline: relative rules compare with the run itself undegraded, so they "
                        "see the degradation without any run-to-run noise (an optimistic catch rate)")
    kwargs = dict(calibrations=judge_calibrations(store, loaded, eff.policy.rules, calibrate=False),
                  judges_not_allowed=judges_not_allowed_by_pins(store, run.get("judge_pins")),
                  policy_hash=eff.sha256)
    undegraded = evaluate_policy(eff.policy, results, baseline, **kwargs).overall
    advisory = list(eff.policy.advisory_scorers)
    units = case_repeat_outcomes(results.filter(~pl.col("scorer").is_in(advisory))).join(
        results.select("case_id", "tags").unique("case_id"), on="case_id", how="left").with_columns(_category(results))
    passing = units.filter(pl.col("outcome") == "pass")
    if units.height and passing.height == units.height:
        warnings.append("every output of the run passes: the suite is at its ceiling and cannot see regressions "
                        "above it (add harder cases)")
    if undegraded != "PASS":
        warnings.append(f"the policy does not pass the run even undegraded ({undegraded}): every draw counts as "
                        "caught, so these shares say nothing about discrimination")
    rescorer = _Rescorer(loaded, store, results) if loaded.spec.mutators else None
    doses: list[Dose] = []
    for d_index, degradation in enumerate([FLIP, *loaded.spec.mutators]):
        for f_index, fraction in enumerate(fractions):
            rng = np.random.default_rng([seed, d_index, f_index])
            caught, broken_total, by_rule = 0, 0, {}
            for _ in range(draws):
                broken = _pick(passing, fraction, rng)
                broken_total += broken.height
                degraded = _flip(results, broken) if degradation == FLIP else rescorer.apply(results, broken,
                                                                                              degradation)
                decision = evaluate_policy(eff.policy, degraded, baseline, **kwargs)
                if decision.overall != "PASS":
                    caught += 1
                    for r in decision.rules:
                        if r.blocks:
                            by_rule[r.rule_id] = by_rule.get(r.rule_id, 0) + 1
            doses.append(Dose(degradation, fraction, draws, caught, stats.wilson_interval(caught, draws),
                              broken_total / draws, dict(sorted(by_rule.items()))))
    result = DiscriminationResult(loaded.name, run["run_id"], base.run_id, eff.sha256, seed, draws, undegraded,
                                  doses, passing.height, units.height, warnings)
    fraction = result.detectable_fraction
    if fraction is None or fraction > CHECK_FRACTION:
        result.warnings.append(
            f"no flip dose up to {CHECK_FRACTION:.0%} is caught in {POWER:.0%} of draws" if fraction is None else
            f"flipping {CHECK_FRACTION:.0%} of passing outputs is caught in fewer than {POWER:.0%} of draws "
            f"(the smallest dose caught that often is {fraction:.0%})")
    if record:
        store.put_discrimination({
            "suite": result.suite, "run_id": result.run_id, "baseline_run_id": result.baseline_run_id,
            "policy_hash": result.policy_hash, "seed": seed, "draws": draws, "score": result.score,
            "detectable_fraction": result.detectable_fraction, "results": result.to_dict(),
            "warnings": result.warnings})
    return result


def _fraction(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InputError(None, "--fraction", f"must be a number in (0, 1], got {value!r}") from None
    if not math.isfinite(f) or not 0 < f <= 1:
        raise InputError(None, "--fraction", f"must be a number in (0, 1], got {value!r}")
    return f


def discrimination_check(result: DiscriminationResult | dict) -> tuple[bool, str]:
    """The advisory check: passes when flipping CHECK_FRACTION of passing outputs is caught in POWER of draws
    and nothing makes the measurement meaningless (a run at 100%, a run the policy blocks undegraded)."""
    data = result.to_dict() if isinstance(result, DiscriminationResult) else result
    fraction, warnings = data.get("detectable_fraction"), list(data.get("warnings") or [])
    ok = fraction is not None and fraction <= CHECK_FRACTION and not any(
        "ceiling" in w or "even undegraded" in w for w in warnings)
    score = data.get("score")
    text = (f"discrimination score {score:.2f}" if score is not None else "no discrimination score") + (
        f"; caught >= {POWER:.0%} from {fraction:.0%} flipped" if fraction is not None else "")
    return ok, "; ".join([text, *warnings])


def discrimination_table(result: DiscriminationResult) -> str:
    """Plain text: per degradation and dose, the share of draws the policy blocked and which rules did."""
    lines = [f"suite {result.suite}: discrimination of run {result.run_id} "
             f"(baseline {result.baseline_run_id or 'none'}; {result.passing_outputs} of {result.all_outputs} "
             f"outputs pass; undegraded: {result.undegraded}; {result.draws} draws per dose, seed {result.seed})"]
    rows = [["degradation", "fraction", "outputs broken", "caught", "95% interval", "blocked by"]]
    for d in result.doses:
        top = ", ".join(f"{k} {v}" for k, v in sorted(d.blocked_by.items(), key=lambda kv: -kv[1])[:3])
        rows.append([d.degradation, f"{d.fraction:.0%}", f"{d.outputs_broken:.1f}", f"{d.caught}/{d.draws} "
                     f"({d.rate:.0%})", f"[{d.interval[0]:.2f}, {d.interval[1]:.2f}]", top or "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    score, fraction = result.score, result.detectable_fraction
    lines.append(f"discrimination score (mean share caught over the flip doses): "
                 f"{'n/a' if score is None else f'{score:.2f}'}; caught in {POWER:.0%} of draws from: "
                 f"{'no dose' if fraction is None else f'{fraction:.0%} flipped'}")
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines) + "\n"
