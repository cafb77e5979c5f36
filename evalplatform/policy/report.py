"""Render a gate decision: a terminal table, Markdown for a PR comment, JUnit XML for CI, and JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from evalplatform.policy.evaluate import Decision, RuleResult


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
    if r.outcome == "PASS":
        return "PASS"
    return f"{r.outcome}{' (blocks)' if r.blocks else ' (does not block)'}"


def render_table(decision: Decision) -> str:
    head = f"{'rule':<30} {'severity':<9} {'outcome':<26} {'estimate':>9} {'bounds':>18} {'threshold':>12} {'n':>7}"
    lines = [head]
    for r in decision.rules:
        lines.append(f"{r.rule_id[:30]:<30} {r.severity:<9} {_mark(r):<26} {_num(r.numbers.get('estimate')):>9} "
                     f"{_bounds(r):>18} {_threshold(r):>12} {_num(r.numbers.get('n')):>7}")
        lines.append(f"    {r.reason}")
    lines.append(f"decision: {_verdict(decision)}  (policy {decision.policy_name}, "
                 f"sha256 {(decision.policy_hash or '?')[:12]})")
    lines += [w for w in decision.warnings if w.startswith("decision: ")]
    return "\n".join(lines)


def _verdict(decision: Decision) -> str:
    """The overall decision in words: only PASS reads as a pass (NO_DATA is not one)."""
    blocked = [r.rule_id for r in decision.rules if r.blocks]
    if decision.overall == "PASS" and not blocked:
        return "PASS"
    if decision.overall == "NO_DATA":
        return "NO_DATA (nothing demonstrated: not a pass)"
    return f"BLOCKED by {', '.join(blocked)}" if blocked else f"{decision.overall} (not a pass)"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(decision: Decision) -> str:
    blocked = [r.rule_id for r in decision.rules if r.blocks]
    word = "PASS" if decision.passed and not blocked else "NO_DATA" if decision.overall == "NO_DATA" else "BLOCKED"
    title = f"Gate: **{word}**"
    lines = [f"### {title} (policy `{_md(decision.policy_name)}`, sha256 `{(decision.policy_hash or '?')[:12]}`)", ""]
    if blocked:
        lines += [f"Blocking: {', '.join(f'`{b}`' for b in blocked)}", ""]
    lines += ["| rule | severity | outcome | estimate | bounds | threshold | n | reason |",
              "|---|---|---|---:|---|---|---:|---|"]
    for r in decision.rules:
        lines.append(f"| `{_md(r.rule_id)}` | {r.severity} | {_md(_mark(r))} | {_num(r.numbers.get('estimate'))} | "
                     f"{_bounds(r)} | {_md(_threshold(r))} | {_num(r.numbers.get('n'))} | {_md(r.reason)} |")
    if decision.warnings:
        lines += ["", "Warnings:", *[f"- {_md(w)}" for w in decision.warnings]]
    return "\n".join(lines) + "\n"


def render_junit(decision: Decision) -> str:
    """One testcase per rule: failure when it blocks, skipped when an advisory rule does not pass."""
    failures = sum(r.blocks for r in decision.rules)
    skipped = sum(1 for r in decision.rules if not r.blocks and r.outcome != "PASS")
    # A decision that is not a pass with no rule to blame (an advisory_only policy) still fails the suite.
    unblamed = not decision.passed and failures == 0
    failures += unblamed
    tests = len(decision.rules) + unblamed
    suite = ET.Element("testsuite", name=f"evalplatform gate: {decision.policy_name}",
                       tests=str(tests), failures=str(failures), errors="0", skipped=str(skipped))
    if unblamed:
        case = ET.SubElement(suite, "testcase", classname=f"policy.{decision.policy_name}", name="decision")
        ET.SubElement(case, "failure", message=_verdict(decision), type=decision.overall)
    for r in decision.rules:
        case = ET.SubElement(suite, "testcase", classname=f"policy.{decision.policy_name}", name=r.rule_id)
        if r.blocks:
            node = ET.SubElement(case, "failure", message=f"{r.outcome}: {r.reason}", type=r.outcome)
            node.text = json.dumps(r.numbers, sort_keys=True)
        elif r.outcome != "PASS":
            ET.SubElement(case, "skipped", message=f"{r.outcome} ({r.severity}, does not block): {r.reason}")
        out = ET.SubElement(case, "system-out")
        out.text = f"{r.outcome}: {r.reason}\n{json.dumps(r.numbers, sort_keys=True)}"
    root = ET.Element("testsuites", name="evalplatform gate", tests=str(tests), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_json(decision: Decision, extra: dict[str, Any] | None = None) -> str:
    return json.dumps({**decision.to_dict(), **(extra or {})}, indent=2, sort_keys=True, default=str) + "\n"
