"""Reading user files as text: UTF-8 (BOM tolerated), safe YAML, and regular expressions, each failing in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import yaml

from evalplatform.errors import InputError


def decode_utf8(path: str | Path, data: bytes) -> str:
    """UTF-8 text of a file's bytes, a leading BOM dropped; InputError naming the byte otherwise."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"byte {exc.start}", "not valid UTF-8", "save the file as UTF-8") from None


def load_yaml(path: str | Path, data: bytes, example: str | None = None) -> Any:
    """yaml.safe_load of a file's bytes (never the full loader: no tags that build objects)."""
    text = decode_utf8(path, data)
    if not text.strip():
        raise InputError(path, None, "file is empty", f"see {example} for an example" if example else None)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(path, at, f"invalid YAML: {problem}") from None


def check_regex(pattern: str) -> str:
    """Compile with the engine that runs it (polars' Rust regex: linear time, no catastrophic
    backtracking, no lookaround or backreferences); ValueError with the parser's message otherwise."""
    try:
        pl.select(pl.lit("").str.contains(pattern))
    except Exception as exc:  # polars raises ComputeError; its lines say what is wrong
        lines = [ln.strip() for ln in str(exc).strip().splitlines()]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "invalid")
        raise ValueError(f"invalid regular expression {pattern!r}: {detail}") from None
    return pattern
