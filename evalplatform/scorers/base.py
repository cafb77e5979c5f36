"""Scorer base: a typed spec that scores a whole frame of outputs at once, plus the registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

SCORER_REGISTRY: dict[str, type["ScorerBase"]] = {}


def register(cls: type["ScorerBase"]) -> type["ScorerBase"]:
    """Class decorator: makes a scorer type usable in suite files under its `type` tag."""
    tag = cls.model_fields["type"].default
    SCORER_REGISTRY[tag] = cls
    return cls


class When(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: list[str] = Field(default_factory=list, description="Applies to cases having any of these tags.")
    all_tags: list[str] = Field(default_factory=list, description="... and all of these.")

    def expr(self) -> pl.Expr:
        e = pl.lit(True)
        if self.tags:
            e = e & pl.col("tags").list.eval(pl.element().is_in(self.tags)).list.any()
        if self.all_tags:
            e = e & pl.col("tags").list.eval(pl.element().is_in(self.all_tags)).list.sum().eq(len(set(self.all_tags)))
        return e


@dataclass(frozen=True)
class ScoringContext:
    """What a run tells the scorers that call models (judges): its response cache (None: the run bypasses it, as
    the nightly tier does, so judges re-sample too) and its budget (an evalplatform.budget.Budget, or None)."""

    cache_dir: Path | None = None
    budget: Any = None


class ScorerBase(BaseModel):
    """A check on one criterion. `score()` sees only rows with a model output and the case fields."""

    model_config = ConfigDict(extra="forbid")

    tier_cost: ClassVar[str] = "deterministic"

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Unique within the suite; the scorer column value.")
    criterion: str = Field(min_length=1, description="The quality criterion this scorer measures.")
    when: When | None = Field(default=None, description="Which cases it applies to (all when unset).")
    threshold: float = Field(default=1.0, ge=0, le=1, description="Pass when score >= threshold.")
    turn: int | Literal["last", "each", "transcript"] = Field(
        default="last", description="Multi-turn cases: which reply is scored. last (the final reply), N (the N-th "
                                    "reply of the target, from 1), each (every reply must pass), transcript (the "
                                    "whole conversation as text).")

    @field_validator("turn")
    @classmethod
    def _turn(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("turns are counted from 1 (the target's first reply)")
        return v

    @field_validator("criterion")
    @classmethod
    def _criterion(cls, v: str) -> str:
        return v.strip()

    def columns_needed(self) -> list[str]:
        """Case fields the scorer reads; every case it applies to must have them."""
        return []

    def field_needed(self, field: str, single_turn: pl.Expr) -> pl.Expr:
        """Which of the cases it applies to must have `field` (single_turn: the cases without a conversation)."""
        return pl.lit(True)

    def check_files(self, root: Path, suite_path: Path, field: str) -> None:
        """Validate files the spec points at (relative to the suite), raising InputError."""

    def applies(self) -> pl.Expr:
        return self.when.expr() if self.when else pl.lit(True)

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Return `frame`'s rows in order with a Float64 `score` and a Utf8 `explanation` column."""
        raise NotImplementedError

    def score_in_run(self, frame: pl.DataFrame, context: ScoringContext | None = None) -> pl.DataFrame:
        """`score` within a run: scorers that call models override it to honour the run's cache and budget and
        to add their usage columns (results.SCORER_USAGE). The default ignores the context."""
        return self.score(frame)
