"""A synthetic target on the demo suite's real cases, tiers and policy: runs drawn from known per-case pass
probabilities, so the policy engine, the adaptive loop and the plan can be checked against the truth.

Each case has a pass probability p_i (a repeat passes with it, independently) and a judge-PASS probability
q_i for the tone judge. A run is a frame of canonical rows: one deterministic `check` row per (case, repeat)
carrying the case's outcome, one `tone_trained` judge row, and a fixed latency. No model is called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from evalplatform import results as rt
from evalplatform.adaptive import Evidence, EvidenceRequest, decide_adaptively
from evalplatform.decide import _pool, effective_policy
from evalplatform.planning import TierPlan, extension_order, plan_rules, skeleton
from evalplatform.policy import JudgeCalibration
from evalplatform.runner import load_dataset, plan_run
from evalplatform.suite import Adaptive, load_suite

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "datasets" / "demo" / "suite.yaml"
# The tone judges' calibration (Se = 0.9, Sp = 0.8 on 150 + 50 human labels).
CALIBRATIONS = {"tone_trained": JudgeCalibration.from_confusion(135, 15, 10, 40),
                "tone_judge": JudgeCalibration.from_confusion(135, 15, 10, 40)}


@lru_cache(maxsize=1)
def demo():
    suite = load_suite(DEMO)
    dataset = load_dataset(suite)
    policy = effective_policy(suite).policy
    return suite, dataset, policy


@dataclass
class Target:
    """Per-case pass probabilities (and judge-PASS probabilities) of a synthetic model."""

    p: dict[str, float]
    q: dict[str, float]
    name: str = "target"

    def worse(self, cases: set[str], drop: float) -> "Target":
        """The same model with the mean pass probability of `cases` lower by `drop` (each scaled alike)."""
        mean = float(np.mean([self.p[c] for c in cases]))
        factor = max(0.0, 1 - drop / mean)
        return Target({c: (v * factor if c in cases else v) for c, v in self.p.items()}, dict(self.q),
                      f"{self.name} -{drop:.3f}")

    def better(self, share: float = 0.5) -> "Target":
        """The same model failing `share` less often on every case."""
        return Target({c: v + (1 - v) * share for c, v in self.p.items()},
                      {c: v + (1 - v) * share for c, v in self.q.items()}, f"{self.name} better")


# The cases support-v1 fails (datasets/demo/README.md): the synthetic baseline can hardly do them either.
HARD = ("arithmetic-005", "dates-004", "format-013", "grounding-049", "grounding-050", "refusal-019", "refusal-020")


def baseline_target(seed: int = 2024, flaky: float = 0.08) -> Target:
    """support-v1 at a temperature: the cases it fails it nearly always fails, a share `flaky` of the others
    passes 80-97% of the time, the rest 99.5%; its tone judge says PASS 80-98% of the time per case."""
    _, dataset, _ = demo()
    rng = np.random.default_rng(seed)
    p, q = {}, {}
    for case in dataset.cases["case_id"].to_list():
        u = rng.random()
        p[case] = 0.05 if case in HARD else (float(rng.uniform(0.8, 0.97)) if u < flaky else 0.995)
        q[case] = float(rng.uniform(0.8, 0.98))
    return Target(p, q, "baseline")


def noisy_target(seed: int = 7) -> Target:
    """A model whose every case is uncertain (the issue's target: a paired SE of several points)."""
    _, dataset, _ = demo()
    rng = np.random.default_rng(seed)
    cases = dataset.cases["case_id"].to_list()
    return Target({c: float(rng.uniform(0.75, 0.99)) for c in cases}, {c: 0.9 for c in cases}, "noisy")


MAX_REPEATS = 8


@lru_cache(maxsize=1)
def _template() -> tuple[pl.DataFrame, dict[tuple[str, int], int]]:
    """Every (case, repeat) a synthetic run may hold, built once: a draw picks rows and sets outcomes."""
    suite, dataset, _ = demo()
    cases = dataset.cases.select("case_id", "tags", "case_hash")
    frame = cases.join(pl.DataFrame({"repeat": list(range(MAX_REPEATS))}, schema={"repeat": pl.Int32}),
                       how="cross").with_columns(pl.lit(suite.name).alias("suite"), pl.lit(100.0).alias("latency_ms"),
                                                 pl.lit(0.0).alias("cost_usd"), pl.lit(False).alias("cache_hit"))
    index = {(c, r): i for i, (c, r) in enumerate(frame.select("case_id", "repeat").iter_rows())}
    return frame, index


def _frame(runs: list[tuple[str, int]], outcomes: np.ndarray, verdicts: np.ndarray, run_id: str) -> pl.DataFrame:
    template, index = _template()
    rows = template[[index[run] for run in runs]].with_columns(pl.lit(run_id).alias("run_id"))
    check = rows.with_columns(pl.lit("check").alias("scorer"), pl.lit("correctness").alias("criterion"),
                              pl.Series("outcome", np.where(outcomes, "pass", "fail")),
                              pl.Series("score", outcomes.astype(float)))
    judge = rows.with_columns(pl.lit("tone_trained").alias("scorer"), pl.lit("tone").alias("criterion"),
                              pl.Series("outcome", np.where(verdicts, "pass", "fail")),
                              pl.Series("score", verdicts.astype(float)))
    return rt.conform(pl.concat([check, judge], how="vertical_relaxed"))


def draw(target: Target, runs: list[tuple[str, int]], rng: np.random.Generator, run_id: str) -> pl.DataFrame:
    """One run of `target` on the given (case, repeat) pairs."""
    p = np.array([target.p[c] for c, _ in runs])
    q = np.array([target.q[c] for c, _ in runs])
    return _frame(runs, rng.random(len(runs)) < p, rng.random(len(runs)) < q, run_id)


@lru_cache(maxsize=4)
def _tier_runs(tier: str) -> tuple[tuple[str, int], ...]:
    suite, dataset, _ = demo()
    plan = plan_run(suite, tier, dataset=dataset)
    return tuple((c, r) for c in plan.cases["case_id"].to_list() for r in range(plan.repeats))


def tier_runs(tier: str) -> list[tuple[str, int]]:
    return list(_tier_runs(tier))


@dataclass
class Scenario:
    """A tier of the demo under a synthetic baseline: the plan the run would make, and the promoted baselines."""

    tier: str
    plan: TierPlan
    repeats: int
    adaptive: Adaptive
    base_runs: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


def baseline_frame(target: Target, rng: np.random.Generator) -> pl.DataFrame:
    """The promoted baselines a run compares against: a PR and a nightly run of the target, pooled."""
    pr = draw(target, tier_runs("pr"), rng, "base-pr")
    nightly = draw(target, tier_runs("nightly"), rng, "base-nightly")
    return _pool([pr, nightly])


def scenario(tier: str, target: Target, seed: int = 0) -> Scenario:
    """The tier's plan from one draw of the promoted baselines of `target` (what `evalplatform plan` sees)."""
    suite, dataset, policy = demo()
    plan = plan_run(suite, tier, dataset=dataset)
    spec = suite.spec.tiers[tier]
    evidence = baseline_frame(target, np.random.default_rng([seed, 99]))
    planned_ids = set(plan.cases["case_id"].to_list())
    rest = dataset.cases.filter(~pl.col("case_id").is_in(list(planned_ids)))
    hashes = dict(zip(evidence["case_id"].to_list(), evidence["case_hash"].to_list()))
    tier_plan = plan_rules(policy, suite=suite.name, tier=tier, planned=skeleton(suite, plan.cases),
                           pool=skeleton(suite, rest), order=extension_order(rest, spec.stratify_by, spec.seed),
                           repeats=plan.repeats, adaptive=spec.adaptive_for(tier), evidence=evidence,
                           baseline_cases=hashes, calibrations=CALIBRATIONS)
    return Scenario(tier, tier_plan, plan.repeats, spec.adaptive_for(tier))


@dataclass
class Outcome:
    overall: str
    blocked_by: list[str]
    looks: int
    runs_added: int


def run_once(sc: Scenario, candidate: Target, baseline_model: Target, seed: int) -> Outcome:
    """One run of `candidate` on the tier against freshly drawn promoted baselines of `baseline_model`,
    decided with the tier's schedule and a synthetic evidence source for the extension."""
    _, _, policy = demo()
    rng = np.random.default_rng([seed, 1])
    results = draw(candidate, tier_runs(sc.tier), rng, "cand")
    baseline = baseline_frame(baseline_model, np.random.default_rng([seed, 2]))

    def source(request: EvidenceRequest) -> Evidence:
        return Evidence(draw(candidate, list(request.runs), rng, "cand"))

    out = decide_adaptively(policy, results, baseline, {r.rule_id: r.schedule for r in sc.plan.rules}, source,
                            adaptive=sc.adaptive, repeats=sc.repeats, calibrations=CALIBRATIONS)
    d = out.decision
    return Outcome(d.overall, [r.rule_id for r in d.rules if r.blocks], len(out.looks), out.added_runs)


def block_rate(sc: Scenario, candidate: Target, baseline_model: Target, seeds: range) -> tuple[int, int, dict]:
    """(runs blocked, runs, blocks per rule) over the seeds."""
    blocked, by_rule = 0, {}
    for seed in seeds:
        o = run_once(sc, candidate, baseline_model, seed)
        if o.overall != "PASS":
            blocked += 1
            for rule in o.blocked_by:
                by_rule[rule] = by_rule.get(rule, 0) + 1
    return blocked, len(seeds), by_rule
