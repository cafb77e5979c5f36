"""import_results / detect_format: pick a format, load each file, and return one canonical result table."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from evalplatform import results
from evalplatform.errors import InputError
from evalplatform.importers import deepeval, generic, inspect_log, junit, promptfoo, promptfoo_csv  # noqa: F401  (register)
from evalplatform.importers._common import (
    BOM,
    DEFAULT_MAX_BYTES,
    GZIP_ENDING,
    Parsed,
    check_size,
    check_unique,
    logical_name,
    open_file,
    read_head,
)
from evalplatform.importers.registry import FORMATS, Options

TIER_COST = "external"
HEAD_BYTES = 64 * 1024


class ImportIncompleteWarning(UserWarning):
    """The file imported, but it says results are missing (e.g. an Inspect run that stopped early)."""


@dataclass
class ImportResult:
    frame: pl.DataFrame
    warnings: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)


def detect_format(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The registered format name for a file, from its name ending and its first bytes (both after a .gz)."""
    path = Path(path)
    check_size(path, max_bytes)
    head = _head(path)
    name = logical_name(path)
    candidates = [f for f in FORMATS.values() if any(name.endswith(e) for e in f.extensions)]
    for fmt in sorted(candidates, key=lambda f: f.fallback):
        if fmt.sniff(head):
            return fmt.name
    if name.endswith(".json"):
        found = _detect_json_by_keys(path, max_bytes)
        if found:
            return found
    known = sorted({e for f in FORMATS.values() for e in f.extensions})
    raise InputError(path, "format", "cannot tell which tool wrote this file",
                     f"pass format= one of {', '.join(sorted(FORMATS))} (known endings: {' '.join(known)}, "
                     f"each optionally followed by {GZIP_ENDING})")


def load_results(paths: list[Path] | list[str], fmt: str = "auto", *, mapping: dict | None = None,
                 run_id: str | None = None, suite: str | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> ImportResult:
    """Like import_results, and also returns the warnings and the format chosen per file."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError(None, "paths", "no result files given")
    if fmt != "auto" and fmt not in FORMATS:
        raise InputError(None, "format", f"unknown format {fmt!r}", f"use auto or one of {', '.join(sorted(FORMATS))}")
    opts = Options(max_bytes=max_bytes, mapping=mapping)
    frames, notes, chosen = [], [], {}
    digest = hashlib.sha256()
    for path in paths:
        name = detect_format(path, max_bytes=max_bytes) if fmt == "auto" else fmt
        chosen[str(path)] = name
        parsed = FORMATS[name].load(path, opts)
        frame = _frame(parsed, path)
        check_unique(frame, str(path))
        frames.append(frame.with_columns(
            pl.lit(suite or parsed.suite or _stem(path)).alias("suite"),
            pl.lit(str(path)).alias("_source"),
        ))
        notes.extend(parsed.warnings)
        _hash_file(path, digest)
    df = pl.concat([results.conform(f).with_columns(f["_source"]) for f in frames], how="vertical")
    if len(frames) > 1:
        _check_across_files(df)
    df = df.drop("_source").with_columns(
        pl.lit(run_id or f"import-{digest.hexdigest()[:12]}").alias("run_id"),
        pl.lit(TIER_COST).alias("tier_cost"),
    )
    return ImportResult(frame=results.conform(df), warnings=notes, formats=chosen)


def import_results(paths: list[Path] | list[str], fmt: str = "auto", *, mapping: dict | None = None,
                   run_id: str | None = None, suite: str | None = None,
                   max_bytes: int = DEFAULT_MAX_BYTES) -> pl.DataFrame:
    """Import other tools' result files as one canonical result table (tier_cost "external").

    Args:
        paths: result files; all go into one run.
        fmt: a registered format name, or "auto" to detect each file from its name and first bytes.
        mapping: canonical column <- source column, for the generic jsonl/csv/parquet formats.
        run_id: defaults to "import-" + the first 12 hex digits of the sha256 of the files' bytes.
        suite: overrides the suite the file names (the file name stem when it names none).
        max_bytes: files above this size are refused before being read.

    Warnings about results the file says are missing are issued as ImportIncompleteWarning;
    use load_results to get them as strings.
    """
    out = load_results(paths, fmt, mapping=mapping, run_id=run_id, suite=suite, max_bytes=max_bytes)
    for note in out.warnings:
        warnings.warn(note, ImportIncompleteWarning, stacklevel=2)
    return out.frame


def _frame(parsed: Parsed, path: Path) -> pl.DataFrame:
    if parsed.frame is not None:
        df = parsed.frame
    else:
        # Keys a row leaves out become nulls of the canonical type.
        schema = {k: v for k, v in results.SCHEMA.items() if k not in ("run_id", "suite", "tier_cost")}
        df = pl.from_dicts(parsed.rows, schema=schema) if parsed.rows else results.empty()
    if df.height == 0:
        raise InputError(path, None, "the file holds no results", "was the run empty or cut short?")
    return df


def _check_across_files(df: pl.DataFrame) -> None:
    per_file = df.group_by(["case_id", "repeat", "scorer"]).agg(pl.col("_source").unique().alias("files"))
    clash = per_file.filter(pl.col("files").list.len() > 1)
    if clash.height:
        row = clash.sort("case_id").row(0, named=True)
        raise InputError(
            " and ".join(sorted(row["files"])), "case_id/repeat/scorer",
            f"case {row['case_id']!r}, repeat {row['repeat']}, scorer {row['scorer']!r} appears in more than one file",
            "import the files as separate runs",
        )


def _head(path: Path) -> bytes:
    head = read_head(path, HEAD_BYTES)
    return head[len(BOM):] if head.startswith(BOM) else head


def _detect_json_by_keys(path: Path, max_bytes: int) -> str | None:
    """Fallback for JSON whose identifying keys are not near the start: parse once and look at the keys."""
    from evalplatform.importers._common import parse_json, read_text

    doc = parse_json(read_text(path, max_bytes), path)
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("results"), dict) and "results" in doc["results"]:
        return "promptfoo"
    if "testCases" in doc or "conversationalTestCases" in doc:
        return "deepeval"
    if isinstance(doc.get("eval"), dict) and "status" in doc:
        return "inspect"
    return None


def _hash_file(path: Path, digest) -> None:
    # The file's own bytes (compressed ones for a .gz): what a user can sha256sum and compare.
    with open_file(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)


def _stem(path: Path) -> str:
    name = path.name[: -len(GZIP_ENDING)] if path.name.lower().endswith(GZIP_ENDING) else path.name
    for ending in sorted({e for f in FORMATS.values() for e in f.extensions}, key=len, reverse=True):
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return Path(name).stem
