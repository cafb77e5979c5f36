"""Shared guards and helpers for importers: safe file reading, JSON parsing, outcome and score rules."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from evalplatform.errors import InputError

DEFAULT_MAX_BYTES = 2 * 1024**3
BOM = b"\xef\xbb\xbf"

# Spellings other tools and hand-written files use for the four canonical outcomes.
OUTCOME_ALIASES: dict[str, str] = {
    "pass": "pass", "passed": "pass", "true": "pass", "1": "pass", "success": "pass",
    "fail": "fail", "failed": "fail", "false": "fail", "0": "fail", "failure": "fail",
    "error": "error", "errored": "error",
    "skip": "skipped", "skipped": "skipped",
}

_SECRET = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|(?i:bearer)\s+[A-Za-z0-9._\-]{8,}|(?i:api[_-]?key)[\"']?\s*[:=]\s*[\"']?[^\s\"',]{6,})"
)
# A JavaScript or Python stack trace adds noise to the one line a reviewer reads.
_STACK = re.compile(r"\n\s+at |\nTraceback \(most recent call last\)")


@dataclass
class Parsed:
    """What one importer made of one file: the rows, the suite it names, and warnings to show."""

    rows: list[dict[str, Any]] | None = None
    suite: str | None = None
    warnings: list[str] = field(default_factory=list)
    # Table-shaped formats hand over a frame instead of rows.
    frame: pl.DataFrame | None = None


def check_size(path: Path, max_bytes: int) -> int:
    """Fail before reading a file that is missing, empty or too large."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(path, None, "file not found", "check the path") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror}") from None
    if size == 0:
        raise InputError(path, None, "file is empty", "pass the result file the tool wrote")
    if size > max_bytes:
        raise InputError(
            path, None, f"file is {size} bytes, above the import limit of {max_bytes} bytes",
            "raise max_bytes if the file is trusted",
        )
    return size


def read_bytes(path: Path, max_bytes: int) -> bytes:
    check_size(path, max_bytes)
    return path.read_bytes()


def decode(data: bytes, path: Path) -> str:
    """Strict UTF-8, a leading BOM accepted and stripped; an all-whitespace file counts as empty."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            path, f"byte {exc.start}", "not valid UTF-8", "re-export the file as UTF-8"
        ) from None
    if not text.strip():
        raise InputError(path, None, "file is empty", "pass the result file the tool wrote")
    return text


def read_text(path: Path, max_bytes: int) -> str:
    return decode(read_bytes(path, max_bytes), path)


def parse_json(text: str, path: Path, where: str | None = None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"line {exc.lineno} column {exc.colno}"
        if where:
            at = f"{where}: {at}"
        raise InputError(path, at, f"malformed JSON ({exc.msg})", "the file may be truncated; re-export it") from None
    except RecursionError:
        raise InputError(path, where, "JSON nested too deeply") from None


def parse_jsonl(text: str, path: Path) -> list[Any]:
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(
                path, f"line {lineno} column {exc.colno}", f"malformed JSON ({exc.msg})",
                "the file may be truncated; re-export it",
            ) from None
    return records


def require(obj: Any, kind: type | tuple[type, ...], path: Path, field_name: str, expected: str) -> Any:
    if not isinstance(obj, kind):
        raise InputError(path, field_name, f"expected {expected}, found {type(obj).__name__}",
                         "is this the right file and --format?")
    return obj


def stable_hash(obj: Any) -> str:
    """sha256 of canonical JSON: the same content gives the same id on every machine and run."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def number(value: Any, path: Path, field_name: str) -> float | None:
    """A finite float or None (absent); NaN, infinity and non-numbers are refused because they poison every average."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(path, field_name, f"expected a number, found {value!r}", "fix the producing tool's output")
    f = float(value)
    if not math.isfinite(f):
        raise InputError(path, field_name, f"expected a finite number, found {value!r} (NaN or infinite)",
                         "fix the producing scorer")
    return f


def flag(value: Any, path: Path, field_name: str) -> bool | None:
    """A stated true/false or None (absent); any other value is a corrupt file, not a verdict to guess."""
    if value is None or isinstance(value, bool):
        return value
    raise InputError(path, field_name, f"expected true or false, found {value!r}", "fix the producing tool's output")


def count(value: Any, path: Path, field_name: str) -> int | None:
    """A non-negative whole number (token counts) or None (absent)."""
    f = number(value, path, field_name)
    if f is None:
        return None
    if f < 0 or f != int(f):
        raise InputError(path, field_name, f"expected a whole number >= 0, found {value!r}")
    return int(f)


def clip_score(value: float | None, counter: list[int]) -> float | None:
    """Clip a tool's score into [0, 1]; counts clipped values so the caller can warn."""
    if value is None:
        return None
    if value < 0.0 or value > 1.0:
        counter[0] += 1
        return min(1.0, max(0.0, value))
    return value


def clean_error(text: Any) -> str | None:
    """The error message without stack frames, secrets redacted."""
    if text is None:
        return None
    s = text if isinstance(text, str) else json.dumps(text, default=str)
    m = _STACK.search(s)
    if m:
        s = s[: m.start()]
    s = _SECRET.sub("[REDACTED]", s.strip())
    return s or "error"


def tags_from_metadata(meta: Any) -> list[str]:
    """Scalar metadata as "key:value" tags, plus the labels of a "tags" list."""
    tags: list[str] = []
    if not isinstance(meta, dict):
        return tags
    for key, value in meta.items():
        if key == "tags" and isinstance(value, list):
            tags.extend(str(v) for v in value if isinstance(v, (str, int, float)))
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool) and key[:1] != "_":
            text = str(value)
            tags.append(text if text.startswith(f"{key}:") else f"{key}:{text}")
    return tags


class RepeatCounter:
    """Numbers repeats of a case 0..k-1 in file order."""

    def __init__(self) -> None:
        self._seen: dict[Any, int] = {}

    def next(self, key: Any) -> int:
        k = self._seen.get(key, 0)
        self._seen[key] = k + 1
        return k


def check_unique(df: pl.DataFrame, source: str) -> None:
    dup = df.group_by(["case_id", "repeat", "scorer"]).len().filter(pl.col("len") > 1)
    if dup.height:
        row = dup.sort(["case_id", "repeat", "scorer"]).row(0, named=True)
        raise InputError(
            source, "case_id/repeat/scorer",
            f"duplicate rows for case {row['case_id']!r}, repeat {row['repeat']}, scorer {row['scorer']!r}",
            "each (case, repeat, scorer) may appear once; map a repeat column or split the files",
        )
