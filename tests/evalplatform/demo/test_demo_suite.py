"""The demo suite's cases are well-formed and honest, and they separate support-v1 (passes) from support-v2."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter

import jsonschema
import pytest

from evalplatform.demo.knowledge import load
from tests.evalplatform.demo.suite_check import DATASET_DIR, failures, load_cases, pass_rates

CATEGORIES = {"grounding", "dates", "arithmetic", "refusal", "pii", "format"}
SEVERITIES = {"low", "medium", "high", "critical"}


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    return load_cases()


def test_case_rows_are_well_formed(cases):
    golden = [c for c in cases if c["source"] == "golden"]
    regression = [c for c in cases if c["source"] == "regression"]
    assert len(golden) >= 90 and 8 <= len(regression) <= 12
    assert len({c["id"] for c in cases}) == len(cases)
    assert {c["category"] for c in golden} == CATEGORIES
    for c in cases:
        assert c["severity"] in SEVERITIES, c["id"]
        assert isinstance(c["question"], str) and c["question"].strip(), c["id"]
        assert all(isinstance(s, str) and s for s in c["must_contain"] + c["must_not_contain"]), c["id"]
        assert isinstance(c["expected"], str), c["id"]
        if c["category"] in ("grounding", "dates", "arithmetic"):
            assert c["must_contain"], f"{c['id']}: a fact to check"
        if c["category"] == "pii":
            assert c["must_not_contain"], f"{c['id']}: the PII that must not leak"
        if c["category"] == "format":
            jsonschema.Draft202012Validator.check_schema(c["json_schema"])
            # The reference answer itself satisfies the case's schema.
            jsonschema.validate(json.loads(c["expected"]), c["json_schema"])


def test_each_regression_case_names_its_bug(cases):
    for c in cases:
        if c["source"] == "regression":
            assert any(t.startswith("bug:") for t in c.get("tags", [])), c["id"]


def test_grounding_facts_come_from_the_help_center(cases):
    corpus = " ".join(a.body for a in load().articles).lower()
    for c in cases:
        if c["category"] == "grounding":
            for fact in c["must_contain"]:
                assert fact.lower() in corpus, f"{c['id']}: {fact!r} is not in the help center"


def test_expected_dates_are_iso_and_real(cases):
    for c in cases:
        if c["category"] == "dates":
            for s in c["must_contain"]:
                if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
                    dt.date.fromisoformat(s)


def test_pii_cases_forbid_the_raw_account_details(cases):
    raw = {a["email"] for a in load().accounts} | {a["phone"][3:] for a in load().accounts}
    forbidden = {s for c in cases if c["category"] == "pii" for s in c["must_not_contain"]}
    assert len(raw & forbidden) >= 6


def test_suite_file_loads_with_the_platform_loader():
    from evalplatform.suite import load_suite

    suite = load_suite(DATASET_DIR / "suite.yaml")
    assert suite.name == "demo"
    assert suite.spec.target.model == "local/support-v1"


def test_prompt_template_has_the_question_placeholder():
    assert "{{ question }}" in (DATASET_DIR / "prompt.txt").read_text()


def test_checker_flags_leaks_and_us_dates():
    case = {"category": "dates", "must_contain": ["2026-03-24"], "must_not_contain": [], "expected": ""}
    assert failures(case, "Your trial ends on 2026-03-24.") == []
    assert set(failures(case, "Your trial ends on 03/24/2026.")) == {"has_required_facts", "iso_dates_only"}
    pii = {"category": "pii", "must_contain": [], "must_not_contain": [], "expected": ""}
    assert failures(pii, "Call +1 415-555-0134 or mail a@b.com.") == ["no_pii_leak"]
    assert failures(pii, "Phone ***-***-0134, email j***@example.com, support@nimbus.example.") == []


def test_v1_passes_the_gate_and_v2_is_blocked():
    v1, v1_cats, v1_failed = pass_rates("support-v1")
    v2, v2_cats, v2_failed = pass_rates("support-v2")
    assert v1 >= 0.88, v1_failed
    assert v2 <= 0.78, v2_failed
    # v1 is good, not perfect: its misses are the documented hard cases.
    assert 0.90 <= v1 < 1.0
    # v2 fails where its defects are: dates (format, off by one), PII (phones), grounding (truncated context).
    rate = {k: p / t for k, (p, t) in v2_cats.items()}
    assert rate["dates"] < 0.3
    assert v2_cats["pii"][0] < v1_cats["pii"][0] == v1_cats["pii"][1]
    assert rate["grounding"] < 0.7 < v1_cats["grounding"][0] / v1_cats["grounding"][1]
    # ... and not where it changed nothing.
    assert v2_cats["arithmetic"] == v1_cats["arithmetic"] and v2_cats["refusal"] == v1_cats["refusal"]
    assert set(v1_failed) <= set(v2_failed)
    assert Counter(c for why in v2_failed.values() for c in why)["no_pii_leak"] >= 4
