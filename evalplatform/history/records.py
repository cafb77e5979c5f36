"""Typed rows of the history tables: what `begin_run` accepts, and what `complete_run` totals and decisions hold."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, field_validator

from evalplatform import results as rt

# Columns of `runs` stored as JSON text; decoded again on read.
JSON_COLUMNS = ("target_params", "judge_pins", "provenance")


def utcnow() -> dt.datetime:
    """Naive UTC: every timestamp in the history is UTC without a zone, so files compare across machines."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def as_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


class RunStart(BaseModel):
    """A run as it begins: identity, pins and provenance. Unknown keys are kept in `provenance`."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    suite: str
    tier: str | None = None
    started_at: dt.datetime | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    package_version: str | None = None
    lock_hash: str | None = None
    dataset_hash: str | None = None
    prompt_hash: str | None = None
    suite_hash: str | None = None
    target_model: str | None = None
    target_params: dict[str, Any] | None = None
    judge_pins: dict[str, Any] | list[Any] | None = None
    seed: int | None = None
    repeats: int | None = None
    dagster_run_id: str | None = None
    provenance: dict[str, Any] = {}

    @field_validator("run_id", "suite")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    def columns(self) -> dict[str, Any]:
        """Column values for the `runs` row; extra keys folded into provenance."""
        row = self.model_dump(exclude=set(self.model_extra or {}))
        row["provenance"] = {**(self.model_extra or {}), **self.provenance}
        row["started_at"] = as_utc(self.started_at) if self.started_at else utcnow()
        return row


class RunTotals(BaseModel):
    """Run-level totals; `complete_run` derives them from the result frame unless given explicitly."""

    model_config = ConfigDict(extra="forbid")

    n_cases: int | None = None
    n_results: int | None = None
    n_pass: int | None = None
    n_fail: int | None = None
    n_error: int | None = None
    n_skipped: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    cache_hits: int | None = None
    model_calls: int | None = None
    judge_calls: int | None = None
    judge_tokens_in: int | None = None
    judge_tokens_out: int | None = None
    judge_cost_usd: float | None = None
    total_cost_usd: float | None = None
    n_flaky_cases: int | None = None
    wall_s: float | None = None
    decision: str | None = None


class DecisionRecord(BaseModel):
    """A gate decision as the history stores it: the verdict, the policy's sha256, its inputs and rules."""

    model_config = ConfigDict(extra="forbid")

    overall: str
    policy_hash: str | None = None
    inputs: dict[str, Any] = {}
    rules: list[Any] | dict[str, Any] = []

    @field_validator("overall")
    @classmethod
    def _verdict(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a decision needs its overall verdict")
        return value


def derive_totals(frame: pl.DataFrame) -> dict[str, Any]:
    """Totals computed from a canonical result frame: the target's per-call columns summed once per (case,
    repeat), the judges' (scorer_*) over every row, and the cost of both together (`cost_usd` is the target's)."""
    outcomes = frame.select(
        pl.col("case_id").n_unique().alias("n_cases"),
        pl.len().alias("n_results"),
        *[(pl.col("outcome") == o).sum().alias(f"n_{o}") for o in rt.OUTCOMES],
    )
    calls = rt.call_rows(frame).select(
        pl.col("tokens_in").sum(),
        pl.col("tokens_out").sum(),
        pl.col("cost_usd").sum(),
        # A null cache_hit is a row without a model call (an imported result), counted as neither.
        (pl.col("cache_hit") == True).sum().alias("cache_hits"),  # noqa: E712
        (pl.col("cache_hit") == False).sum().alias("model_calls"),  # noqa: E712
    )
    judges = frame.select(
        pl.col("scorer_calls").sum().alias("judge_calls"),
        pl.col("scorer_tokens_in").sum().alias("judge_tokens_in"),
        pl.col("scorer_tokens_out").sum().alias("judge_tokens_out"),
        pl.col("scorer_cost_usd").sum().alias("judge_cost_usd"),
    )
    totals = {**outcomes.row(0, named=True), **calls.row(0, named=True), **judges.row(0, named=True)}
    totals = {k: (0 if v is None else v) for k, v in totals.items()}
    totals["total_cost_usd"] = float(totals["cost_usd"]) + float(totals["judge_cost_usd"])
    return totals
