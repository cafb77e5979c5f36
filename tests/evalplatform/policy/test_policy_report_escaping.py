"""Reports carry data from result files (case ids, error texts, file names) into CI: the JUnit XML must stay
well-formed XML 1.0, the Markdown must not turn data into HTML, table cells or @mentions, and a decision that
is not PASS (BLOCK, NO_DATA or any other value) never renders as passed."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from evalplatform.cli import main
from evalplatform.cli.reports import write_reports
from evalplatform.policy.evaluate import Decision, RuleResult
from evalplatform.policy.report import render_json, render_junit, render_markdown, render_table
from tests.evalplatform.importers.builders import inspect_log, inspect_sample, write_json

# Every character XML 1.0 forbids: C0 controls except tab, newline and carriage return; lone surrogates.
FORBIDDEN = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + ["\ud800", "\udfff", "\ufffe", "\uffff"]
HOSTILE = ("<img src=x onerror=alert(1)> <script>alert(1)</script> <details open>x</details> "
           "| broken | cell | @octocat cc @org/team **bold** _it_ [link](https://evil.example) `tick` "
           "![img](https://evil.example/a.png) &lt;b&gt; <!-- hidden --> \\| ~~gone~~ $x^2$")


def _decision(text: str, overall: str = "BLOCK", blocks: bool = True) -> Decision:
    rule = RuleResult(rule_id="floor", metric="pass_rate", severity="blocking", outcome="FAIL" if blocks else "PASS",
                      blocks=blocks, reason=f"case {text} failed",
                      numbers={"estimate": 0.5, "lower": 0.4, "upper": 0.6, "n": 10, "bound": "min",
                               "threshold": 0.8, "note": text})
    advisory = RuleResult(rule_id="slow", metric="p95_latency_ms", severity="advisory", outcome="FAIL", blocks=False,
                          reason=f"advisory {text}", numbers={})
    return Decision(overall, [rule, advisory], policy_name=f"policy {text}", policy_hash="ab" * 32,
                    warnings=[f"{text}", f"- {text}", f"1. {text}", f"# {text}"])


@pytest.mark.parametrize("char", FORBIDDEN, ids=[f"U+{ord(c):04X}" for c in FORBIDDEN])
def test_junit_is_well_formed_for_every_forbidden_character(tmp_path, char):
    text = f"RateLimitError{char}\x1b[31m red \x1b[0m{char}end"
    out = tmp_path / "j.xml"
    write_reports(_decision(text), markdown=None, junit=str(out), json_out=None)
    root = ET.parse(out).getroot()  # expat: strict XML 1.0
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    message = failure.get("message")
    assert "RateLimitError" in message and "end" in message
    assert "[31m" not in message and "\x1b" not in message  # ANSI colouring stripped, not half-kept
    assert not any(c in ET.tostring(root, encoding="unicode") for c in FORBIDDEN)


def test_json_report_survives_the_same_characters(tmp_path):
    out = tmp_path / "d.json"
    text = "".join(FORBIDDEN)
    write_reports(_decision(text), markdown=None, junit=None, json_out=str(out))
    assert json.loads(out.read_text(encoding="utf-8"))["rules"][0]["reason"].startswith("case ")


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.rows: list[int] = []
        self.text_outside_code: list[str] = []
        self._code = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append(0)
        if tag in ("td", "th"):
            self.rows[-1] += 1
        if tag == "code":
            self._code += 1

    def handle_endtag(self, tag):
        if tag == "code":
            self._code -= 1

    def handle_comment(self, data):
        self.tags.append("<!--")

    def handle_data(self, data):
        if not self._code:
            self.text_outside_code.append(data)


# GitHub links @user and @org/team in text (not in code): an @ right after a word character is no mention.
MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9]")
OUR_TAGS = {"h3", "p", "strong", "code", "table", "thead", "tbody", "tr", "th", "td", "ul", "li"}


def _render(markdown: str) -> _Tags:
    # GitHub renders raw HTML in comments, so the check renders it too (html=True) and looks at what came out.
    html = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown)
    parsed = _Tags()
    parsed.feed(html)
    return parsed


@pytest.mark.parametrize("overall", ["BLOCK", "PASS"])
def test_markdown_renders_no_html_no_broken_table_no_mention(overall):
    markdown = render_markdown(_decision(HOSTILE, overall=overall, blocks=overall == "BLOCK"))
    parsed = _render(markdown)
    assert set(parsed.tags) <= OUR_TAGS, set(parsed.tags) - OUR_TAGS
    assert parsed.rows and all(cells == 8 for cells in parsed.rows), parsed.rows
    text = "".join(parsed.text_outside_code)
    assert not MENTION.search(text), MENTION.search(text)
    # The data is still there for a reader, as text.
    assert "<script>alert(1)</script>" in text and "octocat" in text and "| broken |" in text


def test_markdown_of_an_imported_hostile_error_through_the_gate(tmp_path, monkeypatch, capsys):
    """End to end: an Inspect run that stopped with a hostile error message; its text reaches the reports."""
    monkeypatch.chdir(tmp_path)
    message = "\x1b[31mRateLimitError\x1b[0m " + HOSTILE + "\x00\x07\ud800"
    log = inspect_log([inspect_sample("a", 1, "C")], status="error", ids=["a", "b"], error=message)
    results = write_json(tmp_path / "stopped.log.json", log)
    (tmp_path / "policy.yaml").write_text("rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.5}}\n")
    rc = main(["gate", "--no-record", "--results", str(results), "--policy", "policy.yaml",
               "--junit", "j.xml", "--markdown", "m.md", "--json", "d.json"])
    assert rc == 1, capsys.readouterr()
    case = ET.parse(tmp_path / "j.xml").getroot().find("testsuite/testcase/failure")
    assert "RateLimitError" in case.get("message")
    parsed = _render((tmp_path / "m.md").read_text(encoding="utf-8"))
    assert set(parsed.tags) <= OUR_TAGS and all(cells == 8 for cells in parsed.rows)
    assert not MENTION.search("".join(parsed.text_outside_code))
    json.loads((tmp_path / "d.json").read_text(encoding="utf-8"))


def test_terminal_table_strips_control_characters():
    table = render_table(_decision("\x1b[2J\x1b[31mred\x1b[0m\x07"))
    assert "\x1b" not in table and "\x07" not in table and "red" in table


def test_a_decision_with_an_unknown_verdict_cannot_be_made():
    # A verdict other than PASS, BLOCK or NO_DATA is refused when the record is built: a report can never
    # be asked to render one (and a stored one does not load).
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        _decision("x", overall="SOMETHING_NEW", blocks=False)


@pytest.mark.parametrize("overall", ["NO_DATA", "BLOCK"])
def test_a_decision_that_is_not_pass_never_renders_as_passed(overall):
    # No rule blocks, yet the decision is not PASS: the reports must say so, not show a green gate.
    decision = _decision("x", overall=overall, blocks=False)
    assert "decision: PASS" not in render_table(decision)
    assert overall in render_table(decision)
    markdown = render_markdown(decision)
    assert "**PASS**" not in markdown and overall.replace("_", "\\_") in markdown
    root = ET.fromstring(render_junit(decision))
    assert int(root.get("failures")) >= 1
    failing = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert failing and overall in failing[0].find("failure").get("message")
    assert json.loads(render_json(decision))["overall"] == overall


def test_a_pass_decision_still_renders_as_passed():
    decision = _decision("x", overall="PASS", blocks=False)
    assert "decision: PASS" in render_table(decision)
    assert "Gate: **PASS**" in render_markdown(decision)
    assert ET.fromstring(render_junit(decision)).get("failures") == "0"
