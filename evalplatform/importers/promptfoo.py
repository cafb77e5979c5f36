"""Promptfoo results (`promptfoo eval -o results.json` / `.jsonl`) -> canonical rows.

Every field a result row states about its outcome is checked, then the fields are checked against each other:

* Bad input (InputError, exit 2, naming the file and field): `success`, `gradingResult.pass` or a component's
  `pass` that is not true/false; `failureReason` other than 0, 1 or 2; `score`, `gradingResult.score`, a
  component's `score`, `latencyMs` or `cost` that is not a finite number; `gradingResult` that is not an object;
  `componentResults` that is not a list; token counts that are not whole numbers >= 0. Promptfoo never writes
  these, so the file is damaged or hand-edited and no verdict in it can be trusted.
* An `error` case, with the contradiction as its error text, when well-typed fields disagree: `success` against
  `gradingResult.pass`; `success: true` with failureReason 1 or 2; `score` against `gradingResult.score`; a
  failed test none of whose assertions failed (its failure belongs to no scorer row, so importing the rows as
  passes would turn a failed test into a pass); a passed test with a failed top-level assertion, unless the
  test declares a numeric `threshold` (promptfoo then passes on the weighted score), the assertion is
  metric-only, or promptfoo's guardrail rule passed it. Children of an assert-set are judged by their set.
* `results.stats` (successes/failures/errors) must be whole numbers (else bad input) and match the rows; a
  mismatch means rows were lost or edited, and the file imports with a warning that blocks the gate unless the
  policy sets `import_warnings: warn`.
* A row with failureReason 2 (or, in files without failureReason, an `error` and no grading) is an `error`
  under every scorer the test declared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from evalplatform.errors import InputError
from evalplatform.importers._common import (
    Parsed,
    RepeatCounter,
    clean_error,
    clip_score,
    count,
    flag,
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
    parsed = convert(block["results"], path, "results.results", suite)
    note = _stats_disagree(block, path)
    if note:
        parsed.warnings.append(note)
    return parsed


def _stats_disagree(block: dict, path: Path) -> str | None:
    """A warning when `results.stats` (promptfoo's own count) does not match the rows: rows lost or edited."""
    stats = block.get("stats")
    if stats is None:
        return None
    require(stats, dict, path, "results.stats", "an object")
    stated = {k: count(stats.get(k), path, f"results.stats.{k}") for k in ("successes", "failures", "errors")}
    if any(v is None for v in stated.values()):
        return None
    rows = [r for r in block["results"] if isinstance(r, dict)]
    errored = [_errored(r) for r in rows]
    errors = sum(errored)
    successes = sum(1 for r, e in zip(rows, errored) if r.get("success") is True and not e)
    found = {"successes": successes, "failures": len(rows) - successes - errors, "errors": errors}
    if found == stated:
        return None
    return (f"{path}: results.stats says {stated['successes']} passed, {stated['failures']} failed and "
            f"{stated['errors']} errored, but the file holds {found['successes']}, {found['failures']} and "
            f"{found['errors']}; results were lost or edited")


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
    usage = _obj(r, "tokenUsage", path, at)
    response = r.get("response") if isinstance(r.get("response"), dict) else {}
    return {
        "latency_ms": number(r.get("latencyMs", response.get("latencyMs")), path, f"{at}.latencyMs"),
        "tokens_in": count(usage.get("prompt"), path, f"{at}.tokenUsage.prompt"),
        "tokens_out": count(usage.get("completion"), path, f"{at}.tokenUsage.completion"),
        "cost_usd": number(r.get("cost"), path, f"{at}.cost"),
        "cache_hit": response.get("cached") if isinstance(response.get("cached"), bool) else None,
        "output_hash": stable_hash(response["output"]) if "output" in response else None,
    }


def _obj(r: dict, key: str, path: Path, at: str) -> dict:
    value = r.get(key)
    if value is None:
        return {}
    return require(value, dict, path, f"{at}.{key}", "an object")


@dataclass
class _Stated:
    """What one result row says about its outcome, each field type-checked."""

    success: bool | None
    failure_reason: int | None
    score: float | None
    grading: dict | None
    grading_pass: bool | None
    grading_score: float | None
    components: list[dict]


def _stated(r: dict, path: Path, at: str) -> _Stated:
    reason = r.get("failureReason")
    if reason is not None and (isinstance(reason, bool) or reason not in (0, 1, ERROR_REASON)):
        raise InputError(path, f"{at}.failureReason", f"expected 0, 1 or 2, found {reason!r}",
                         "fix the producing tool's output")
    grading = r.get("gradingResult")
    if grading is not None:
        require(grading, dict, path, f"{at}.gradingResult", "an object or null")
    g = grading or {}
    comps = g.get("componentResults")
    if comps is not None:
        require(comps, list, path, f"{at}.gradingResult.componentResults", "a list")
    checked = []
    for j, comp in enumerate(comps or []):
        cat = f"{at}.gradingResult.componentResults[{j}]"
        require(comp, dict, path, cat, "an object")
        if flag(comp.get("pass"), path, f"{cat}.pass") is None:
            raise InputError(path, f"{cat}.pass", "expected true or false, found None",
                             "fix the producing tool's output")
        number(comp.get("score"), path, f"{cat}.score")
        checked.append(comp)
    return _Stated(
        success=flag(r.get("success"), path, f"{at}.success"),
        failure_reason=reason,
        score=number(r.get("score"), path, f"{at}.score"),
        grading=grading,
        grading_pass=flag(g.get("pass"), path, f"{at}.gradingResult.pass"),
        grading_score=number(g.get("score"), path, f"{at}.gradingResult.score"),
        components=checked,
    )


def _errored(r: dict) -> bool:
    # `error` also holds the reason of a plain assertion failure (failureReason 1), so it alone is no signal;
    # files without failureReason mark an errored call by an error and no grading.
    if r.get("failureReason") is not None:
        return r.get("failureReason") == ERROR_REASON
    return bool(r.get("error")) and r.get("gradingResult") is None


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
    st = _stated(r, path, at)
    grading = st.grading
    if _errored(r):
        # An errored call has no grading; it still counts as an error under every scorer the test declared,
        # so a rule that selects one scorer cannot miss it.
        test = r.get("testCase") if isinstance(r.get("testCase"), dict) else {}
        declared = test.get("assert") if isinstance(test.get("assert"), list) else []
        names = _scorer_names(declared) or [(FALLBACK_SCORER, None)]
        text = clean_error(r.get("error")) or "promptfoo reported an error (failureReason 2) without a message"
        return [dict(base, scorer=s, criterion=c, outcome="error", score=None, error=text) for s, c in names]
    if st.components:
        names = _scorer_names([c.get("assertion") for c in st.components])
        rows = [dict(base, scorer=scorer, criterion=criterion, outcome="pass" if comp["pass"] else "fail",
                     score=clip_score(_float(comp.get("score")), clipped), explanation=comp.get("reason"))
                for (scorer, criterion), comp in zip(names, st.components)]
    else:
        passed = st.grading_pass if grading else st.success
        if passed is None:
            raise InputError(path, f"{at}.success", "expected true or false, found None",
                             "fix the producing tool's output")
        score = st.score if st.score is not None else st.grading_score
        rows = [dict(base, scorer=FALLBACK_SCORER, criterion=None, outcome="pass" if passed else "fail",
                     score=clip_score(score, clipped), explanation=grading.get("reason") if grading else None)]
    conflict = _contradiction(r, st)
    if conflict:
        text = f"promptfoo result contradicts itself: {conflict}"
        return [dict(row, outcome="error", score=None, error=text) for row in rows]
    return rows


# promptfoo passes a test whose redteam guardrail blocked the content, whatever its assertions say.
GUARDRAIL_PASS = "Content failed guardrail safety checks"


def _contradiction(r: dict, st: _Stated) -> str | None:
    """Why the row's stated fields disagree, or None when they tell one story."""
    if st.success is not None and st.grading_pass is not None and st.success != st.grading_pass:
        return f"success is {_js(st.success)} but gradingResult.pass is {_js(st.grading_pass)}"
    if st.success and st.failure_reason in (1, ERROR_REASON):
        return f"success is true but failureReason is {st.failure_reason}"
    if st.score is not None and st.grading_score is not None and abs(st.score - st.grading_score) > 1e-9:
        return f"score is {st.score:g} but gradingResult.score is {st.grading_score:g}"
    verdict = st.success if st.success is not None else st.grading_pass
    top = [c for c in _top_level(st.components) if not _metric_only(c)]
    if verdict is None or not top:
        return None
    failed = [c for c in top if not c["pass"]]
    if not verdict and not failed:
        reason = (st.grading or {}).get("reason")
        return ("promptfoo failed the test" + (f" ({reason})" if isinstance(reason, str) and reason else "")
                + " but none of its assertions failed, so no scorer row can carry the failure")
    test = r.get("testCase") if isinstance(r.get("testCase"), dict) else {}
    threshold = test.get("threshold")
    explained = (isinstance(threshold, (int, float)) and not isinstance(threshold, bool)) or \
        (st.grading or {}).get("reason") == GUARDRAIL_PASS
    if verdict and failed and not explained:
        a = failed[0].get("assertion") if isinstance(failed[0].get("assertion"), dict) else {}
        what = a.get("metric") or a.get("type") or "an assertion"
        return f"promptfoo passed the test but its assertion {what!r} failed and the test declares no threshold"
    return None


def _top_level(components: list[dict]) -> list[dict]:
    """Components that decide the test: promptfoo lists an assert-set's results right after the set itself."""
    out, skip = [], 0
    for comp in components:
        if skip:
            skip -= 1
            continue
        out.append(comp)
        kids = comp.get("componentResults")
        if isinstance(kids, list):
            skip = len(kids)
    return out


def _metric_only(comp: dict) -> bool:
    a = comp.get("assertion")
    return isinstance(a, dict) and a.get("metricOnly") is True


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _js(value: bool) -> str:
    return "true" if value else "false"


_JSON_HEAD = re.compile(rb'"(evalId|promptfooVersion)"')
_JSONL_HEAD = re.compile(rb'"(gradingResult|failureReason|testCase)"')

register(Format("promptfoo", (".json",), lambda head: bool(_JSON_HEAD.search(head)), load_json,
                "promptfoo eval -o results.json"))
register(Format("promptfoo-jsonl", (".jsonl",), lambda head: bool(_JSONL_HEAD.search(head.split(b"\n", 1)[0])),
                load_jsonl, "promptfoo eval -o results.jsonl"))
