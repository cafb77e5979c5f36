"""Assertion and reference scorers on text: contains, not_contains, regex, equals, token F1, length."""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from evalplatform.scorers.base import ScorerBase, register
from evalplatform.textio import check_regex

_IDX = "__row"


def _bool_score(frame: pl.DataFrame, ok: pl.Expr, why_fail: pl.Expr) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(ok).then(1.0).otherwise(0.0).alias("score"),
        pl.when(ok).then(pl.lit(None, dtype=pl.Utf8)).otherwise(why_fail).alias("explanation"),
    )


class _Needles(ScorerBase):
    value: str | list[str] | None = Field(default=None, description="Literal text(s) to look for.")
    column: str | None = Field(default=None, description="Case field holding a string or a list of strings.")
    case_sensitive: bool = False

    @model_validator(mode="after")
    def _one_source(self):
        if (self.value is None) == (self.column is None):
            raise ValueError("set exactly one of `value` or `column`")
        return self

    def columns_needed(self) -> list[str]:
        return [self.column] if self.column else []

    def _hits(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Long frame (row, needle, found): vectorized substring search of each needle in its row's output."""
        if self.column:
            needles = pl.col(self.column)
            dtype = frame.schema[self.column]
            if not isinstance(dtype, pl.List):
                needles = pl.concat_list(needles.cast(pl.Utf8))
        else:
            vals = [self.value] if isinstance(self.value, str) else list(self.value)
            needles = pl.lit(vals, dtype=pl.List(pl.Utf8))
        long = frame.select(pl.col(_IDX), pl.col("output"), needles.alias("needle")).explode("needle")
        long = long.filter(pl.col("needle").is_not_null() & (pl.col("needle").cast(pl.Utf8) != ""))
        hay, needle = pl.col("output"), pl.col("needle").cast(pl.Utf8)
        if not self.case_sensitive:
            hay, needle = hay.str.to_lowercase(), needle.str.to_lowercase()
        return long.with_columns(hay.str.contains(needle, literal=True).alias("found"))


@register
class Contains(_Needles):
    """Passes when the output contains every needle (case-insensitive by default)."""

    type: Literal["contains"] = "contains"

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        hits = self._hits(frame)
        missing = (
            hits.filter(~pl.col("found")).group_by(_IDX).agg(pl.col("needle").cast(pl.Utf8).alias("missing"))
        )
        out = frame.join(missing, on=_IDX, how="left")
        ok = pl.col("missing").is_null()
        why = pl.lit("missing: ") + pl.col("missing").list.join(", ")
        return _bool_score(out, ok, why).drop("missing")


@register
class NotContains(_Needles):
    """Passes when the output contains none of the needles."""

    type: Literal["not_contains"] = "not_contains"

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        hits = self._hits(frame)
        found = hits.filter(pl.col("found")).group_by(_IDX).agg(pl.col("needle").cast(pl.Utf8).alias("found_list"))
        out = frame.join(found, on=_IDX, how="left")
        ok = pl.col("found_list").is_null()
        why = pl.lit("forbidden text present: ") + pl.col("found_list").list.join(", ")
        return _bool_score(out, ok, why).drop("found_list")


@register
class Regex(ScorerBase):
    """Passes when the output matches `pattern` (or, with must_match: false, when it does not)."""

    type: Literal["regex"] = "regex"
    pattern: str
    must_match: bool = True

    @field_validator("pattern")
    @classmethod
    def _valid(cls, v: str) -> str:
        return check_regex(v)

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        matched = pl.col("output").str.contains(self.pattern)
        ok = matched if self.must_match else ~matched
        why = pl.lit(f"{'no match for' if self.must_match else 'forbidden match of'} /{self.pattern}/")
        return _bool_score(frame, ok, why)


def normalized(expr: pl.Expr) -> pl.Expr:
    """Lower-case, punctuation to spaces, whitespace collapsed: the usual 'normalized match'."""
    return (
        expr.str.to_lowercase()
        .str.replace_all(r"[^\p{L}\p{N}\s]", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


@register
class Equals(ScorerBase):
    """Passes when the output equals the reference in `column` (exactly, or after normalization)."""

    type: Literal["equals"] = "equals"
    column: str = "expected"
    normalize: bool = True

    def columns_needed(self) -> list[str]:
        return [self.column]

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        a, b = pl.col("output"), pl.col(self.column).cast(pl.Utf8)
        if self.normalize:
            a, b = normalized(a), normalized(b)
        else:
            a = a.str.strip_chars()
        return _bool_score(frame, a == b, pl.lit("output differs from the reference"))


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 over lower-cased word tokens, counting multiplicity."""
    p = _TOKEN.findall(prediction.lower())
    r = _TOKEN.findall(reference.lower())
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


@register
class TokenF1(ScorerBase):
    """Score = token F1 between output and the reference in `column`; passes at `threshold`."""

    type: Literal["token_f1"] = "token_f1"
    column: str = "expected"
    threshold: float = Field(default=0.5, ge=0, le=1)

    def columns_needed(self) -> list[str]:
        return [self.column]

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        refs = frame[self.column].cast(pl.Utf8).to_list()
        scores = [token_f1(o, r) for o, r in zip(frame["output"].to_list(), refs)]
        s = pl.Series("score", scores, dtype=pl.Float64)
        return frame.with_columns(
            s,
            pl.when(s < self.threshold).then(pl.format("token F1 {} < {}", s.round(3), pl.lit(self.threshold)))
            .otherwise(None).alias("explanation"),
        )


@register
class Length(ScorerBase):
    """Passes when the output length is within the given character and word bounds."""

    type: Literal["length"] = "length"
    min_chars: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=1)
    min_words: int | None = Field(default=None, ge=0)
    max_words: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some_bound(self):
        if all(v is None for v in (self.min_chars, self.max_chars, self.min_words, self.max_words)):
            raise ValueError("set at least one of min_chars, max_chars, min_words, max_words")
        return self

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        chars = pl.col("output").str.len_chars()
        words = pl.col("output").str.count_matches(r"\S+")
        ok = pl.lit(True)
        for bound, col, op in (
            (self.min_chars, chars, "ge"), (self.max_chars, chars, "le"),
            (self.min_words, words, "ge"), (self.max_words, words, "le"),
        ):
            if bound is not None:
                ok = ok & getattr(col, op)(bound)
        why = pl.format("length {} chars, {} words outside bounds", chars, words)
        return _bool_score(frame, ok, why)
