"""The canonical result table: one row per (run, case, repeat, scorer), shared by every component.

Runs, importers and scorers produce it; the policy engine and the history store consume it.
Per-call columns (latency, tokens, cost, cache_hit, attempts) repeat on every scorer row of the
same (case_id, repeat): aggregate them over `call_rows(df)`, never over the whole frame. The scorer_*
columns are the scorer's own model calls (an LLM judge's verdict), one row's worth each: sum them over
the whole frame.
"""

from __future__ import annotations

import math

import polars as pl

OUTCOMES = ("pass", "fail", "error", "skipped")

# Cost tiers, cheapest first: a tier of a suite chooses its scorers by these (or by scorer id).
TIER_COSTS = ("deterministic", "cheap_judge", "llm_judge", "frontier_judge", "external")

SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.Utf8(),
    "suite": pl.Utf8(),
    "case_id": pl.Utf8(),
    "repeat": pl.Int32(),
    "scorer": pl.Utf8(),
    "criterion": pl.Utf8(),
    "tier_cost": pl.Utf8(),
    "outcome": pl.Utf8(),
    "score": pl.Float64(),
    "threshold": pl.Float64(),
    # Case tags as "key:value" strings (category:grounding, severity:high, source:golden) plus bare labels.
    "tags": pl.List(pl.Utf8()),
    # sha256 of the case's canonical content (without its id): aligns renamed cases across runs.
    "case_hash": pl.Utf8(),
    # sha256 of the model output text; the text itself is stored once per hash in the history.
    "output_hash": pl.Utf8(),
    # Model latency as originally measured (a cache hit keeps the original call's latency) ...
    "latency_ms": pl.Float64(),
    # ... and the time this run actually spent getting the response (about 0 on a cache hit).
    "served_ms": pl.Float64(),
    "tokens_in": pl.Int64(),
    "tokens_out": pl.Int64(),
    "cost_usd": pl.Float64(),
    "cache_hit": pl.Boolean(),
    "attempts": pl.Int32(),
    "explanation": pl.Utf8(),
    "error": pl.Utf8(),
    # sha256 of the trial's trace as canonical JSON (transcript, replies per turn, tool calls, steps,
    # retrieved context, final state); the JSON is stored once per hash next to the outputs. Null when
    # the target returned text only (a single-turn model call) and for imported results.
    "trace_hash": pl.Utf8(),
    # The scorer's own model call for this row (a judge's verdict): 1 when the model was asked (0 when the
    # response cache answered; null for scorers that call no model), and like the target's columns, the
    # tokens, cost and latency of the answer (a cache hit keeps the ones it first took).
    "scorer_calls": pl.Int32(),
    "scorer_tokens_in": pl.Int64(),
    "scorer_tokens_out": pl.Int64(),
    "scorer_cost_usd": pl.Float64(),
    "scorer_latency_ms": pl.Float64(),
}

# The scorer usage columns (see SCHEMA); a scorer that makes no model call leaves them null.
SCORER_USAGE = ("scorer_calls", "scorer_tokens_in", "scorer_tokens_out", "scorer_cost_usd", "scorer_latency_ms")

COLUMNS = tuple(SCHEMA)
IDENTITY = ("run_id", "case_id", "repeat", "scorer")


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Add missing optional columns as nulls, cast to the canonical types, order the columns."""
    exprs = []
    for name, dtype in SCHEMA.items():
        if name in df.columns:
            exprs.append(pl.col(name).cast(dtype, strict=False).alias(name))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return df.select(exprs)


def from_rows(rows: list[dict]) -> pl.DataFrame:
    if not rows:
        return empty()
    return conform(pl.DataFrame(rows, infer_schema_length=None, strict=False))


def validate(df: pl.DataFrame, source: str = "<results>") -> list[str]:
    """Problems that make a result table unusable for a decision (empty list when sound).

    Checked: required columns, outcome vocabulary, scores finite and in [0, 1], and unique
    (run_id, case_id, repeat, scorer) identity. Callers decide whether a problem is fatal.
    """
    problems: list[str] = []
    missing = [c for c in ("case_id", "repeat", "scorer", "outcome") if c not in df.columns]
    if missing:
        return [f"{source}: missing column(s) {', '.join(missing)}"]
    if df.height == 0:
        return problems
    if df["case_id"].null_count() or (df["case_id"].cast(pl.Utf8).str.len_chars() == 0).any():
        problems.append(f"{source}: case_id: empty or missing case id")
    bad = df.filter(~pl.col("outcome").is_in(list(OUTCOMES)))
    if bad.height:
        problems.append(f"{source}: outcome: unknown value {bad['outcome'][0]!r} (expected one of {', '.join(OUTCOMES)})")
    if "score" in df.columns:
        scores = df["score"].drop_nulls()
        if scores.len():
            arr = scores.cast(pl.Float64).to_list()
            nonfinite = sum(1 for x in arr if not math.isfinite(x))
            if nonfinite:
                problems.append(f"{source}: score: {nonfinite} NaN or infinite value(s)")
            elif scores.min() < 0 or scores.max() > 1:
                problems.append(f"{source}: score: values outside [0, 1] (min {scores.min()}, max {scores.max()})")
    key = [c for c in IDENTITY if c in df.columns]
    dup = df.group_by(key).len().filter(pl.col("len") > 1)
    if dup.height:
        first = dup.row(0, named=True)
        problems.append(
            f"{source}: duplicate rows for (case_id={first['case_id']!r}, repeat={first['repeat']}, scorer={first['scorer']!r})"
        )
    return problems


def call_rows(df: pl.DataFrame) -> pl.DataFrame:
    """One row per model call (run_id, case_id, repeat): the frame to sum tokens, cost and latency over."""
    return df.unique(subset=["run_id", "case_id", "repeat"], keep="first", maintain_order=True)


def tag_value(tags: list[str] | None, key: str) -> str | None:
    """The value of a "key:value" tag, or None."""
    prefix = key + ":"
    for t in tags or ():
        if t.startswith(prefix):
            return t[len(prefix):]
    return None
