"""Case datasets: read JSONL/CSV/Parquet, validate every row, and version the content by sha256."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evalplatform.conversation import ConversationMessage, check_conversation
from evalplatform.errors import InputError
from evalplatform.provenance import canonical_json, sha256_text
from evalplatform.textio import decode_utf8, loads_json

MAX_DATASET_BYTES = 512 * 1024 * 1024
SEVERITIES = ("low", "medium", "high", "critical")
SOURCES = ("golden", "regression", "trace")
# Columns of the scored frame a case field would collide with (trace: a trial's transcript and trajectory).
RESERVED = ("output", "tags", "repeat", "case_hash", "__row", "trace", "trace_hash")


class CaseRow(BaseModel):
    """One case. Any other field is free data for the prompt template and scorers."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=200)
    category: str | None = None
    severity: Literal["low", "medium", "high", "critical"] | None = None
    source: Literal["golden", "regression", "trace"] | None = None
    tags: list[str] = Field(default_factory=list)
    conversation: list[ConversationMessage] | None = Field(
        default=None, description="A multi-turn case: messages played in order; an assistant message without "
                                  "content is a turn the target plays (with optional `expect`).")

    @field_validator("conversation")
    @classmethod
    def _playable(cls, v: list[ConversationMessage] | None) -> list[ConversationMessage] | None:
        return check_conversation(v) if v is not None else v

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> Any:
        if isinstance(v, (int,)) and not isinstance(v, bool):
            v = str(v)
        if isinstance(v, str):
            v = v.strip()
            if any(ord(c) < 32 for c in v):
                raise ValueError("case id must not contain control characters")
        return v

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, v: Any) -> Any:
        if v is None:
            return []
        if isinstance(v, str):
            return [t.strip() for t in v.split(",") if t.strip()]
        return v


@dataclass(frozen=True)
class Dataset:
    """Validated cases of a suite: a polars frame plus the content hash that versions it."""

    cases: pl.DataFrame
    version: str
    files: tuple[str, ...]

    @property
    def n(self) -> int:
        return self.cases.height


