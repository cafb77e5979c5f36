"""Plain JSONL / CSV / Parquet result tables, mapped column by column onto the canonical table.

Every mapped column is type-checked by name and a bad value is bad input (InputError, exit 2, naming the file
and the column): an outcome outside the known spellings, a score or threshold that is NaN, infinite or outside
[0, 1], a latency or cost that is NaN or infinite, a count or flag of the wrong type. Outcome and score are
not cross-checked against a threshold: tools disagree on which side of it passes (DeepEval's lower-is-better
metrics), so the stated outcome stands.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from evalplatform.errors import InputError
from evalplatform.importers._common import (
    OUTCOME_ALIASES,
    Parsed,
    check_size,
    is_gzip_name,
    parse_jsonl,
    read_bytes,
    read_head,
    read_text,
    decode,
)
from evalplatform.importers.registry import Format, Options, register
from evalplatform.results import SCHEMA

REQUIRED = ("case_id", "outcome")
DEFAULT_SCORER = "imported"
# run_id, suite and tier_cost belong to the import, not to a row of the source file.
MAPPABLE = tuple(c for c in SCHEMA if c not in ("run_id", "tier_cost"))


def read_csv(path: Path, opts: Options) -> pl.DataFrame:
    text = decode(read_bytes(path, opts.max_bytes), path)
    try:
        # Everything as text first so each column is converted (and blamed) by name below.
        return pl.read_csv(io.StringIO(text), infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise InputError(path, None, f"malformed CSV ({str(exc).splitlines()[0]})") from None


def read_jsonl(path: Path, opts: Options) -> pl.DataFrame:
    records = parse_jsonl(read_text(path, opts.max_bytes), path)
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InputError(path, f"line {i + 1}", "expected one JSON object per line")
    try:
        return pl.from_dicts(records, infer_schema_length=None, strict=False)
    except pl.exceptions.PolarsError as exc:
        raise InputError(path, None, f"rows do not form a table ({str(exc).splitlines()[0]})") from None


def read_parquet(path: Path, opts: Options) -> pl.DataFrame:
    check_size(path, opts.max_bytes)
    if is_gzip_name(path):
        source = io.BytesIO(read_bytes(path, opts.max_bytes))
    else:
        read_head(path, 4)  # refuses gzip content under a plain name, in words that say gzip
        source = path
    try:
        return pl.read_parquet(source)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(path, None, f"not a readable Parquet file ({str(exc).splitlines()[0]})",
                         "the file may be truncated") from None


def to_canonical(src: pl.DataFrame, mapping: dict[str, str] | None, path: Path, *,
                 number_repeats: bool = False) -> pl.DataFrame:
    """Rename by `mapping` (canonical <- source), normalise outcomes, type-check every mapped column."""
    if mapping is None:
        mapping = {c: c for c in src.columns if c in MAPPABLE}
    unknown = [k for k in mapping if k not in MAPPABLE]
    if unknown:
        raise InputError(path, "mapping", f"unknown canonical column(s) {', '.join(map(repr, unknown))}",
                         f"map onto one of: {', '.join(MAPPABLE)}")
    absent = [f"{k} <- {v!r}" for k, v in mapping.items() if v not in src.columns]
    missing = [k for k in REQUIRED if k not in mapping]
    if absent or missing:
        what = [f"column {a} not in the file" for a in absent] + [f"no column for {m}" for m in missing]
        raise InputError(path, "columns", "missing required column(s): " + "; ".join(what),
                         f"pass a mapping such as {{'case_id': 'id', 'outcome': 'status'}}; file has {src.columns}")
    df = src.select([pl.col(v).alias(k) for k, v in mapping.items()])
    df = df.with_columns(_outcome(df, path, mapping["outcome"]), pl.col("case_id").cast(pl.Utf8))
    if df["case_id"].null_count() or (df["case_id"].str.len_chars() == 0).any():
        raise InputError(path, f"case_id <- {mapping['case_id']!r}", "empty or missing case id")
    for name in ("score", "threshold", "latency_ms", "served_ms", "cost_usd", "tokens_in", "tokens_out",
                 "attempts", "repeat", "cache_hit"):
        if name in df.columns:
            df = df.with_columns(_typed(df[name], name, mapping[name], path))
    for name in ("score", "threshold"):
        if name in df.columns:
            _check_unit(df[name], name, mapping[name], path)
    for name in ("latency_ms", "served_ms", "cost_usd"):
        if name in df.columns:
            _check_finite(df[name], name, mapping[name], path)
    if "tags" in df.columns and df.schema["tags"] == pl.Utf8:
        df = df.with_columns(pl.col("tags").str.split(",").list.eval(pl.element().str.strip_chars()))
    if "scorer" not in df.columns:
        df = df.with_columns(pl.lit(DEFAULT_SCORER).alias("scorer"))
    if "repeat" not in df.columns:
        rep = pl.int_range(pl.len()).over(["case_id", "scorer"]) if number_repeats else pl.lit(0)
        df = df.with_columns(rep.cast(pl.Int32).alias("repeat"))
    return df


def _outcome(df: pl.DataFrame, path: Path, source: str) -> pl.Series:
    raw = df["outcome"]
    if raw.dtype == pl.Boolean:
        text = raw.cast(pl.Utf8)
    elif raw.dtype.is_numeric():
        # 1.0 and 0.0 from a float column mean the same as 1 and 0.
        text = raw.cast(pl.Float64).cast(pl.Int64, strict=False).cast(pl.Utf8)
    else:
        text = raw.cast(pl.Utf8)
    norm = text.str.strip_chars().str.to_lowercase().replace_strict(OUTCOME_ALIASES, default=None)
    bad = norm.is_null()
    if bad.any():
        value = raw.filter(bad)[0]
        raise InputError(path, f"outcome <- {source!r}", f"unknown outcome value {value!r}",
                         "use pass/passed/true/1/success, fail/failed/false/0, error/errored or skip/skipped")
    return norm.alias("outcome")


def _typed(col: pl.Series, name: str, source: str, path: Path) -> pl.Series:
    dtype = SCHEMA[name]
    src = col.str.strip_chars() if col.dtype == pl.Utf8 else col
    if col.dtype == pl.Utf8:
        src = src.replace("", None)
    if dtype == pl.Boolean() and src.dtype == pl.Utf8:
        src = src.str.to_lowercase().replace_strict({"true": True, "false": False, "1": True, "0": False},
                                                    default=None, return_dtype=pl.Boolean)
    converted = src.cast(dtype, strict=False)
    bad = converted.is_null() & src.is_not_null()
    if bad.any():
        raise InputError(path, f"{name} <- {source!r}", f"value {col.filter(bad)[0]!r} is not a valid {dtype}")
    return converted.alias(name)


def _check_finite(col: pl.Series, name: str, source: str, path: Path) -> None:
    values = col.drop_nulls()
    bad = values.is_nan() | values.is_infinite()
    if bad.any():
        raise InputError(path, f"{name} <- {source!r}", f"value {values.filter(bad)[0]!r} is NaN or infinite",
                         "fix the producing tool's output")


def _check_unit(col: pl.Series, name: str, source: str, path: Path) -> None:
    values = col.drop_nulls()
    if values.len() == 0:
        return
    nonfinite = values.is_nan() | values.is_infinite()
    if nonfinite.any():
        raise InputError(path, f"{name} <- {source!r}", f"{int(nonfinite.sum())} NaN or infinite value(s)",
                         "fix the producing scorer; NaN is not a score")
    if values.min() < 0 or values.max() > 1:
        raise InputError(path, f"{name} <- {source!r}", f"values outside [0, 1] (min {values.min()}, max {values.max()})",
                         "rescale scores to [0, 1]")


def _loader(reader):
    def load(path: Path, opts: Options) -> Parsed:
        return Parsed(frame=to_canonical(reader(path, opts), opts.mapping, path))
    return load


register(Format("jsonl", (".jsonl", ".ndjson"), lambda head: True, _loader(read_jsonl),
                "JSONL rows + column mapping", fallback=True))
register(Format("csv", (".csv",), lambda head: True, _loader(read_csv), "CSV rows + column mapping", fallback=True))
register(Format("parquet", (".parquet", ".pq"), lambda head: head.startswith(b"PAR1"), _loader(read_parquet),
                "Parquet rows + column mapping", fallback=True))
