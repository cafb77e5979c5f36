"""JUnit XML (promptfoo `*.junit.xml`, pytest `--junitxml`, any CI test report) -> canonical rows.

A testcase's outcome is its first child of <error> (error), <failure> (fail) or <skipped> (skipped), else pass.
Stated numbers: a testcase `time` that is not a finite number >= 0, and a testsuite `tests`/`failures`/`errors`/
`skipped` count that is not a whole number >= 0, are bad input (InputError, exit 2, naming the file and
attribute). A testsuite that states more failures or errors than its testcases carry has lost results (a
suite that failed to run, a truncated report): the file imports with a warning, which blocks the gate unless
the policy sets `import_warnings: warn`.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from evalplatform.errors import InputError
from evalplatform.importers._common import Parsed, clean_error, read_text
from evalplatform.importers.registry import Format, Options, register

SCORER = "junit"
# Entity declarations are how XML bombs expand (billion laughs, external entities); reports never need them.
_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def load(path: Path, opts: Options) -> Parsed:
    text = read_text(path, opts.max_bytes)
    m = _DECLARATION.search(text)
    if m:
        raise InputError(path, m.group(1).upper(), "DOCTYPE/ENTITY declarations are not accepted in JUnit XML",
                         "remove the declaration; test reports do not need one")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, col = exc.position
        raise InputError(path, f"line {line} column {col + 1}", f"malformed XML ({str(exc).split(':')[0]})",
                         "the file may be truncated; re-export it") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise InputError(path, "<root>", f"expected <testsuites> or <testsuite>, found <{root.tag}>",
                         "is this a JUnit report?")
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    rows = []
    for case in root.iter("testcase"):
        name = case.get("name")
        if not name:
            raise InputError(path, "testcase@name", "a <testcase> has no name")
        classname = case.get("classname")
        outcome, error, explanation = _outcome(case)
        rows.append({
            "case_id": f"{classname}::{name}" if classname else name,
            "repeat": 0, "scorer": SCORER, "outcome": outcome, "error": error, "explanation": explanation,
            "latency_ms": _seconds_ms(case.get("time"), path),
        })
    names = [s.get("name") for s in suites if s.get("name")]
    suite = names[0] if len(set(names)) == 1 else root.get("name")
    warnings = [w for s in (suites or [root]) if (w := _count_warning(s, path))]
    return Parsed(rows=rows, suite=suite, warnings=warnings)


def _count(el: ET.Element, attr: str, path: Path) -> int | None:
    raw = el.get(attr)
    if raw in (None, ""):
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise InputError(path, f"{el.tag}@{attr}", f"expected a whole number >= 0, found {raw!r}",
                         "fix the producing tool's output")
    return value


def _count_warning(suite: ET.Element, path: Path) -> str | None:
    """A warning when the suite's stated failure/error counts exceed what its testcases carry."""
    stated = {a: _count(suite, a, path) for a in ("tests", "failures", "errors", "skipped")}
    cases = list(suite.iter("testcase"))
    found = {"failures": sum(c.find("failure") is not None for c in cases),
             "errors": sum(c.find("error") is not None for c in cases)}
    short = [a for a in ("failures", "errors") if stated[a] is not None and stated[a] > found[a]]
    if not short:
        return None
    name = suite.get("name") or suite.tag
    return (f"{path}: testsuite {name!r} states {stated['failures'] or 0} failure(s) and {stated['errors'] or 0} "
            f"error(s) but its testcases carry {found['failures']} and {found['errors']}; results are missing "
            "(a suite that failed to run, or a truncated report)")


def _outcome(case: ET.Element) -> tuple[str, str | None, str | None]:
    for tag, outcome in (("error", "error"), ("failure", "fail"), ("skipped", "skipped")):
        el = case.find(tag)
        if el is not None:
            detail = " ".join(filter(None, [el.get("message"), (el.text or "").strip()])) or None
            if outcome == "error":
                return outcome, clean_error(detail) or "error", None
            return outcome, None, detail
    return "pass", None, None


def _seconds_ms(value: str | None, path: Path) -> float | None:
    if value in (None, ""):
        return None
    try:
        seconds = float(value.replace(",", ""))
    except ValueError:
        raise InputError(path, "testcase@time", f"expected seconds, found {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError(path, "testcase@time", f"expected a finite number of seconds >= 0, found {value!r}",
                         "fix the producing tool's output")
    return seconds * 1000.0


register(Format("junit", (".xml",), lambda head: b"<testsuite" in head, load, "JUnit XML test report"))
