"""The pipeline of one scored run, as plain functions: plan the cases, call the target, score, summarize."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import polars as pl

from evalplatform import results as R
from evalplatform.datasets import Dataset, load_cases
from evalplatform.errors import InputError
from evalplatform.models.calls import CallRequest, CallResult
from evalplatform.models.text import unicode_problem
from evalplatform.conversation import (CONVERSATION_FIELD, TRACE_COLUMN, TRACE_HASH_COLUMN, is_conversation,
                                       score_rows)
from evalplatform.prompt import build_messages, render, template_fields
from evalplatform.scorers.base import ScoringContext
from evalplatform.provenance import sha256_text
from evalplatform.selection import select_cases
from evalplatform.targets.dispatch import prepare as prepare_target
from evalplatform.targets.trace import trace_text
from evalplatform.suite import LoadedSuite, TierSpec
from evalplatform.targets.spec import AnyTarget
from evalplatform.tiers import TierScope, select_scorers

TIERS = ("pr", "nightly")


@dataclass
class RunPlan:
    """Everything a scored run needs, fixed before the first model call (and recorded as provenance)."""

    suite: LoadedSuite
    dataset: Dataset
    tier: str
    cases: pl.DataFrame
    target: AnyTarget
    repeats: int
    requests: list[CallRequest] = field(default_factory=list)
    scope: TierScope | None = None

    @property
    def n_calls(self) -> int:
        return len(self.requests)

    @property
    def scorers(self) -> list:
        """The scorers this run applies: the tier's choice (every scorer of the suite without a scope)."""
        return self.scope.run if self.scope is not None else list(self.suite.spec.scorers)


def load_dataset(suite: LoadedSuite) -> Dataset:
    """The suite's cases, without the regression cases it retired (suite.yaml `retired:`)."""
    dataset = load_cases([(suite.root / d.path, d.source) for d in suite.spec.datasets])
    retired = [r.id for r in suite.spec.retired]
    if not retired:
        return dataset
    from evalplatform.case_sets import version_of

    kept = dataset.cases.filter(~pl.col("case_id").is_in(retired))
    return Dataset(cases=kept, version=version_of(kept), files=dataset.files)


def _check_case_fields(suite: LoadedSuite, cases: pl.DataFrame) -> None:
    """Fail before any model call when the prompt or a scorer reads a field a case lacks."""
    # A conversation case is played from its messages: the prompt template does not apply to it.
    single_turn = ~is_conversation() if CONVERSATION_FIELD in cases.columns else pl.lit(True)
    needs: list[tuple[str, str, pl.Expr]] = [
        (f, "prompt", single_turn) for f in template_fields(suite.prompt_template, suite.root / suite.spec.prompt)
    ]
    for i, s in enumerate(suite.spec.scorers):
        needs += [(f, f"scorers[{i}] ({s.id})", s.applies() & s.field_needed(f, single_turn))
                  for f in s.columns_needed()]
    for fieldname, label, applies in needs:
        scope = cases.filter(applies)
        if scope.height == 0:
            continue
        if fieldname not in cases.columns:
            raise InputError(suite.path, label, f"reads case field {fieldname!r}, which no case has",
                             "add it to the dataset or fix the name")
        missing = scope.filter(pl.col(fieldname).is_null())
        if missing.height:
            raise InputError(suite.path, label, f"case {missing['case_id'][0]!r} lacks field {fieldname!r} "
                             f"({missing.height} case(s) in all)", "add the field or narrow the scorer's `when`")


