"""Promptfoo `results.csv` -> canonical rows (outcome and score only: the CSV carries no error text or usage).

Stated fields are checked before anything is imported; each problem is bad input (InputError, exit 2) naming the
column and row, because the CSV has no other field to fall back on: `Status` must be PASS, FAIL or ERROR (the
only values promptfoo writes); `Score`, every `Metric: <name>` column and every value of the `Named Scores` JSON
must be finite numbers (or empty). An ERROR row keeps no score.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import polars as pl

from evalplatform.errors import InputError
from evalplatform.importers._common import Parsed
from evalplatform.importers.generic import read_csv, to_canonical
from evalplatform.importers.registry import Format, Options, register

MAPPING = {"case_id": "Description", "outcome": "Status", "score": "Score", "explanation": "Grader Reason"}
SCORER = "promptfoo"
STATUSES = ("PASS", "FAIL", "ERROR")


def load(path: Path, opts: Options) -> Parsed:
    src = read_csv(path, opts)
    if "Description" not in src.columns:
        raise InputError(path, "Description", "promptfoo CSV without a Description column has no case ids",
                         "import results.json instead, or pass format='csv' with a mapping")
    _check_stated(src, path)
    mapping = {k: v for k, v in MAPPING.items() if v in src.columns}
    # Repeats share a Description and appear in file order, as in the JSON output.
    df = to_canonical(src, mapping, path, number_repeats=True)
    df = df.with_columns(
        pl.lit(SCORER).alias("scorer"),
        pl.when(pl.col("outcome") == "error")
        .then(pl.lit("promptfoo reported an error; its CSV does not carry the text (import results.json for it)"))
        .alias("error"),
        pl.when(pl.col("outcome") == "error").then(None).otherwise(pl.col("score")).alias("score"),
    )
    return Parsed(frame=df)


def _check_stated(src: pl.DataFrame, path: Path) -> None:
    if "Status" in src.columns:
        status = src["Status"].str.strip_chars().str.to_uppercase()
        bad = ~status.is_in(list(STATUSES)) | status.is_null()
        if bad.any():
            i = int(bad.arg_true()[0])
            raise InputError(path, f"Status (row {i + 1})", f"expected PASS, FAIL or ERROR, found {src['Status'][i]!r}",
                             "fix the producing tool's output")
    for col in [c for c in src.columns if c.startswith("Metric: ")]:
        for i, raw in enumerate(src[col]):
            if raw is not None and raw.strip():
                _finite(raw.strip(), path, f"{col} (row {i + 1})")
    if "Named Scores" in src.columns:
        for i, raw in enumerate(src["Named Scores"]):
            if raw is None or not raw.strip():
                continue
            where = f"Named Scores (row {i + 1})"
            try:
                scores = json.loads(raw)
            except json.JSONDecodeError:
                raise InputError(path, where, "expected a JSON object of scores",
                                 "fix the producing tool's output") from None
            if not isinstance(scores, dict):
                raise InputError(path, where, "expected a JSON object of scores", "fix the producing tool's output")
            for name, value in scores.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise InputError(path, f"{where}.{name}", f"expected a finite number, found {value!r}",
                                     "fix the producing scorer")


def _finite(raw: str, path: Path, where: str) -> None:
    try:
        value = float(raw)
    except ValueError:
        raise InputError(path, where, f"expected a number, found {raw!r}", "fix the producing tool's output") from None
    if not math.isfinite(value):
        raise InputError(path, where, f"expected a finite number, found {raw!r} (NaN or infinite)",
                         "fix the producing scorer")


_HEAD = re.compile(rb"^[^\n]*,Status,Score,")

register(Format("promptfoo-csv", (".csv",), lambda head: bool(_HEAD.search(head)), load, "promptfoo eval -o results.csv"))
