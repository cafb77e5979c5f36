"""Great Expectations on a trace batch (columns, types, nulls, unique ids, timestamp range, signal values), then typing.

The expectations run on the raw values as read (a JSON number where text belongs is a type failure, not
a silent cast); a batch that passes is turned into the typed trace frame (schema.COLUMNS).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from evalplatform.traces.read import RawBatch
from evalplatform.traces.schema import COLUMNS, FEEDBACK, JSON_TYPES, REQUIRED, SIGNALS, STATUSES

MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_AGE = dt.timedelta(days=366)
# numpy dtype names for a typed column (a text column is checked by its polars dtype instead).
_NUMPY_TYPES = {
    "str": ["str"],
    "int": ["int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8"],
    "float": ["float64", "float32"],
    "bool": ["bool"],
    "list": ["object"],
}


@dataclass
class Validation:
    success: bool
    failed: list[dict] = field(default_factory=list)    # [{expectation, column, description, count, examples}]
    statistics: dict[str, Any] = field(default_factory=dict)
    frame: pl.DataFrame | None = None                   # the typed batch, when it passed


def _parse_ts(value: Any) -> dt.datetime | None:
    """A timestamp as an aware UTC datetime: ISO 8601 with a zone, or seconds since the epoch; None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    if isinstance(value, (int, float)):
        try:
            return dt.datetime.fromtimestamp(value, dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        # A time without a zone is ambiguous: refused rather than guessed.
        return parsed.astimezone(dt.timezone.utc) if parsed.tzinfo is not None else None
    return None


def _jsonl_frame(raw: RawBatch):
    import pandas as pd

    cols = raw.columns or {}
    data: dict[str, Any] = {k: pd.Series(v, dtype=object) for k, v in cols.items()}
    stamps = [_parse_ts(v) for v in cols.get("timestamp", [None] * raw.n_rows)]
    data["timestamp_utc"] = pd.to_datetime(pd.Series(stamps, dtype=object), utc=True)
    data["unknown_signal"] = pd.Series(_unknown_signals(cols.get("signals")), dtype=object)
    data["reply_missing"] = pd.Series(_reply_missing(cols.get("trace_id"), cols.get("output"), cols.get("status")),
                                      dtype=object)
    data["line"] = pd.Series(raw.lines, dtype="int64")
    types = {k: list(JSON_TYPES[k]) for k in cols if k in JSON_TYPES and k != "timestamp"}
    return pd.DataFrame(data), types


def _unknown_signals(values: list | None) -> list:
    out = []
    for v in values or []:
        if v is None:
            out.append(None)
        elif not isinstance(v, list):
            out.append(None)  # the type expectation reports it
        else:
            out.append(next((str(s) for s in v if s not in SIGNALS), None))
    return out


def _reply_missing(ids, outputs, statuses) -> list:
    if ids is None:
        return []
    outputs = outputs or [None] * len(ids)
    statuses = statuses or [None] * len(ids)
    return [str(i) if (o is None and s != "error") else None for i, o, s in zip(ids, outputs, statuses)]


def _typed_frame(raw: RawBatch):
    """Parquet and OTLP frames: a column's dtype is its values' type, so types are checked per column."""
    frame = raw.frame
    assert frame is not None
    scalar = {k: frame[k] for k in frame.columns
              if k in COLUMNS and not isinstance(frame.schema[k], (pl.List, pl.Struct, pl.Array))}
    extra = {}
    if "timestamp" in frame.columns:
        extra["timestamp_utc"] = _ts_series(frame["timestamp"])
    if "signals" in frame.columns and isinstance(frame.schema["signals"], pl.List):
        extra["unknown_signal"] = frame.select(
            pl.col("signals").list.eval(pl.element().filter(~pl.element().is_in(list(SIGNALS)))).list.first()
        ).to_series()
    if "trace_id" in frame.columns:
        out = frame["output"] if "output" in frame.columns else pl.Series([None] * frame.height, dtype=pl.Utf8)
        st = frame["status"] if "status" in frame.columns else pl.Series([None] * frame.height, dtype=pl.Utf8)
        extra["reply_missing"] = pl.select(
            pl.when(out.is_null() & (st.cast(pl.Utf8, strict=False).fill_null("") != "error"))
            .then(frame["trace_id"].cast(pl.Utf8, strict=False)).otherwise(None)).to_series()
    extra["line"] = pl.int_range(0, frame.height, eager=True)
    pdf = pl.DataFrame({**scalar, **extra}).to_pandas()
    types = {}
    for k, series in scalar.items():
        if k == "timestamp" or k not in JSON_TYPES:
            continue
        wanted = JSON_TYPES[k]
        if _dtype_fits(series.dtype, wanted):
            continue  # the column's type is every value's type: nothing to check value by value
        types[k] = [name for t in wanted for name in _NUMPY_TYPES[t]]
    return pdf, types


def _dtype_fits(dtype: pl.DataType, wanted: tuple[str, ...]) -> bool:
    if dtype == pl.Null:
        return True
    return (("str" in wanted and dtype == pl.Utf8) or ("int" in wanted and dtype.is_integer())
            or ("float" in wanted and dtype.is_float()) or ("bool" in wanted and dtype == pl.Boolean))


def _ts_series(ts: pl.Series) -> pl.Series:
    if isinstance(ts.dtype, pl.Datetime):
        out = ts if ts.dtype.time_zone else ts.dt.replace_time_zone("UTC")
        return out.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    return pl.Series([_parse_ts(v) for v in ts.to_list()], dtype=pl.Datetime("us", "UTC"))


def validate_batch(raw: RawBatch, *, now: dt.datetime | None = None, max_clock_skew: dt.timedelta = MAX_CLOCK_SKEW,
                   max_age: dt.timedelta = MAX_AGE) -> Validation:
    """Run the batch expectations; on success also return the typed frame."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    now = now or dt.datetime.now(dt.timezone.utc)
    pdf, types = _jsonl_frame(raw) if raw.kind == "jsonl" else _typed_frame(raw)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = ctx.data_sources.add_pandas("traces").add_dataframe_asset("batch").add_batch_definition_whole_dataframe(
        "all")
    suite = ctx.suites.add(gx.ExpectationSuite(name="trace_batch"))
    present = set(pdf.columns)
    expectations = [gxe.ExpectColumnToExist(column=c) for c in REQUIRED]
    for col, allowed in types.items():
        expectations.append(gxe.ExpectColumnValuesToBeInTypeList(column=col, type_list=allowed))
    for col in ("trace_id", "input", "timestamp_utc"):
        if col in present or col == "timestamp_utc" and "timestamp" in present:
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=col))
    if "trace_id" in present:
        expectations.append(gxe.ExpectColumnValuesToBeUnique(column="trace_id"))
    if "timestamp_utc" in present:
        expectations.append(gxe.ExpectColumnValuesToBeBetween(
            column="timestamp_utc", min_value=(now - max_age).isoformat(), max_value=(now + max_clock_skew).isoformat()))
    if "latency_ms" in present:
        expectations.append(gxe.ExpectColumnValuesToBeBetween(column="latency_ms", min_value=0))
    if "feedback" in present:
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column="feedback", value_set=list(FEEDBACK)))
    if "status" in present:
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)))
    for col in ("unknown_signal", "reply_missing"):
        if col in present:
            expectations.append(gxe.ExpectColumnValuesToBeNull(column=col))
    for e in expectations:
        suite.add_expectation(e)
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="batch", data=batch, suite=suite))
    res = vd.run(batch_parameters={"dataframe": pdf}, result_format="COMPLETE" if len(pdf) <= 10_000 else "SUMMARY")
    res = res.to_json_dict()
    failed = []
    for r in res["results"]:
        if r["success"]:
            continue
        cfg = r["expectation_config"]
        col = cfg.get("kwargs", {}).get("column")
        result = r.get("result") or {}
        failed.append(_describe(cfg["type"], col, cfg.get("kwargs", {}), result, pdf, now))
    validation = Validation(success=bool(res["success"]), failed=failed, statistics=res.get("statistics") or {})
    if validation.success:
        validation.frame = typed(raw, pdf)
    return validation


_MESSAGES = {
    "expect_column_to_exist": "column is missing",
    "expect_column_values_to_be_in_type_list": "values of the wrong type",
    "expect_column_values_to_not_be_null": "empty values",
    "expect_column_values_to_be_unique": "duplicate values",
    "expect_column_values_to_be_between": "values out of range",
    "expect_column_values_to_be_in_set": "values outside the allowed set",
    "expect_column_values_to_be_null": "",
}


def _describe(kind: str, column: str | None, kwargs: dict, result: dict, pdf, now: dt.datetime) -> dict:
    count = result.get("unexpected_count")
    examples = [str(x)[:80] for x in (result.get("partial_unexpected_list") or [])[:3]]
    index = (result.get("partial_unexpected_index_list") or [])[:3]
    lines = []
    if "line" in pdf.columns and index:
        lines = [int(pdf["line"].iloc[i]) for i in index if isinstance(i, int) and i < len(pdf)]
    text = _MESSAGES.get(kind, kind)
    field_name = column
    if kind == "expect_column_to_exist":
        text = "required column is missing"
    elif column == "timestamp_utc" and kind == "expect_column_values_to_not_be_null":
        field_name, text = "timestamp", "timestamps that do not parse (ISO 8601 with a time zone, or epoch seconds)"
    elif column == "timestamp_utc":
        field_name = "timestamp"
        text = (f"timestamps outside [{kwargs.get('min_value', '')[:19]}, {kwargs.get('max_value', '')[:19]}] "
                f"(in the future, or too old; now is {now:%Y-%m-%d %H:%M:%S}Z)")
    elif column == "unknown_signal":
        field_name, text = "signals", f"unknown signal values (known: {', '.join(SIGNALS)})"
    elif column == "reply_missing":
        field_name, text = "output", "traces without output whose status is not error"
    elif kind == "expect_column_values_to_be_in_type_list":
        text = f"values of the wrong type (expected {', '.join(JSON_TYPES.get(column or '', ()))})"
        if not count and result.get("observed_value"):
            text = f"column has type {result['observed_value']} (expected {', '.join(JSON_TYPES.get(column or '', ()))})"
    elif kind == "expect_column_values_to_be_in_set":
        text = f"values outside {kwargs.get('value_set')}"
    elif kind == "expect_column_values_to_be_between":
        text = f"values below {kwargs.get('min_value')}"
    return {"expectation": kind, "column": field_name, "description": text, "count": count, "examples": examples,
            "lines": lines, "observed": result.get("observed_value")}


def describe_failures(failed: list[dict], kind: str = "jsonl") -> str:
    """One line per failed expectation: field, what is wrong, how often, examples and where."""
    out = []
    for f in failed:
        where = f" (lines {', '.join(map(str, f['lines']))})" if f.get("lines") and kind == "jsonl" else ""
        count = f" {f['count']} row(s)" if f.get("count") else ""
        eg = f", e.g. {', '.join(f['examples'])}" if f.get("examples") else ""
        out.append(f"{f.get('column') or 'batch'}: {f['description']}{count}{eg}{where}")
    return "; ".join(out)


def typed(raw: RawBatch, pdf) -> pl.DataFrame:
    """The validated batch as the typed trace frame (schema.COLUMNS, in that order)."""
    if raw.kind == "jsonl":
        cols = raw.columns or {}
        data = {}
        for name, dtype in COLUMNS.items():
            if name == "timestamp":
                data[name] = pl.Series(name, [_parse_ts(v) for v in cols["timestamp"]], dtype=dtype)
            elif name in cols:
                data[name] = pl.Series(name, cols[name], dtype=dtype, strict=False)
            else:
                data[name] = pl.Series(name, [None] * raw.n_rows, dtype=dtype)
        frame = pl.DataFrame(data)
    else:
        src = raw.frame
        assert src is not None
        exprs = []
        for name, dtype in COLUMNS.items():
            if name == "timestamp":
                exprs.append(pl.lit(_ts_series(src["timestamp"])).alias(name))
            elif name in src.columns:
                exprs.append(pl.col(name).cast(dtype, strict=False).alias(name))
            else:
                exprs.append(pl.lit(None, dtype=dtype).alias(name))
        frame = src.select(exprs)
    return frame.with_columns(
        pl.col("status").fill_null("ok"),
        pl.col("signals").fill_null(pl.lit([], dtype=pl.List(pl.Utf8))),
        pl.col("tags").fill_null(pl.lit([], dtype=pl.List(pl.Utf8))),
        pl.col("is_regeneration").fill_null(False),
    )