def plan_run(
    suite: LoadedSuite,
    tier: str = "pr",
    *,
    model: str | None = None,
    repeats: int | None = None,
    seed: int | None = None,
    dataset: Dataset | None = None,
    not_allowed: dict[str, str] | None = None,
) -> RunPlan:
    """The run of a tier, fixed before any call: its cases, target, repeats, requests and scorers (the tier's
    choice, without the judges in `not_allowed`: scorer id -> why it may not gate, see decide.judges_not_allowed)."""
    if tier not in TIERS:
        raise InputError(None, "--tier", f"unknown tier {tier!r}", f"use one of {', '.join(TIERS)}")
    dataset = dataset or load_dataset(suite)
    _check_case_fields(suite, dataset.cases)
    tier_spec = suite.spec.tiers.get(tier) or TierSpec()
    cases = select_cases(dataset.cases, tier_spec, where=f"tiers.{tier}", file=suite.path)
    target = suite.spec.target
    if model:
        target = target.model_copy(update={"model": model})
    if seed is not None:
        target = target.model_copy(update={"seed": seed})
    prepare_target(target, suite)  # a Python target's import path, resolved before anything runs
    n_repeats = repeats or tier_spec.repeats or suite.spec.repeats
    if n_repeats < 1:
        raise InputError(None, "--repeats", "must be at least 1")
    scope = select_scorers(suite, tier, not_allowed)
    requests = build_requests(suite, target, cases, {c: range(n_repeats) for c in cases["case_id"].to_list()})
    return RunPlan(suite=suite, dataset=dataset, tier=tier, cases=cases, target=target, repeats=n_repeats,
                   requests=requests, scope=scope)


def build_requests(suite: LoadedSuite, target: AnyTarget, cases: pl.DataFrame,
                   repeats: dict[str, Iterable[int]]) -> list[CallRequest]:
    """The model calls for the given repeats of each case (a run's own, or the ones an extension adds)."""
    fields = [f for f in template_fields(suite.prompt_template) if f in cases.columns]
    requests = []
    conversations = [CONVERSATION_FIELD] if CONVERSATION_FIELD in cases.columns else []
    for row in cases.select(["case_id", *fields, *conversations]).iter_rows(named=True):
        # A conversation case is played from its own messages (targets.dispatch), not from the template.
        messages = [] if row.get(CONVERSATION_FIELD) is not None else \
            build_messages(target.system_prompt, render(suite.prompt_template, row))
        requests += [CallRequest(case_id=row["case_id"], repeat=r, messages=messages)
                     for r in repeats.get(row["case_id"], ())]
    return requests


def more_evidence(plan: RunPlan, run_id: str, *, cache_dir: Path | None, concurrency: int | None = None,
                  on_result: Callable[[CallResult], None] | None = None, budget=None):
    """An adaptive.EvidenceSource that makes the requested (case, repeat) runs with the run's target and
    scorers; the outputs it produced are kept on the source (`.outputs`) for the history."""
    from evalplatform.adaptive import Evidence

    class Source:
        def __init__(self) -> None:
            self.outputs: dict[str, str] = {}

        def __call__(self, request) -> Evidence:
            wanted: dict[str, list[int]] = {}
            for case, rep in request.runs:
                wanted.setdefault(case, []).append(rep)
            cases = plan.dataset.cases.filter(pl.col("case_id").is_in(list(wanted)))
            extra = replace(plan, cases=cases, requests=build_requests(plan.suite, plan.target, cases, wanted))
            done = execute(extra, run_id, cache_dir=cache_dir, concurrency=concurrency, on_result=on_result,
                           budget=budget)
            self.outputs.update(done.outputs)
            return Evidence(done.results, float(done.totals.get("total_cost_usd") or 0.0))

    return Source()


