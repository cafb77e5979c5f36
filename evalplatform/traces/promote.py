"""A reviewed production failure into the suite's append-only regression set, as one appended JSONL line.

The line is checked first (a valid case, a new id, every field the suite's scorers and prompt read for a
case with its tags), then written with one O_APPEND write and fsync, never by rewriting the file: a file
whose last byte is not a newline is refused (appending would glue two cases together). Promotion is
idempotent: a case already appended for the same trace is recognised, so a retry after a crash only
records what the history missed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import filelock
import polars as pl

from evalplatform.errors import InputError
from evalplatform.prompt import template_fields
from evalplatform.traces.pipeline import TraceSetup, input_field

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def regression_file(setup: TraceSetup) -> Path:
    """The suite's regression dataset (source: regression, JSONL): where promoted failures go."""
    for ref in setup.suite.spec.datasets:
        if ref.source == "regression":
            path = setup.suite.root / ref.path
            if path.suffix.lower() not in (".jsonl", ".ndjson"):
                raise InputError(setup.suite.path, "datasets", f"the regression set {ref.path!r} is not JSONL",
                                 "keep the regression set as a .jsonl file so cases can be appended")
            return path
    raise InputError(setup.suite.path, "datasets", f"suite {setup.name!r} has no regression set",
                     "add `{path: regression.jsonl, source: regression}` to its datasets")


def case_id_for(trace_id: str) -> str:
    safe = _UNSAFE.sub("-", trace_id).strip("-")[:40]
    if safe != trace_id[:40]:
        safe = f"{safe[:24]}-{hashlib.sha256(trace_id.encode()).hexdigest()[:8]}"
    return f"prod-{safe}"


def build_case(setup: TraceSetup, trace: dict[str, Any], *, category: str, note: str | None, reviewer: str,
               fields: dict[str, Any] | None = None, severity: str | None = None,
               today: dt.date | None = None) -> dict[str, Any]:
    """The regression case for a failed trace: its message, where it came from, and the reviewer's verdict.

    The reply itself is not copied (it may hold what must never be stored, such as a leaked phone
    number): only its sha256.
    """
    tags = list(trace.get("tags") or [])
    product_category = next((t.split(":", 1)[1] for t in tags if t.startswith("category:")), None)
    row: dict[str, Any] = {
        "id": case_id_for(trace["trace_id"]),
        "category": product_category,
        "source": "regression",
        input_field(setup): trace["input"],
        "failure_category": category,
        "source_trace_id": trace["trace_id"],
        "release": trace.get("release"),
        "reviewed_at": (today or dt.date.today()).isoformat(),
        "reviewer": reviewer,
        "note": note,
        "observed_output_sha256": hashlib.sha256((trace.get("output") or "").encode("utf-8")).hexdigest()
        if trace.get("output") is not None else None,
        "tags": [f"failure:{category}", "from:production"],
    }
    if severity:
        row["severity"] = severity
    for key, value in (fields or {}).items():
        if key in ("id", "source", "source_trace_id", "failure_category"):
            raise InputError(None, f"--field {key}", "is set by the promotion itself")
        row[key] = value
    return {k: v for k, v in row.items() if v is not None}


def missing_fields(setup: TraceSetup, row: dict[str, Any]) -> dict[str, list[str]]:
    """Fields the case lacks that the suite's prompt or a scorer applying to it reads: field -> readers."""
    from evalplatform.datasets import _tags

    frame = pl.DataFrame([{"tags": _tags(row)}], schema={"tags": pl.List(pl.Utf8)})
    needs: dict[str, list[str]] = {}
    for f in template_fields(setup.suite.prompt_template):
        if row.get(f) is None:
            needs.setdefault(f, []).append("the prompt")
    for scorer in setup.suite.spec.scorers:
        if frame.filter(scorer.applies()).height == 0:
            continue
        for f in scorer.columns_needed():
            if row.get(f) is None:
                needs.setdefault(f, []).append(f"scorer {scorer.id}")
    return needs


