"""Deterministic scorers: each decides pass/fail on whole columns and explains its failures."""

from __future__ import annotations

import json

import polars as pl
import pytest
from pydantic import TypeAdapter, ValidationError

from evalplatform.scorers import ScorerSpec
from evalplatform.scorers.safety import luhn_ok
from evalplatform.scorers.text import token_f1

SPEC = TypeAdapter(ScorerSpec)


def run(spec: dict, outputs: list[str], **cols) -> list[float]:
    scorer = SPEC.validate_python({"id": "s", "criterion": "c", **spec})
    frame = pl.DataFrame({"output": outputs, **cols}).with_row_index("__row")
    out = scorer.score(frame)
    assert out.height == len(outputs) and out["__row"].to_list() == list(range(len(outputs)))
    return out["score"].to_list()


def explain(spec: dict, outputs: list[str], **cols) -> list[str | None]:
    scorer = SPEC.validate_python({"id": "s", "criterion": "c", **spec})
    return scorer.score(pl.DataFrame({"output": outputs, **cols}).with_row_index("__row"))["explanation"].to_list()


def test_contains_all_needles_case_insensitive_from_column():
    assert run({"type": "contains", "column": "need"}, ["Paris is the capital", "paris", "Rome"],
               need=[["paris", "CAPITAL"], ["Paris"], ["Paris"]]) == [1.0, 1.0, 0.0]
    assert explain({"type": "contains", "column": "need"}, ["Rome"], need=[["Paris", "France"]]) == [
        "missing: Paris, France"]


def test_contains_literal_and_string_column_and_case_sensitive():
    assert run({"type": "contains", "value": "ok"}, ["OK then", "nope"]) == [1.0, 0.0]
    assert run({"type": "contains", "value": "ok", "case_sensitive": True}, ["OK then", "ok"]) == [0.0, 1.0]
    assert run({"type": "contains", "column": "need"}, ["abc", "xyz"], need=["b", "b"]) == [1.0, 0.0]


def test_not_contains_reports_what_was_found():
    assert run({"type": "not_contains", "value": ["secret", "password"]}, ["all fine", "the Password is"]) == [1.0, 0.0]
    assert explain({"type": "not_contains", "value": ["secret"]}, ["a SECRET"]) == ["forbidden text present: secret"]


def test_needles_treat_regex_characters_literally():
    assert run({"type": "contains", "value": "a.b(c"}, ["xa.b(cx", "axbxc"]) == [1.0, 0.0]


def test_regex_match_and_must_not_match():
    assert run({"type": "regex", "pattern": r"\d{4}-\d{2}-\d{2}"}, ["on 2026-03-24", "on 03/24/2026"]) == [1.0, 0.0]
    assert run({"type": "regex", "pattern": r"\d{1,2}/\d{1,2}/\d{4}", "must_match": False},
               ["on 2026-03-24", "on 03/24/2026"]) == [1.0, 0.0]


@pytest.mark.parametrize("pattern", ["(unclosed", "a{2,1}", "[z-a]", "(?<=x)y"])
def test_invalid_regex_rejected_at_load(pattern):
    with pytest.raises(ValidationError, match="invalid regular expression"):
        SPEC.validate_python({"id": "s", "criterion": "c", "type": "regex", "pattern": pattern})


def test_regex_engine_is_linear_on_backtracking_bait():
    import time

    t0 = time.perf_counter()
    assert run({"type": "regex", "pattern": "(a+)+$"}, ["a" * 50_000 + "!"]) == [0.0]
    assert time.perf_counter() - t0 < 2.0


def test_equals_normalized_and_exact():
    assert run({"type": "equals", "column": "ref"}, ["  Hello, World! ", "hello world?", "bye"],
               ref=["hello world", "Hello World", "hello world"]) == [1.0, 1.0, 0.0]
    assert run({"type": "equals", "column": "ref", "normalize": False}, ["Hello ", "hello"], ref=["Hello", "Hello"]) == [1.0, 0.0]


def test_token_f1_counts_multiplicity():
    assert token_f1("the cat the cat", "the cat") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("", "") == 1.0 and token_f1("a", "") == 0.0
    assert run({"type": "token_f1", "column": "ref", "threshold": 0.5}, ["a b c", "x y"], ref=["a b d", "a b"]) == [
        pytest.approx(2 / 3), 0.0]


def test_length_bounds():
    assert run({"type": "length", "max_chars": 5, "min_words": 2}, ["a b", "abcdef g", "ab"]) == [1.0, 0.0, 0.0]
    with pytest.raises(ValidationError):
        SPEC.validate_python({"id": "s", "criterion": "c", "type": "length"})


def test_json_parses_including_fenced():
    assert run({"type": "json_parses"}, ['{"a": 1}', '```json\n{"a": 1}\n```', "{a: 1}", "sure! {}"]) == [1.0, 1.0, 0.0, 0.0]


def test_json_schema_inline_and_from_column():
    schema = {"type": "object", "required": ["plan"], "properties": {"price": {"type": "number"}}}
    assert run({"type": "json_schema", "schema": schema}, ['{"plan": "pro", "price": 20}', '{"price": "x", "plan": 1}', '{}']) == [1.0, 0.0, 0.0]
    assert explain({"type": "json_schema", "schema": schema}, ['{}'])[0].startswith("schema violation at (root)")
    col = [json.dumps({"required": ["a"]}), json.dumps({"required": ["b"]})]
    assert run({"type": "json_schema", "schema_from_column": "sch"}, ['{"a": 1}', '{"a": 1}'], sch=col) == [1.0, 0.0]


def test_json_schema_invalid_schema_rejected():
    with pytest.raises(ValidationError, match="invalid JSON Schema"):
        SPEC.validate_python({"id": "s", "criterion": "c", "type": "json_schema", "schema": {"type": "nonsense"}})


def test_no_pii_kinds_allowlist_and_luhn():
    outs = ["write to support@nimbus.example", "mail bob@example.com", "call 415-555-0134", "call 415-***-**34",
            "ssn 123-45-6789", "card 4111 1111 1111 1111", "order 1234 5678 9012 3456"]
    assert run({"type": "no_pii", "allow": ["support@nimbus.example"]}, outs) == [1, 0, 0, 1, 0, 0, 1]
    assert luhn_ok("4111111111111111") and not luhn_ok("1234567890123456")
    assert explain({"type": "no_pii"}, ["bob@example.com"]) == ["PII found: email"]


def test_pydantic_model_scorer(tmp_path):
    (tmp_path / "answer_models.py").write_text(
        "from pydantic import BaseModel\nclass Answer(BaseModel):\n    plan: str\n    price: float\n")
    scorer = SPEC.validate_python({"id": "s", "criterion": "c", "type": "pydantic_model", "model": "answer_models:Answer"})
    scorer.check_files(tmp_path, tmp_path / "suite.yaml", "scorers[0]")
    out = scorer.score(pl.DataFrame({"output": ['{"plan": "a", "price": 1}', '{"plan": "a"}', "nope"]}).with_row_index("__row"))
    assert out["score"].to_list() == [1.0, 0.0, 0.0]
    assert "price" in out["explanation"][1]


def test_when_selects_by_tags():
    scorer = SPEC.validate_python({"id": "s", "criterion": "c", "type": "length", "max_chars": 3,
                                   "when": {"tags": ["category:a", "category:b"], "all_tags": ["severity:high"]}})
    frame = pl.DataFrame({"tags": [["category:a", "severity:high"], ["category:b"], ["category:c", "severity:high"]]})
    assert frame.filter(scorer.applies()).height == 1
