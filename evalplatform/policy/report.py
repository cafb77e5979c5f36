"""Render a gate decision: a terminal table, Markdown for a PR comment, JUnit XML for CI, and JSON.

Reports carry text from result files (case ids, error messages, file names) into terminals, CI pages and PR
comments, so every piece of text goes through one of two filters: `_plain` for terminals and XML (colour codes
stripped; other control characters, lone surrogates and U+FFFE/U+FFFF, which XML 1.0 forbids, shown as
escapes) and `_md` (also Markdown and HTML punctuation escaped, @mentions neutralised). Only a decision whose overall
value is exactly PASS renders as passed; BLOCK, NO_DATA or any other value renders as not passed.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from evalplatform.policy.evaluate import Decision, RuleResult


PASS = "PASS"
# Terminal escape sequences (colour, cursor, title): stripped whole, as they carry no text.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
# What neither XML 1.0 nor UTF-8 output can hold (besides the controls above).
_NON_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")
# Characters that start Markdown or HTML markup inside a line; each is backslash-escaped.
_MD_PUNCT = re.compile(r"([\\`*_\[\]<>|!#~&$])")
# A list marker at the start of a list item's text would open a nested list.
_LIST_START = re.compile(r"^(\d{1,9})([.)])(?=\s|$)|^([-+])(?=\s|$)")
# GitHub links @user and @org/team; a zero-width space after the @ leaves the text readable and inert.
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")


def _escape_char(m: re.Match) -> str:
    c = m.group(0)
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def _plain(text: Any) -> str:
    """One line for a terminal or XML: colour codes dropped; other control characters, lone surrogates and
    U+FFFE/U+FFFF (which neither UTF-8 output nor XML 1.0 can carry) visible as escapes."""
    s = _ANSI.sub("", str(text)).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return _NON_XML.sub(_escape_char, _CONTROL.sub(_escape_char, s))


_xml = _plain


def _md(text: Any) -> str:
    """Text for a Markdown table cell or list item: shows as written, never as markup, HTML or a mention."""
    s = _xml(text).strip()
    s = _MD_PUNCT.sub(r"\\\1", s)
    s = _LIST_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}" if m.group(1) else f"\\{m.group(3)}", s)
    return _MENTION.sub("@\u200b", s)


def _code(text: Any) -> str:
    """An identifier in a code span when it is plain; anything else as escaped text."""
    s = _xml(text)
    return f"`{s}`" if re.fullmatch(r"[A-Za-z0-9_.:/ -]+", s) and "@" not in s else _md(s)


def _verdict(decision: Decision) -> str:
    """How the decision reads in every report: PASS only when it is exactly PASS."""
    overall = str(decision.overall)
    blocked = [r.rule_id for r in decision.rules if r.blocks]
    if overall == PASS and not blocked:
        return PASS
    if overall == "BLOCK" or (overall == PASS and blocked):
        return f"BLOCKED by {', '.join(blocked)}" if blocked else "BLOCKED"
    return f"{overall} (not passed)" + (f", blocked by {', '.join(blocked)}" if blocked else "")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 10 else f"{value:.3f}"
    return str(value)


def _bounds(r: RuleResult) -> str:
    lo, hi = r.numbers.get("lower"), r.numbers.get("upper")
    return "-" if lo is None or hi is None else f"[{_num(lo)}, {_num(hi)}]"


def _threshold(r: RuleResult) -> str:
    kind, value = r.numbers.get("bound"), r.numbers.get("threshold")
    symbol = {"min": ">=", "max": "<=", "max_drop": "drop <=", "max_increase": "rise <="}.get(kind, "")
    if kind in ("max_drop", "max_increase") and r.metric in ("p95_latency_ms", "cost_per_case"):
        return f"<= {_num(value)}"
    if kind in ("max_drop", "max_increase"):
        return f"{symbol} {_num(r.numbers.get('margin', abs(value) if value is not None else None))}"
    return f"{symbol} {_num(value)}"


def _mark(r: RuleResult) -> str:
    if r.outcome == PASS:
        return "PASS"
    return f"{r.outcome}{' (blocks)' if r.blocks else ' (does not block)'}"


def _looks(decision: Decision) -> list[str]:
    """The evidence an undecided rule bought before the decision (adaptive extension), one line per look."""
    adaptive = (decision.inputs or {}).get("adaptive") or {}
    lines = []
    for look in adaptive.get("looks", []):
        if "stopped" in look:
            lines.append(str(look["stopped"]))
            continue
        cases = look.get("cases_added") or []
        added = f"+{len(cases)} cases" if cases else f"+{look.get('runs_added', 0)} runs"
        rules = "; ".join(f"{rid} {v.get('outcome')} [{_num(v.get('lower'))}, {_num(v.get('upper'))}] at "
                          f"{float(v.get('confidence') or 0):.2%} on n={_num(v.get('n'))}"
                          for rid, v in (look.get("rules") or {}).items())
        lines.append(f"look {look.get('look')}: {added}"
                     + (f", ${float(look['cost_usd']):.4f}" if look.get("cost_usd") else "") + f": {rules}")
    return lines


def render_table(decision: Decision) -> str:
    head = f"{'rule':<30} {'severity':<9} {'outcome':<26} {'estimate':>9} {'bounds':>18} {'threshold':>12} {'n':>7}"
    lines = [head]
    for r in decision.rules:
        lines.append(f"{_plain(r.rule_id)[:30]:<30} {_plain(r.severity):<9} {_plain(_mark(r)):<26} "
                     f"{_num(r.numbers.get('estimate')):>9} {_bounds(r):>18} {_plain(_threshold(r)):>12} "
                     f"{_num(r.numbers.get('n')):>7}")
        lines.append(f"    {_plain(r.reason)}")
    lines += [f"evidence added: {_plain(line)}" for line in _looks(decision)]
    # The plan's warnings (a rule whose false-block risk at this size is over 5%), made before the run.
    lines += [f"warning: {_plain(w)}" for w in decision.warnings if w.startswith("plan: ")]
    lines.append(f"decision: {_plain(_verdict(decision))}  (policy {_plain(decision.policy_name)}, "
                 f"sha256 {(decision.policy_hash or '?')[:12]})")
    # allow_empty / advisory_only notes: printed with the decision they qualify.
    lines += [_plain(w) for w in decision.warnings if w.startswith("decision: ")]
    return "\n".join(lines)


def render_markdown(decision: Decision) -> str:
    verdict = _verdict(decision)
    blocked = [r.rule_id for r in decision.rules if r.blocks]
    if verdict == PASS:
        title = "Gate: **PASS**"
    elif verdict.startswith("BLOCKED"):
        title = "Gate: **BLOCKED**"
    else:
        title = f"Gate: **{_md(decision.overall)}** (not passed)"
    lines = [f"### {title} (policy {_code(decision.policy_name)}, sha256 `{_xml(decision.policy_hash or '?')[:12]}`)",
             ""]
    if blocked:
        lines += [f"Blocking: {', '.join(_code(b) for b in blocked)}", ""]
    lines += ["| rule | severity | outcome | estimate | bounds | threshold | n | reason |",
              "|---|---|---|---:|---|---|---:|---|"]
    for r in decision.rules:
        lines.append(f"| {_code(r.rule_id)} | {_md(r.severity)} | {_md(_mark(r))} | "
                     f"{_num(r.numbers.get('estimate'))} | {_md(_bounds(r))} | {_md(_threshold(r))} | "
                     f"{_md(_num(r.numbers.get('n')))} | {_md(r.reason)} |")
    looks = _looks(decision)
    if looks:
        lines += ["", "Evidence added before deciding (undecided blocking rules, adaptive:):",
                  *[f"- {_md(line)}" for line in looks]]
    if decision.warnings:
        lines += ["", "Warnings:", *[f"- {_md(w)}" for w in decision.warnings]]
    return "\n".join(lines) + "\n"


def render_junit(decision: Decision) -> str:
    """One testcase per rule: failure when it blocks, skipped when an advisory rule does not pass.

    A decision that is not PASS although no rule blocks (NO_DATA, a failed run) adds one failing testcase
    `decision`, so CI never shows it green.
    """
    verdict = _verdict(decision)
    unexplained = verdict != PASS and not any(r.blocks for r in decision.rules)
    failures = sum(r.blocks for r in decision.rules) + unexplained
    skipped = sum(1 for r in decision.rules if not r.blocks and r.outcome != PASS)
    tests = len(decision.rules) + unexplained
    name = _xml(decision.policy_name)
    suite = ET.Element("testsuite", name=f"evalplatform gate: {name}", tests=str(tests), failures=str(failures),
                       errors="0", skipped=str(skipped))
    for r in decision.rules:
        case = ET.SubElement(suite, "testcase", classname=f"policy.{name}", name=_xml(r.rule_id))
        numbers = json.dumps(r.numbers, sort_keys=True, default=str)  # ASCII: json escapes the rest
        if r.blocks:
            node = ET.SubElement(case, "failure", message=_xml(f"{r.outcome}: {r.reason}"), type=_xml(r.outcome))
            node.text = numbers
        elif r.outcome != PASS:
            ET.SubElement(case, "skipped", message=_xml(f"{r.outcome} ({r.severity}, does not block): {r.reason}"))
        out = ET.SubElement(case, "system-out")
        out.text = f"{_xml(r.outcome)}: {_xml(r.reason)}\n{numbers}"
    if unexplained:
        case = ET.SubElement(suite, "testcase", classname=f"policy.{name}", name="decision")
        ET.SubElement(case, "failure", message=_xml(f"decision {verdict}"), type=_xml(decision.overall))
    root = ET.Element("testsuites", name="evalplatform gate", tests=str(tests), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_json(decision: Decision, extra: dict[str, Any] | None = None) -> str:
    return json.dumps({**decision.to_dict(), **(extra or {})}, indent=2, sort_keys=True, default=str) + "\n"


# Why a command that was asked for reports ended without a decision, in the words of its exit code.
FAILURE_KINDS = {2: "bad input", 3: "infrastructure failure"}


def _failure_kind(code: int) -> str:
    return FAILURE_KINDS.get(code, "failure")


def render_failure_markdown(code: int, message: str, command: str) -> str:
    """The PR comment for a command that stopped before a decision (exit 2 or 3)."""
    return (f"### Gate: **ERROR** (exit {code}: {_failure_kind(code)})\n\n"
            f"`evalplatform {_plain(command)}` stopped before reaching a decision:\n\n"
            f"> {_md(message)}\n\nNothing was judged; fix the error and run again.\n")


def render_failure_junit(code: int, message: str, command: str) -> str:
    """One failing testcase, so CI shows the run red with the reason."""
    kind = _failure_kind(code)
    suite = ET.Element("testsuite", name=f"evalplatform {_xml(command)}", tests="1", failures="1", errors="0",
                       skipped="0")
    case = ET.SubElement(suite, "testcase", classname=f"evalplatform.{_xml(command)}", name="decision")
    node = ET.SubElement(case, "failure", message=_xml(f"exit {code} ({kind}): {message}"), type=kind)
    node.text = _xml(message)
    root = ET.Element("testsuites", name=f"evalplatform {_xml(command)}", tests="1", failures="1")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_failure_json(code: int, message: str, command: str) -> str:
    return json.dumps({"overall": "ERROR", "exit_code": code, "kind": _failure_kind(code), "error": message,
                       "command": command, "rules": []}, indent=2, sort_keys=True) + "\n"