def _existing(path: Path) -> dict[str, dict]:
    out = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # the regression set's own checks report a broken line
            if isinstance(row, dict) and "id" in row:
                out[str(row["id"])] = row
    return out


def append_line(path: Path, line: str) -> None:
    """Append one complete line: O_APPEND, one write, fsync; refused when the file does not end in a newline."""
    data = line.encode("utf-8")
    if not data.endswith(b"\n") or b"\n" in data[:-1]:
        raise ValueError("append_line takes exactly one line ending in a newline")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        raise InputError(path, None, "regression set file not found", "create it (it may be empty)") from None
    try:
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    raise InputError(path, f"byte {size}", "the file does not end with a newline; appending would "
                                     "join the new case to the last one", "add the missing newline, then promote "
                                     "again")
        written = os.write(fd, data)
        if written != len(data):
            raise InputError(path, None, f"short write ({written} of {len(data)} bytes)", "check the disk")
        os.fsync(fd)
    finally:
        os.close(fd)


def check_case(setup: TraceSetup, row: dict[str, Any]) -> tuple[Path, bool]:
    """Everything append_case checks, without writing: (file, already there for this trace)."""
    from evalplatform.datasets import _validate_row
    from evalplatform.runner import load_dataset

    path = regression_file(setup)
    needs = missing_fields(setup, row)
    if needs:
        first = sorted(needs)[0]
        raise InputError(path, f"--field {first}", f"the new case needs field {first!r} (read by "
                         f"{', '.join(needs[first])})" + (f"; also missing: {', '.join(sorted(needs)[1:])}"
                                                          if len(needs) > 1 else ""),
                         f"give it with --field {first}=JSON (e.g. --field {first}='[\"...\"]')")
    _validate_row(path, "new case", row, "regression")
    found = _existing(path).get(row["id"])
    if found is not None:
        if found.get("source_trace_id") == row["source_trace_id"]:
            return path, True
        raise InputError(path, "id", f"case id {row['id']!r} is already used by another case")
    if row["id"] in set(load_dataset(setup.suite).cases["case_id"].to_list()):
        raise InputError(path, "id", f"case id {row['id']!r} is already a case of suite {setup.name!r}")
    data = path.read_bytes() if path.exists() else b""
    if data and not data.endswith(b"\n"):
        raise InputError(path, f"byte {len(data)}", "the file does not end with a newline; appending would join "
                         "the new case to the last one", "add the missing newline, then promote again")
    _fits(setup, path, json.dumps(row, ensure_ascii=False) + "\n")
    return path, False


def append_case(setup: TraceSetup, row: dict[str, Any]) -> tuple[Path, bool]:
    """Validate and append the case; returns (file, appended) — False when it was already there for this trace."""
    lock_path = setup.project.state_dir / "locks" / f"{setup.name}-regression.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(lock_path), timeout=60):
        path, already = check_case(setup, row)
        if already:
            return path, False
        append_line(path, json.dumps(row, ensure_ascii=False) + "\n")
    return path, True


def _fits(setup: TraceSetup, path: Path, line: str) -> None:
    """The suite's datasets still load with the new line (each field keeps one type across cases)."""
    import tempfile

    from evalplatform.datasets import load_cases
    from evalplatform.errors import EvalPlatformError

    with tempfile.TemporaryDirectory(prefix="evalplatform-promote-") as tmp:
        trial = Path(tmp) / path.name
        data = path.read_bytes() if path.exists() else b""
        trial.write_bytes(data + (b"" if not data or data.endswith(b"\n") else b"\n") + line.encode("utf-8"))
        files = [(trial if (setup.suite.root / d.path) == path else setup.suite.root / d.path, d.source)
                 for d in setup.suite.spec.datasets]
        try:
            load_cases(files)
        except EvalPlatformError as err:
            raise InputError(path, "new case", f"the regression set would not load with it: {err}") from None
        except Exception as exc:  # polars refuses a field whose type differs from the other cases'
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(path, "new case", f"a field has another type than in the suite's other cases "
                             f"({first})", "give list fields as JSON lists of text and text fields as text") from None
