"""Shared guards and helpers for importers: safe file reading, JSON parsing, outcome and score rules."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
import stat
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from evalplatform.errors import InputError

DEFAULT_MAX_BYTES = 2 * 1024**3
BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
GZIP_ENDING = ".gz"

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
    """Fail before reading a file that is missing, not a regular file, empty or too large (never opens it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(path, None, "file not found", "check the path") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror}") from None
    _check_kind(path, st.st_mode)
    size = st.st_size
    if size == 0:
        raise InputError(path, None, "file is empty", "pass the result file the tool wrote")
    if size > max_bytes:
        raise InputError(
            path, None, f"file is {size} bytes, above the import limit of {max_bytes} bytes",
            "raise max_bytes if the file is trusted",
        )
    return size


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _check_kind(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    fix = "pass the result files inside it" if stat.S_ISDIR(mode) else "write the results to a file and pass that"
    raise InputError(path, None, f"is {kind}, not a result file", fix)


def open_file(path: Path) -> BinaryIO:
    """Open a checked path for reading; O_NONBLOCK so a FIFO swapped in after the check cannot hang us."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError(path, None, "file not found", "check the path") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a directory, not a result file", "pass the result files inside it") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror}") from None
    try:
        _check_kind(path, os.fstat(fd).st_mode)
    except InputError:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def is_gzip_name(path: Path) -> bool:
    return path.name.lower().endswith(GZIP_ENDING)


def logical_name(path: Path) -> str:
    """The lower-case file name that says the format: `r.results.json.gz` reads as `r.results.json`."""
    name = path.name.lower()
    return name[: -len(GZIP_ENDING)] if name.endswith(GZIP_ENDING) else name


def _gzip_problem(path: Path, head: bytes) -> None:
    """Refuse a file whose name and content disagree about gzip, in words that say gzip."""
    if is_gzip_name(path) and not head.startswith(GZIP_MAGIC):
        raise InputError(path, None, "not gzip data, although the name ends in .gz",
                         "compress it with gzip, or drop the .gz from its name")
    if not is_gzip_name(path) and head.startswith(GZIP_MAGIC):
        raise InputError(path, None, "file is gzip-compressed but its name does not end in .gz",
                         f"rename it to {path.name}.gz")


def _gunzip(fh: BinaryIO, path: Path, limit: int) -> bytes:
    """Decompress up to `limit` bytes; a stream that expands further is refused without inflating the rest."""
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            while len(out) <= limit:
                chunk = gz.read(min(1 << 20, limit + 1 - len(out)))
                if not chunk:
                    break
                out += chunk
    except EOFError:
        raise InputError(path, None, "truncated gzip: the compressed stream ends early",
                         "the file was cut short; re-copy or re-compress it") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(path, None, f"corrupt gzip data ({exc})", "re-copy or re-compress the file") from None
    return bytes(out)


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's content (decompressed when its name ends in .gz), at most max_bytes of it."""
    check_size(path, max_bytes)
    with open_file(path) as fh:
        head = fh.read(len(GZIP_MAGIC))
        _gzip_problem(path, head)
        fh.seek(0)
        if is_gzip_name(path):
            data = _gunzip(fh, path, max_bytes)
            if len(data) > max_bytes:
                raise InputError(path, None, f"decompresses to more than {max_bytes} bytes, above the import "
                                 "limit", "raise max_bytes if the file is trusted")
            return data
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew after the size check
        raise InputError(path, None, f"file is above the import limit of {max_bytes} bytes",
                         "raise max_bytes if the file is trusted")
    return data


def read_head(path: Path, n: int) -> bytes:
    """The first n bytes of the content (decompressed for .gz), for telling formats apart."""
    with open_file(path) as fh:
        head = fh.read(len(GZIP_MAGIC))
        _gzip_problem(path, head)
        fh.seek(0)
        return _gunzip(fh, path, n)[:n] if is_gzip_name(path) else fh.read(n)


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


# A \uD800-\uDFFF escape in JSON text; only then can a parsed string hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_surrogates(obj: Any) -> Any:
    """Lone surrogates (a JavaScript tool cut an emoji in half) become U+FFFD: text must be valid Unicode
    to reach the result table; valid pairs were already joined by the JSON parser."""
    if isinstance(obj, str):
        return _LONE_SURROGATE.sub("\ufffd", obj)
    if isinstance(obj, list):
        return [_replace_surrogates(v) for v in obj]
    if isinstance(obj, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in obj.items()}
    return obj


def _loads(text: str) -> Any:
    doc = json.loads(text)
    return _replace_surrogates(doc) if _SURROGATE_ESCAPE.search(text) else doc


def parse_json(text: str, path: Path, where: str | None = None) -> Any:
    try:
        return _loads(text)
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
            records.append(_loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(
                path, f"line {lineno} column {exc.colno}", f"malformed JSON ({exc.msg})",
                "the file may be truncated; re-export it",
            ) from None
        except RecursionError:
            raise InputError(path, f"line {lineno}", "JSON nested too deeply") from None
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
