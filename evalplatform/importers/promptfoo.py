"""Promptfoo results (`promptfoo eval -o results.json` / `.jsonl`) -> canonical rows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from evalplatform.errors import InputError
from evalplatform.importers._common import (
    Parsed,
    RepeatCounter,
    clean_error,
    clip_score,
    number,
    parse_json,
    parse_jsonl,
    read_text,
    require,
    stable_hash,
    tags_from_metadata,
)
from evalplatform.importers.registry import Format, Options, register

FALLBACK_SCORER = "promptfoo"
# failureReason as promptfoo writes it: 0 pass, 1 assertion failure, 2 error.
ERROR_REASON = 2


def load_json(path: Path, opts: Options) -> Parsed:
    doc = parse_json(read_text(path, opts.max_bytes), path)
    require(doc, dict, path, "<top level>", "a promptfoo results object")
    block = doc.get("results")
    if not isinstance(block, dict) or not isinstance(block.get("results"), list):
        raise InputError(path, "results.results", "missing the promptfoo results array",
                         "is this a promptfoo `-o results.json` file? choose the format explicitly if not")
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    suite = config.get("description") if isinstance(config.get("description"), str) else None
    return convert(block["results"], path, "results.results", suite)


def load_jsonl(path: Path, opts: Options) -> Parsed:
    records = parse_jsonl(read_text(path, opts.max_bytes), path)
    return convert(records, path, "line", None)


def convert(results: Iterable[Any], path: Path, where: str, suite: str | None) -> Parsed:
    results = list(results)
    for i, r in enumerate(results):
        if not isinstance(r, dict) or not ("success" in r or "error" in r or "gradingResult" in r):
            raise InputError(path, _at(where, i), "not a promptfoo result row (no success/error/gradingResult)",
                             "is this a promptfoo results file?")
    targets = {_target(r) for r in results}
    keys = [_identity(r, len(targets) > 1) for r in results]
    # A description names a case only if it maps to one identity; otherwise the hash keeps cases apart.
    owners: dict[str, set[str]] = {}
    for (desc, key, _) in keys:
        if desc is not None:
            owners.setdefault(desc, set()).add(key)
    repeats = RepeatCounter()
    clipped = [0]
    rows: list[dict[str, Any]] = []
    for i, (r, (desc, key, case_hash)) in enumerate(zip(results, keys)):
        if desc is not None and len(owners[desc]) == 1:
            case_id = desc
        elif desc is not None:
            case_id = f"{desc}#{key[:8]}"
        else:
            case_id = f"pf-{key[:12]}"
        base = _call_columns(r, path, _at(where, i))
        base.update(case_id=case_id, repeat=repeats.next(key), case_hash=case_hash,
                    tags=_tags(r, len(targets) > 1))
        rows.extend(_scorer_rows(r, base, path, _at(where, i), clipped))
    warnings = []
    if clipped[0]:
        warnings.append(f"{path}: score: {clipped[0]} score(s) outside [0, 1] clipped")
    return Parsed(rows=rows, suite=suite, warnings=warnings)


def _at(where: str, i: int) -> str:
    return f"line {i + 1}" if where == "line" else f"{where}[{i}]"


def _target(r: dict) -> tuple[str, str]:
    provider = r.get("provider")
    pid = provider.get("label") or provider.get("id") if isinstance(provider, dict) else provider
    return (str(pid or ""), str(r.get("promptId") or r.get("promptIdx") or ""))


def _identity(r: dict, several_targets: bool) -> tuple[str | None, str, str]:
    """(description, identity hash, content hash). Not testIdx: `--repeat` gives each repeat a new one."""
    test = r.get("testCase") if isinstance(r.get("testCase"), dict) else {}
    desc = test.get("description") if isinstance(test.get("description"), str) else None
    vars_ = test.get("vars", r.get("vars")) or {}
    content = stable_hash({"vars": vars_})
    ident = {"description": desc, "vars": vars_}
    if several_targets:
        ident["target"] = _target(r)
    key = stable_hash(ident)
    if desc is not None and several_targets:
        desc = f"{desc}@{_target(r)[0]}" + (f"/{r.get('promptIdx')}" if r.get("promptIdx") not in (None, 0) else "")
    return desc, key, content


def _tags(r: dict, several_targets: bool) -> list[str]:
    test = r.get("testCase") if isinstance(r.get("testCase"), dict) else {}
    tags = tags_from_metadata(test.get("metadata"))
    if several_targets:
        tags.append(f"provider:{_target(r)[0]}")
    return tags


def _call_columns(r: dict, path: Path, at: str) -> dict[str, Any]:
    usage = r.get("tokenUsage") if isinstance(r.get("tokenUsage"), dict) else {}
    response = r.get("response") if isinstance(r.get("response"), dict) else {}
    return {
        "latency_ms": number(r.get("latencyMs", response.get("latencyMs")), path, f"{at}.latencyMs"),
        "tokens_in": _int(usage.get("prompt")),
        "tokens_out": _int(usage.get("completion")),
        "cost_usd": number(r.get("cost"), path, f"{at}.cost"),
        "cache_hit": response.get("cached") if isinstance(response.get("cached"), bool) else None,
        "output_hash": stable_hash(response["output"]) if "output" in response else None,
    }


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _is_error(r: dict) -> bool:
    # `error` also holds the reason of a plain assertion failure (failureReason 1), so it alone is no signal;
    # files without failureReason mark an errored call by an error and no grading.
    reason = r.get("failureReason")
    if reason is not None:
        return reason == ERROR_REASON
    return bool(r.get("error")) and not isinstance(r.get("gradingResult"), dict)


def _scorer_names(assertions: list[Any]) -> list[tuple[str, str | None]]:
    """(scorer, criterion) per assertion: the metric name when set, else the assertion type, numbered if repeated."""
    names: list[tuple[str, str | None]] = []
    seen: dict[str, int] = {}
    for a in assertions:
        a = a if isinstance(a, dict) else {}
        metric = a.get("metric") if isinstance(a.get("metric"), str) else None
        name = metric or str(a.get("type") or "assertion")
        seen[name] = seen.get(name, 0) + 1
        names.append((name if seen[name] == 1 else f"{name}#{seen[name]}", metric))
    return names


def _scorer_rows(r: dict, base: dict, path: Path, at: str, clipped: list[int]) -> list[dict[str, Any]]:
    grading = r.get("gradingResult") if isinstance(r.get("gradingResult"), dict) else None
    if _is_error(r):
        # An errored call has no grading; it still counts as an error under every scorer the test declared,
        # so a rule that selects one scorer cannot miss it.
        test = r.get("testCase") if isinstance(r.get("testCase"), dict) else {}
        declared = test.get("assert") if isinstance(test.get("assert"), list) else []
        names = _scorer_names(declared) or [(FALLBACK_SCORER, None)]
        text = clean_error(r.get("error")) or "promptfoo reported an error (failureReason 2) without a message"
        return [dict(base, scorer=s, criterion=c, outcome="error", score=None, error=text) for s, c in names]
    components = grading.get("componentResults") if grading else None
    if isinstance(components, list) and components:
        names = _scorer_names([c.get("assertion") if isinstance(c, dict) else None for c in components])
        rows = []
        for j, ((scorer, criterion), comp) in enumerate(zip(names, components)):
            comp = require(comp, dict, path, f"{at}.gradingResult.componentResults[{j}]", "an object")
            score = number(comp.get("score"), path, f"{at}.gradingResult.componentResults[{j}].score")
            rows.append(dict(base, scorer=scorer, criterion=criterion,
                             outcome=_verdict(comp.get("pass"), path, f"{at}.gradingResult.componentResults[{j}].pass"),
                             score=clip_score(score, clipped), explanation=comp.get("reason")))
        return rows
    passed = grading.get("pass") if grading else r.get("success")
    score = number(r.get("score", grading.get("score") if grading else None), path, f"{at}.score")
    return [dict(base, scorer=FALLBACK_SCORER, criterion=None, outcome=_verdict(passed, path, f"{at}.success"),
                 score=clip_score(score, clipped), explanation=grading.get("reason") if grading else None)]


def _verdict(value: Any, path: Path, field_name: str) -> str:
    if isinstance(value, bool):
        return "pass" if value else "fail"
    raise InputError(path, field_name, f"expected true or false, found {value!r}")


_JSON_HEAD = re.compile(rb'"(evalId|promptfooVersion)"')
_JSONL_HEAD = re.compile(rb'"(gradingResult|failureReason|testCase)"')

register(Format("promptfoo", (".json",), lambda head: bool(_JSON_HEAD.search(head)), load_json,
                "promptfoo eval -o results.json"))
register(Format("promptfoo-jsonl", (".jsonl",), lambda head: bool(_JSONL_HEAD.search(head.split(b"\n", 1)[0])),
                load_jsonl, "promptfoo eval -o results.jsonl"))
