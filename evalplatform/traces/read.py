"""Reading one trace file (OTLP JSON, plain JSONL or Parquet; JSON may be gzipped) into raw rows for validation.

Everything that makes a file unreadable is an InputError naming the file and where (line, byte): not
UTF-8, a line that is not JSON, a line over the size limit, a truncated gzip stream, an empty file, an
OTLP file without GenAI spans, a file of another kind. The caller quarantines the file with that reason.
"""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import msgspec
import polars as pl

from evalplatform.errors import InputError
from evalplatform.traces import otlp
from evalplatform.traces.schema import COLUMNS

SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz", ".parquet")
MAX_LINE_BYTES = 64 * 2**20
MAX_FILE_BYTES = 16 * 2**30


@dataclass
class RawBatch:
    """A file's traces before validation: raw columns (plain JSON keeps each value's JSON type) or a frame."""

    path: Path
    kind: str                                   # otlp | jsonl | parquet
    frame: pl.DataFrame | None = None           # otlp and parquet: typed by the reader
    columns: dict[str, list] | None = None      # jsonl: column -> raw values, in line order
    lines: list[int] | None = None              # jsonl: line number of each row
    n_rows: int = 0
    info: dict[str, Any] = field(default_factory=dict)


def is_trace_file(name: str) -> bool:
    """Files the sensor takes: a known suffix, not hidden, not a temporary file being written."""
    low = name.lower()
    return not low.startswith((".", "_")) and low.endswith(SUFFIXES)


def _open(path: Path) -> io.BufferedIOBase:
    raw = open(path, "rb")
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if path.name.lower().endswith(".gz"):
        raw.close()
        raise InputError(path, None, "named .gz but is not gzip-compressed", "rename it or compress it with gzip")
    return raw


def _lines(path: Path, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of every non-blank line; compression and size problems as InputError."""
    try:
        stream = _open(path)
    except OSError as exc:
        raise InputError(path, None, f"cannot read the file: {exc.strerror or exc}") from None
    number = 0
    with stream:
        while True:
            try:
                line = stream.readline(max_line_bytes + 1)
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                raise InputError(path, f"line {number + 1}", f"truncated or corrupt gzip stream ({exc})",
                                 "re-export or re-compress the file, then drop it again") from None
            if not line:
                return
            number += 1
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                raise InputError(path, f"line {number}", f"line is over {max_line_bytes / 2**20:g} MiB",
                                 "split the export into smaller batches (one JSON object per line)")
            if line.strip():
                yield number, line


def _check_size(path: Path, max_file_bytes: int) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(path, None, "trace file not found") from None
    if size == 0:
        raise InputError(path, None, "file is empty", "drop a file with at least one trace")
    if size > max_file_bytes:
        raise InputError(path, None, f"file is {size / 2**30:.1f} GiB, over the {max_file_bytes / 2**30:g} GiB "
                         "limit", "split it into smaller files")


def _json_error(path: Path, number: int, exc: Exception) -> InputError:
    if isinstance(exc, UnicodeDecodeError):
        return InputError(path, f"line {number}, byte {exc.start}", "not valid UTF-8", "write the file as UTF-8")
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return InputError(path, f"line {number}", f"invalid JSON: {message}", "each line must be one JSON object")


def read_batch(path: Path, *, max_line_bytes: int = MAX_LINE_BYTES, max_file_bytes: int = MAX_FILE_BYTES) -> RawBatch:
    """Read a trace file; an unreadable one raises InputError (file, line, problem, fix)."""
    path = Path(path)
    name = path.name.lower()
    if not name.endswith(SUFFIXES):
        raise InputError(path, None, f"not a trace file kind this reads ({', '.join(SUFFIXES)})",
                         "export OTLP JSON lines, or plain trace rows as JSONL or Parquet")
    _check_size(path, max_file_bytes)
    if name.endswith(".parquet"):
        return _read_parquet(path)
    lines = _lines(path, max_line_bytes)
    first = next(lines, None)
    if first is None:
        raise InputError(path, None, "file holds no traces (only blank lines)")
    number, line = first
    try:
        head = msgspec.json.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _json_error(path, number, exc) from None
    if isinstance(head, dict) and ("resourceSpans" in head or "resource_spans" in head):
        return _read_otlp(path, first, lines)
    return _read_plain(path, (number, head), lines)


def _read_otlp(path: Path, first: tuple[int, bytes], rest: Iterator[tuple[int, bytes]]) -> RawBatch:
    rows = otlp.SpanRows()
    n_lines = 0
    for number, line in _chain(first, rest):
        try:
            data = otlp.DECODER.decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _json_error(path, number, exc) from None
        except msgspec.ValidationError as exc:
            raise InputError(path, f"line {number}", f"not OTLP JSON: {exc}",
                             "write TracesData objects as the OTLP JSON encoding specifies") from None
        if data.resource_spans is None:
            raise InputError(path, f"line {number}", "has no resourceSpans (a trace file holds only traces)",
                             "export traces, not metrics or logs, to this folder")
        otlp.add_traces_data(data, rows)
        n_lines += 1
    frame, skipped = otlp.spans_to_traces(rows.frame())
    if frame.height == 0:
        raise InputError(path, None, f"no GenAI or OpenInference spans in {rows.n_spans} span(s) "
                         f"({skipped} trace(s))", "instrument the LLM calls with the GenAI semantic conventions "
                         "(gen_ai.*) or OpenInference (input.value, output.value)")
    return RawBatch(path, "otlp", frame=frame, n_rows=frame.height,
                    info={"lines": n_lines, "spans": rows.n_spans, "skipped_traces_without_genai": skipped})


def _chain(first, rest):
    yield first
    yield from rest


def _read_plain(path: Path, first: tuple[int, Any], rest: Iterator[tuple[int, bytes]]) -> RawBatch:
    rows: list[tuple[int, Any]] = [first]
    decode = msgspec.json.Decoder().decode
    for number, line in rest:
        try:
            rows.append((number, decode(line)))
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _json_error(path, number, exc) from None
    for number, row in rows:
        if not isinstance(row, dict):
            raise InputError(path, f"line {number}", "a trace row must be a JSON object")
    keys = [k for k in COLUMNS]
    columns = {k: [row.get(k) for _, row in rows] for k in keys if any(k in row for _, row in rows)}
    unknown = sorted({k for _, row in rows for k in row} - set(keys) - {"metadata"})
    return RawBatch(path, "jsonl", columns=columns, lines=[n for n, _ in rows], n_rows=len(rows),
                    info={"unknown_fields": unknown[:20]})


def _read_parquet(path: Path) -> RawBatch:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises ComputeError / OSError variants for non-Parquet bytes
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, None, f"cannot read Parquet: {first}", "write the file with a Parquet writer") from None
    if frame.height == 0:
        raise InputError(path, None, "Parquet file holds no rows")
    unknown = sorted(set(frame.columns) - set(COLUMNS) - {"metadata"})
    return RawBatch(path, "parquet", frame=frame, n_rows=frame.height, info={"unknown_fields": unknown[:20]})
