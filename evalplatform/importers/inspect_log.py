"""Inspect AI eval logs (JSON log or native `.eval` zip archive) -> canonical rows.

Stated fields: a score `value` that is not C/I/P/N, yes/no/true/false, a boolean or a finite number (or a
dict of those), a non-finite `output.time`, token counts that are not whole numbers >= 0, and an `epoch` that
is not a number >= 1 are bad input (InputError, exit 2, naming the file and field): Inspect never writes
them. A sample with an `error` (any non-empty value, an error object without a message included) is `error`
under every scorer, whatever scores it also carries. A sample without scores is `error` ("not scored").
A run that did not end with status success is imported with a warning naming the samples it never logged.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any, Iterable

from evalplatform.errors import InputError
from evalplatform.importers._common import (
    Parsed,
    check_size,
    clean_error,
    clip_score,
    count,
    decode,
    is_gzip_name,
    number,
    open_file,
    parse_json,
    read_bytes,
    read_head,
    read_text,
    require,
    stable_hash,
    tags_from_metadata,
)
from evalplatform.importers.registry import Format, Options, register

FALLBACK_SCORER = "inspect"
# Inspect's letter grades (CORRECT, INCORRECT, PARTIAL, NOANSWER) as (outcome, score).
LETTERS = {"C": ("pass", 1.0), "I": ("fail", 0.0), "P": ("fail", 0.5), "N": ("fail", 0.0)}
WORDS = {"yes": ("pass", 1.0), "true": ("pass", 1.0), "no": ("fail", 0.0), "false": ("fail", 0.0)}
# A numeric value passes only at full marks: Inspect has no threshold, and accuracy is the mean value.
NUMERIC_THRESHOLD = 1.0


def load_json(path: Path, opts: Options) -> Parsed:
    doc = parse_json(read_text(path, opts.max_bytes), path)
    _check_header(doc, path)
    samples = doc.get("samples") or []
    require(samples, list, path, "samples", "a list")
    return convert(doc, ((f"samples[{i}]", s) for i, s in enumerate(samples)), path)


def load_eval(path: Path, opts: Options) -> Parsed:
    check_size(path, opts.max_bytes)
    # A gzipped archive is inflated (under the cap) first; a plain one is read in place by zipfile.
    source = io.BytesIO(read_bytes(path, opts.max_bytes)) if is_gzip_name(path) else _plain(path)
    try:
        with source, zipfile.ZipFile(source) as zf:
            infos = zf.infolist()
            # The archive is small on disk; what it expands to is what costs memory.
            expanded = sum(i.file_size for i in infos)
            if expanded > opts.max_bytes:
                raise InputError(path, None, f"archive expands to {expanded} bytes, above the import limit "
                                 f"of {opts.max_bytes} bytes", "raise max_bytes if the file is trusted")
            names = {i.filename for i in infos}
            head_name = "header.json" if "header.json" in names else "_journal/start.json"
            if head_name not in names:
                raise InputError(path, "header.json", "not an Inspect .eval archive (no header.json)",
                                 "pass a log written by `inspect eval`")
            doc = _member_json(zf, head_name, path, opts)
            if head_name != "header.json":
                # Only the journal exists while a run is still going or after it crashed.
                doc.setdefault("status", "started")
            _check_header(doc, path)
            members = sorted(n for n in names if n.startswith("samples/") and n.endswith(".json"))
            samples = [(n, _member_json(zf, n, path, opts)) for n in members]
    except zipfile.BadZipFile:
        raise InputError(path, None, "not a readable zip archive (.eval)", "the file may be truncated") from None
    return convert(doc, samples, path)


def _plain(path: Path):
    read_head(path, 4)  # refuses gzip content under a plain name, in words that say gzip
    return open_file(path)


def _member_json(zf: zipfile.ZipFile, name: str, path: Path, opts: Options) -> Any:
    try:
        data = zf.read(name)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputError(path, name, f"cannot read archive member ({exc})", "the file may be truncated") from None
    return parse_json(decode(data, path), path, name)


def _check_header(doc: Any, path: Path) -> None:
    require(doc, dict, path, "<top level>", "an Inspect eval log object")
    if not isinstance(doc.get("eval"), dict) or "status" not in doc:
        raise InputError(path, "eval", "missing the Inspect log header (eval, status)",
                         "is this an Inspect log? choose the format explicitly if not")


def convert(doc: dict, samples: Iterable[tuple[str, Any]], path: Path) -> Parsed:
    ev = doc["eval"]
    declared = _declared_scorers(doc)
    clipped = [0]
    rows: list[dict[str, Any]] = []
    logged: set[tuple[str, int]] = set()
    for at, sample in samples:
        require(sample, dict, path, at, "a sample object")
        if "id" not in sample:
            raise InputError(path, f"{at}.id", "sample has no id")
        epoch = sample.get("epoch", 1)
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise InputError(path, f"{at}.epoch", f"expected an epoch number >= 1, found {epoch!r}")
        case_id = str(sample["id"])
        logged.add((case_id, epoch))
        rows.extend(_sample_rows(sample, case_id, epoch - 1, declared, path, at, clipped))
    warnings = _status_warnings(doc, logged, path)
    if clipped[0]:
        warnings.append(f"{path}: score: {clipped[0]} score(s) outside [0, 1] clipped")
    task = ev.get("task")
    return Parsed(rows=rows, suite=task if isinstance(task, str) else None, warnings=warnings)


def _declared_scorers(doc: dict) -> list[str]:
    names: list[str] = []
    for entry in doc["eval"].get("scorers") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            names.append(entry["name"])
    results = doc.get("results") if isinstance(doc.get("results"), dict) else {}
    for entry in results.get("scores") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"] not in names:
            names.append(entry["name"])
    return names


def _sample_rows(sample: dict, case_id: str, repeat: int, declared: list[str], path: Path, at: str,
                 clipped: list[int]) -> list[dict]:
    output = sample.get("output") if isinstance(sample.get("output"), dict) else {}
    usage = output.get("usage") if isinstance(output.get("usage"), dict) else {}
    seconds = output.get("time", sample.get("working_time"))
    meta = sample.get("metadata")
    base = {
        "case_id": case_id, "repeat": repeat,
        "case_hash": stable_hash({"input": sample.get("input"), "target": sample.get("target")}),
        "tags": tags_from_metadata(meta),
        "output_hash": stable_hash(output["completion"]) if output.get("completion") else None,
        "latency_ms": None if (s := number(seconds, path, f"{at}.output.time")) is None else s * 1000.0,
        "tokens_in": count(usage.get("input_tokens"), path, f"{at}.output.usage.input_tokens"),
        "tokens_out": count(usage.get("output_tokens"), path, f"{at}.output.usage.output_tokens"),
    }
    scores = sample.get("scores") or {}
    require(scores, dict, path, f"{at}.scores", "an object")
    error = sample.get("error")
    # An error object is an error even when it carries no message; only null/false/"" mean "no error".
    if error is not None and error is not False and error != "":
        message = error.get("message") if isinstance(error, dict) else error
        text = clean_error(message) if message else "Inspect recorded an error without a message"
        names = list(scores) or declared or [FALLBACK_SCORER]
        return [dict(base, scorer=n, outcome="error", error=text) for n in names]
    if not scores:
        names = declared or [FALLBACK_SCORER]
        return [dict(base, scorer=n, outcome="error", error="sample was not scored") for n in names]
    rows = []
    for name, score in scores.items():
        require(score, dict, path, f"{at}.scores.{name}", "a score object")
        for scorer, (outcome, value, threshold) in _values(name, score.get("value"), path, f"{at}.scores.{name}.value"):
            rows.append(dict(base, scorer=scorer, outcome=outcome, score=clip_score(value, clipped),
                             threshold=threshold, explanation=score.get("explanation")))
    return rows


def _values(name: str, value: Any, path: Path, field: str) -> list[tuple[str, tuple[str, float | None, float | None]]]:
    """(scorer, (outcome, score, threshold)); a dict-valued score becomes one scorer per key."""
    if isinstance(value, dict):
        out = []
        for key, sub in value.items():
            out.extend(_values(f"{name}/{key}", sub, path, f"{field}.{key}"))
        return out
    return [(name, _map_value(value, path, field))]


def _map_value(value: Any, path: Path, field: str) -> tuple[str, float | None, float | None]:
    if isinstance(value, bool):
        return ("pass", 1.0, None) if value else ("fail", 0.0, None)
    if isinstance(value, (int, float)):
        v = number(value, path, field)
        return ("pass" if v >= NUMERIC_THRESHOLD else "fail", v, NUMERIC_THRESHOLD)
    if isinstance(value, str):
        text = value.strip()
        if text in LETTERS:
            return (*LETTERS[text], None)
        if text.lower() in WORDS:
            return (*WORDS[text.lower()], None)
        try:
            return _map_value(float(text), path, field)
        except ValueError:
            pass
    raise InputError(path, field, f"score value {value!r} is not C/I/P/N, a number or a boolean",
                     "map the scorer's values before importing")


def _status_warnings(doc: dict, logged: set[tuple[str, int]], path: Path) -> list[str]:
    status = doc.get("status")
    if status == "success":
        return []
    ev = doc["eval"]
    dataset = ev.get("dataset") if isinstance(ev.get("dataset"), dict) else {}
    config = ev.get("config") if isinstance(ev.get("config"), dict) else {}
    epochs = config.get("epochs") if isinstance(config.get("epochs"), int) else 1
    ids = dataset.get("sample_ids")
    if isinstance(ids, list) and ids:
        expected = {(str(i), e) for i in ids for e in range(1, epochs + 1)}
        missing = sorted(expected - logged)
        total = len(expected)
    elif isinstance(dataset.get("samples"), int):
        total = dataset["samples"] * epochs
        missing = [("?", 0)] * max(0, total - len(logged))
    else:
        total, missing = None, []
    err = doc.get("error")
    reason = clean_error(err.get("message") if isinstance(err, dict) else err) if err else None
    msg = f"{path}: status: the Inspect run ended with status {status!r}"
    if reason:
        msg += f" ({reason})"
    if missing:
        shown = ", ".join(f"{i}#{e - 1}" for i, e in missing[:5] if i != "?")
        msg += (f"; {len(missing)} of {total} sample-epochs are absent from the log and were not imported"
                + (f" (e.g. {shown})" if shown else "") + "; finish the run with `inspect eval-retry`")
    elif total is None:
        msg += "; the log does not say how many samples were planned, so absent samples cannot be counted"
    return [msg]


_HEAD = re.compile(rb'"eval"\s*:\s*\{')
_VERSION = re.compile(rb'^\s*\{\s*"version"\s*:\s*\d+\s*,\s*"status"')

register(Format("inspect", (".json",), lambda head: bool(_VERSION.search(head) and _HEAD.search(head)), load_json,
                "inspect eval --log-format json / inspect log convert --to json"))
register(Format("inspect-eval", (".eval",), lambda head: head.startswith(b"PK"), load_eval,
                "inspect eval (native .eval archive)"))