def outputs_frame(plan: RunPlan, calls: list[CallResult]) -> tuple[pl.DataFrame, dict[str, str]]:
    """One row per (case, repeat) with the call's numbers and the case fields; plus outputs by hash."""
    texts: dict[str, str] = {}
    rows = []
    for c in calls:
        # A trial's trace (transcript, tool calls, final state) is stored like an output: once per hash.
        trace = trace_text(c.trace) if getattr(c, "trace", None) is not None else None
        if trace is not None:
            texts[sha256_text(trace)] = trace
        # The call layer already refuses such replies; this is the last gate before hashing and storing.
        problem = unicode_problem(c.text) if c.text is not None else None
        if problem:
            c = replace(c, text=None, error=f"reply text is {problem}")
        h = None
        if c.text is not None:
            h = sha256_text(c.text)
            texts[h] = c.text
        rows.append({
            "case_id": c.case_id, "repeat": c.repeat, "output": c.text, "output_hash": h,
            "call_error": c.error, "latency_ms": c.latency_ms, "served_ms": c.served_ms,
            "tokens_in": c.tokens_in, "tokens_out": c.tokens_out, "cost_usd": c.cost_usd,
            "cache_hit": c.cache_hit, "attempts": c.attempts,
            TRACE_COLUMN: trace, TRACE_HASH_COLUMN: sha256_text(trace) if trace is not None else None,
        })
    calls_df = pl.DataFrame(rows, schema={
        "case_id": pl.Utf8, "repeat": pl.Int32, "output": pl.Utf8, "output_hash": pl.Utf8, "call_error": pl.Utf8,
        "latency_ms": pl.Float64, "served_ms": pl.Float64, "tokens_in": pl.Int64, "tokens_out": pl.Int64,
        "cost_usd": pl.Float64, "cache_hit": pl.Boolean, "attempts": pl.Int32,
        TRACE_COLUMN: pl.Utf8, TRACE_HASH_COLUMN: pl.Utf8,
    })
    return calls_df.join(plan.cases, on="case_id", how="left"), texts


def _with_usage(frame: pl.DataFrame) -> pl.DataFrame:
    """The scorer usage columns a scorer did not set (it made no model call), as nulls."""
    return frame.with_columns([pl.lit(None, dtype=R.SCHEMA[c]).alias(c) for c in R.SCORER_USAGE
                               if c not in frame.columns])


def score_outputs(plan: RunPlan, frame: pl.DataFrame, run_id: str, context: ScoringContext | None = None) -> pl.DataFrame:
    """Apply the run's scorers to the rows each selects; a failed call is `error` on each of them.

    `context` carries the run's response cache (None when the run bypasses it) and budget to scorers that call
    models (judges): without one, they use their own defaults.
    """
    frame = frame.with_row_index("__row")
    parts = []
    # A plan-like object without a tier's choice (the production-trace scorer passes one) scores with the suite's.
    for scorer in getattr(plan, "scorers", None) or plan.suite.spec.scorers:
        scope = frame.filter(scorer.applies())
        if scope.height == 0:
            continue
        ok = scope.filter(pl.col("output").is_not_null())
        scored = _with_usage(score_rows(scorer, ok, context) if ok.height else ok.with_columns(
            pl.lit(None, dtype=pl.Float64).alias("score"), pl.lit(None, dtype=pl.Utf8).alias("explanation")))
        # A scorer that could not decide (a judge reply that did not parse) leaves the score null:
        # that is an error, never a fail, and its explanation is the error text.
        undecided = pl.col("score").is_null() | pl.col("score").is_nan()
        scored = scored.with_columns(
            pl.when(undecided).then(pl.lit("error"))
            .when(pl.col("score") >= scorer.threshold).then(pl.lit("pass"))
            .otherwise(pl.lit("fail")).alias("outcome"),
            pl.when(undecided).then(pl.col("explanation").fill_null(f"scorer {scorer.id} returned no score"))
            .otherwise(pl.lit(None, dtype=pl.Utf8)).alias("error"),
            pl.when(undecided).then(pl.lit(None, dtype=pl.Float64)).otherwise(pl.col("score")).alias("score"),
        )
        errored = _with_usage(scope.filter(pl.col("output").is_null()).with_columns(
            pl.lit(None, dtype=pl.Float64).alias("score"),
            pl.lit(None, dtype=pl.Utf8).alias("explanation"),
            pl.lit("error").alias("outcome"),
            pl.col("call_error").alias("error"),
        ))
        both = pl.concat([scored.select(errored.columns), errored], how="vertical_relaxed")
        parts.append(both.with_columns(
            pl.lit(scorer.id).alias("scorer"), pl.lit(scorer.criterion).alias("criterion"),
            pl.lit(scorer.tier_cost).alias("tier_cost"), pl.lit(scorer.threshold).alias("threshold"),
        ))
    if not parts:
        raise InputError(plan.suite.path, "scorers", "no scorer applies to any selected case",
                         "check the scorers' `when` tags against the cases' tags")
    table = pl.concat(parts, how="vertical_relaxed").sort(["__row", "scorer"])
    table = table.with_columns(pl.lit(run_id).alias("run_id"), pl.lit(plan.suite.name).alias("suite"))
    return R.conform(table)