def _read_raw(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(path, None, "dataset file not found") from None
    if size > max_bytes:
        raise InputError(path, None, f"file is {size / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB limit",
                         "split the dataset or raise the limit")
    if size == 0:
        raise InputError(path, None, "file is empty")
    return path.read_bytes()


def _read_jsonl(path: Path, max_bytes: int) -> list[tuple[str, Any]]:
    text = decode_utf8(path, _read_raw(path, max_bytes))
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((f"line {n}", loads_json(line, parse_constant=_reject_constant)))
        except json.JSONDecodeError as exc:
            raise InputError(path, f"line {n}", f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        except ValueError as exc:
            raise InputError(path, f"line {n}", str(exc)) from None
    return rows


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a dataset (use null)")


def decode_cell(value: Any) -> Any:
    """A nested value kept as JSON text in a cases frame (see _cell), back as the list or object it was."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _read_csv(path: Path, max_bytes: int) -> list[tuple[str, Any]]:
    text = decode_utf8(path, _read_raw(path, max_bytes))
    try:
        df = pl.read_csv(text.encode("utf-8"), infer_schema=False)
    except Exception as exc:  # polars' CSV errors are ComputeError/NoDataError
        raise InputError(path, None, f"cannot parse CSV: {str(exc).splitlines()[0]}") from None
    return [(f"row {i + 2}", {k: decode_cell(v) for k, v in r.items() if v is not None})
            for i, r in enumerate(df.iter_rows(named=True))]


def _read_parquet(path: Path, max_bytes: int) -> list[tuple[str, Any]]:
    _read_raw(path, max_bytes)
    try:
        df = pl.read_parquet(path)
    except Exception as exc:
        raise InputError(path, None, f"cannot read Parquet: {str(exc).splitlines()[0]}") from None
    return [(f"row {i}", {k: v for k, v in r.items() if v is not None}) for i, r in enumerate(df.iter_rows(named=True))]


READERS = {".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".csv": _read_csv, ".parquet": _read_parquet}


def _validate_row(path: Path, where: str, raw: Any, default_source: str | None) -> dict:
    if not isinstance(raw, dict):
        raise InputError(path, where, "a case must be a JSON object")
    for key in raw:
        if key in RESERVED and key != "tags":
            raise InputError(path, f"{where}: {key}", "is a reserved field name", "rename the field")
    try:
        case = CaseRow.model_validate(raw)
    except ValidationError as err:
        e = err.errors()[0]
        field = ".".join(str(p) for p in e["loc"]) or None
        label = f"{where}: {field}" if field else where
        raise InputError(path, label, e["msg"]) from None
    row = case.model_dump()
    if row["conversation"] is None:
        del row["conversation"]  # absent stays absent: the case hashes of single-turn cases do not change
    else:
        row["conversation"] = [m.model_dump(exclude_none=True) for m in case.conversation or []]
    if row.get("source") is None:
        row["source"] = default_source or "golden"
    for k, v in row.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise InputError(path, f"{where}: {k}", "NaN or infinite value")
        problem = _text_problem(v)
        if problem:
            raise InputError(path, f"{where}: {k}", problem, "fix the escape in the file")
    return row


def _text_problem(value: Any) -> str | None:
    """A lone surrogate ("\\ud800": valid JSON, not valid Unicode) anywhere in a field's text."""
    from evalplatform.models.text import unicode_problem

    if isinstance(value, str):
        return unicode_problem(value)
    if isinstance(value, list):
        return next((p for p in map(_text_problem, value) if p), None)
    if isinstance(value, dict):
        return next((p for p in map(_text_problem, [*value.keys(), *value.values()]) if p), None)
    return None


def _tags(row: dict) -> list[str]:
    tags = [f"{k}:{row[k]}" for k in ("category", "severity", "source") if row.get(k)]
    return tags + [t for t in row.get("tags", []) if t not in tags]


def _cell(v: Any) -> Any:
    # Lists of strings stay lists (needles); anything nested becomes JSON text so rows share one type.
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, ensure_ascii=False)
    return v


def load_cases(files: list[tuple[Path, str | None]], max_bytes: int = MAX_DATASET_BYTES) -> Dataset:
    """Read and validate every case of a suite's dataset files (path, default source) in order."""
    rows: list[dict] = []
    first_seen: dict[str, str] = {}
    for path, default_source in files:
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            raise InputError(path, None, f"unsupported dataset format {path.suffix!r}", "use .jsonl, .csv or .parquet")
        raw_rows = reader(path, max_bytes)
        if not raw_rows:
            raise InputError(path, None, "no cases in file")
        for where, raw in raw_rows:
            row = _validate_row(path, where, raw, default_source)
            cid = row["id"]
            if cid in first_seen:
                raise InputError(path, f"{where}: id", f"duplicate case id {cid!r} (first at {first_seen[cid]})",
                                 "case ids must be unique across the suite's datasets")
            first_seen[cid] = f"{path.name} {where}"
            rows.append(row)
    content = [{k: v for k, v in r.items() if k != "id"} for r in rows]
    hashes = [sha256_text(canonical_json(c)) for c in content]
    version = sha256_text(canonical_json(sorted(zip((r["id"] for r in rows), hashes))))
    records = []
    for r, h in zip(rows, hashes):
        rec = {k: _cell(v) for k, v in r.items() if k != "tags"}
        rec["tags"] = _tags(r)
        rec["case_hash"] = h
        records.append(rec)
    cases = pl.DataFrame(records, infer_schema_length=None, strict=False)
    return Dataset(cases=cases.rename({"id": "case_id"}), version=version, files=tuple(str(p) for p, _ in files))


def check_fields(cases: pl.DataFrame, needed: dict[str, pl.Expr | None], label: str, suite_path: Path) -> None:
    """Every case a scorer or the prompt applies to must have the fields it reads."""
    for field, applies in needed.items():
        scope = cases.filter(applies) if applies is not None else cases
        if scope.height == 0:
            continue
        if field not in cases.columns:
            raise InputError(suite_path, label, f"field {field!r} is used but no case has it",
                             "add it to the dataset or fix the name")
        missing = scope.filter(pl.col(field).is_null())
        if missing.height:
            raise InputError(suite_path, label, f"case {missing['case_id'][0]!r} lacks field {field!r} "
                             f"({missing.height} case(s) in all)", "add it or narrow the scorer's `when`")
