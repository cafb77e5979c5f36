"""Promptfoo `results.csv` -> canonical rows (outcome and score only: the CSV carries no error text or usage)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from evalplatform.errors import InputError
from evalplatform.importers._common import Parsed
from evalplatform.importers.generic import read_csv, to_canonical
from evalplatform.importers.registry import Format, Options, register

MAPPING = {"case_id": "Description", "outcome": "Status", "score": "Score", "explanation": "Grader Reason"}
SCORER = "promptfoo"


def load(path: Path, opts: Options) -> Parsed:
    src = read_csv(path, opts)
    if "Description" not in src.columns:
        raise InputError(path, "Description", "promptfoo CSV without a Description column has no case ids",
                         "import results.json instead, or pass format='csv' with a mapping")
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


_HEAD = re.compile(rb"^[^\n]*,Status,Score,")

register(Format("promptfoo-csv", (".csv",), lambda head: bool(_HEAD.search(head)), load, "promptfoo eval -o results.csv"))