def run_calls_for_plan(
    plan: RunPlan,
    *,
    cache_dir: Path | None,
    concurrency: int | None = None,
    on_result: Callable[[CallResult], None] | None = None,
    budget=None,
) -> list[CallResult]:
    from evalplatform.targets.dispatch import run_plan_calls

    return run_plan_calls(plan, cache_dir=cache_dir, concurrency=concurrency, on_result=on_result, budget=budget)


@dataclass
class ScoredRun:
    """The outcome of the pipeline: the canonical results, the outputs by hash and the run's totals."""

    run_id: str
    plan: RunPlan
    results: pl.DataFrame
    outputs: dict[str, str]
    totals: dict
    wall_s: float


def totals_of(results: pl.DataFrame, wall_s: float, n_cases: int) -> dict:
    """The run's totals: outcome counts, the target's calls, tokens and cost, the judges' (scorer usage) and both."""
    from evalplatform.history.records import derive_totals

    calls = R.call_rows(results)
    counts = dict(results.group_by("outcome").len().iter_rows())
    judges = {k: v for k, v in derive_totals(results).items() if k.startswith("judge_") or k == "total_cost_usd"}
    return {**judges, 
        "n_cases": n_cases,
        "n_results": results.height,
        "n_pass": counts.get("pass", 0),
        "n_fail": counts.get("fail", 0),
        "n_error": counts.get("error", 0),
        "n_skipped": counts.get("skipped", 0),
        "tokens_in": int(calls["tokens_in"].fill_null(0).sum()),
        "tokens_out": int(calls["tokens_out"].fill_null(0).sum()),
        "cost_usd": float(calls["cost_usd"].fill_null(0).sum()),
        "cache_hits": int(calls["cache_hit"].fill_null(False).sum()),
        "model_calls": int(calls.filter(~pl.col("cache_hit").fill_null(False)).height),
        "wall_s": round(wall_s, 3),
    }


def execute(
    plan: RunPlan,
    run_id: str,
    *,
    cache_dir: Path | None,
    concurrency: int | None = None,
    on_result: Callable[[CallResult], None] | None = None,
    budget=None,
) -> ScoredRun:
    """Call the target for the plan's requests and score the outputs; `cache_dir` None bypasses the response
    cache for the target and the judges alike (the nightly tier's fresh samples); `budget` bounds both."""
    from evalplatform.models.infra import check_infrastructure

    t0 = time.perf_counter()
    calls = run_calls_for_plan(plan, cache_dir=cache_dir, concurrency=concurrency, on_result=on_result, budget=budget)
    # A dead or failing endpoint is exit 3 with its reason, never scored into a quality verdict.
    check_infrastructure(calls, plan.target)
    frame, outputs = outputs_frame(plan, calls)
    results = score_outputs(plan, frame, run_id, ScoringContext(cache_dir=cache_dir, budget=budget))
    wall = time.perf_counter() - t0
    return ScoredRun(run_id=run_id, plan=plan, results=results, outputs=outputs,
                     totals=totals_of(results, wall, plan.cases.height), wall_s=wall)
