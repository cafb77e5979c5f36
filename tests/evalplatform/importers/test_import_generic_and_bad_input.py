"""Plain tables import through a column mapping; bad files fail closed with one line naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from evalplatform.errors import InputError
from evalplatform.importers import detect_format, import_results
from tests.evalplatform.importers.builders import (
    FIXTURES,
    deepeval_case,
    inspect_log,
    inspect_sample,
    promptfoo_doc,
    promptfoo_row,
    write_json,
)

MAPPING = {"case_id": "id", "outcome": "status", "score": "score"}


def test_generic_jsonl_csv_parquet_with_mapping(tmp_path):
    rows = [{"id": "a", "status": "PASSED", "score": 0.9}, {"id": "b", "status": "failed", "score": 0.1},
            {"id": "c", "status": "errored", "score": None}, {"id": "d", "status": "skip", "score": None}]
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows))
    csv = tmp_path / "r.csv"
    pl.DataFrame(rows).write_csv(csv)
    pq = tmp_path / "r.parquet"
    pl.DataFrame(rows).write_parquet(pq)
    for path in (jsonl, csv, pq):
        df = import_results([path], mapping=MAPPING)
        assert df.select("case_id", "outcome", "score").rows() == [
            ("a", "pass", 0.9), ("b", "fail", 0.1), ("c", "error", None), ("d", "skipped", None)], path.name
        assert set(df["scorer"]) == {"imported"} and set(df["repeat"]) == {0}


@pytest.mark.parametrize(("raw", "expected"), [
    ("pass", "pass"), ("Passed", "pass"), ("true", "pass"), ("1", "pass"), ("SUCCESS", "pass"),
    ("fail", "fail"), ("FAILED", "fail"), ("false", "fail"), ("0", "fail"),
    ("error", "error"), ("Errored", "error"), ("skip", "skipped"), ("skipped", "skipped")])
def test_outcome_spellings(tmp_path, raw, expected):
    path = tmp_path / "r.csv"
    path.write_text(f"id,status\nx,{raw}\n")
    assert import_results([path], mapping={"case_id": "id", "outcome": "status"})["outcome"][0] == expected


def test_boolean_and_numeric_outcome_columns(tmp_path):
    path = tmp_path / "r.parquet"
    pl.DataFrame({"id": ["a", "b"], "ok": [True, False], "n": [1.0, 0.0]}).write_parquet(path)
    assert import_results([path], mapping={"case_id": "id", "outcome": "ok"})["outcome"].to_list() == ["pass", "fail"]
    assert import_results([path], mapping={"case_id": "id", "outcome": "n"})["outcome"].to_list() == ["pass", "fail"]


def test_canonical_export_reimports_without_mapping(tmp_path):
    src = import_results([FIXTURES / "inspect/failures.log.json"])
    path = tmp_path / "canonical.parquet"
    src.write_parquet(path)
    back = import_results([path], run_id=src["run_id"][0])
    assert back.drop("suite").equals(src.drop("suite"))


# ---- bad input: every case must raise InputError whose one line names the file ----

def _bad(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _pf(rows=None) -> str:
    return json.dumps(promptfoo_doc(rows or [promptfoo_row("q1", {"q": "a"}, passed=True, test_idx=0)]))


def _case_empty(tmp):
    return _bad(tmp, "empty.json", b""), {}, "empty"


def _case_whitespace(tmp):
    return _bad(tmp, "blank.jsonl", b"\n  \n"), {}, "empty"


def _case_truncated(tmp):
    text = _pf()
    return _bad(tmp, "truncated.json", text[: len(text) // 2]), {"fmt": "promptfoo"}, "line 1 column"


def _case_truncated_jsonl(tmp):
    line = json.dumps(promptfoo_row("q1", {"q": "a"}, passed=True, test_idx=0))
    return _bad(tmp, "cut.jsonl", line + "\n" + line[:40]), {"fmt": "promptfoo-jsonl"}, "line 2 column"


def _case_wrong_schema(tmp):
    return _bad(tmp, "pf_as_deepeval.json", _pf()), {"fmt": "deepeval"}, "testCases"


def _case_deepeval_as_inspect(tmp):
    doc = {"testCases": [deepeval_case("a", [{"name": "M", "success": True, "score": 1.0}])]}
    return _bad(tmp, "de_as_inspect.json", json.dumps(doc)), {"fmt": "inspect"}, "eval"


def _case_unknown_auto(tmp):
    return _bad(tmp, "mystery.json", json.dumps({"hello": "world"})), {}, "format"


def _case_unknown_extension(tmp):
    return _bad(tmp, "results.txt", "pass\n"), {}, "format"


def _case_non_utf8(tmp):
    return _bad(tmp, "latin1.csv", "id,status\ncaf\xe9,pass\n".encode("latin-1")), {"mapping": MAPPING}, "UTF-8"


def _case_nan_score(tmp):
    return _bad(tmp, "nan.jsonl", '{"id": "a", "status": "pass", "score": NaN}\n'), {"mapping": MAPPING}, "NaN"


def _case_inf_score_promptfoo(tmp):
    text = _pf().replace('"score": 1.0', '"score": Infinity')
    return _bad(tmp, "inf.json", text), {}, "score"


def _case_nan_score_inspect(tmp):
    text = json.dumps(inspect_log([inspect_sample("a", 1, 0.5)])).replace("0.5", "NaN")
    return _bad(tmp, "nan.log.json", text), {}, "NaN"


def _case_out_of_range_generic(tmp):
    return _bad(tmp, "big.csv", "id,status,score\na,pass,7\n"), {"mapping": MAPPING}, "outside [0, 1]"


def _case_duplicate_rows(tmp):
    return _bad(tmp, "dup.csv", "id,status\na,pass\na,fail\n"), {"mapping": {"case_id": "id", "outcome": "status"}}, "duplicate"


def _case_missing_column(tmp):
    return _bad(tmp, "nocol.csv", "name,status\na,pass\n"), {"mapping": MAPPING}, "missing required column"


def _case_no_mapping(tmp):
    return _bad(tmp, "plain.jsonl", '{"name": "a", "verdict": "pass"}\n'), {}, "missing required column"


def _case_unknown_outcome(tmp):
    return _bad(tmp, "odd.csv", "id,status\na,maybe\n"), {"mapping": {"case_id": "id", "outcome": "status"}}, "'maybe'"


def _case_too_large(tmp):
    return _bad(tmp, "large.json", _pf()), {"max_bytes": 100}, "limit"


def _case_doctype(tmp):
    xml = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
           '<testsuites><testsuite name="s"><testcase name="&lol2;"/></testsuite></testsuites>')
    return _bad(tmp, "bomb.junit.xml", xml), {}, "DOCTYPE"


def _case_bad_xml(tmp):
    return _bad(tmp, "cut.junit.xml", '<testsuites><testsuite name="s"><testcase name="a">'), {}, "malformed XML"


def _case_bad_zip(tmp):
    return _bad(tmp, "cut.eval", b"PK\x03\x04garbage"), {}, "zip"


def _case_inspect_unknown_value(tmp):
    return _bad(tmp, "odd.log.json", json.dumps(inspect_log([inspect_sample("a", 1, "maybe")]))), {}, "scores.includes.value"


def _case_deepeval_no_metrics(tmp):
    return _bad(tmp, "nometrics.json", json.dumps({"testCases": [deepeval_case("a", [])]})), {}, "metricsData"


def _case_missing_file(tmp):
    return tmp / "nope.json", {}, "not found"


BAD = [f for name, f in sorted(globals().items()) if name.startswith("_case_")]


@pytest.mark.parametrize("make", BAD, ids=[f.__name__[6:] for f in BAD])
def test_bad_input_raises_one_line_input_error(tmp_path, make):
    path, kwargs, needle = make(tmp_path)
    with pytest.raises(InputError) as err:
        import_results([path], **kwargs)
    line = str(err.value)
    assert path.name in line
    assert needle in line
    assert "\n" not in line
    assert err.value.exit_code == 2


def test_bom_is_accepted(tmp_path):
    path = _bad(tmp_path, "bom.json", b"\xef\xbb\xbf" + _pf().encode())
    assert detect_format(path) == "promptfoo"
    assert import_results([path])["outcome"].to_list() == ["pass"]
    csv = _bad(tmp_path, "bom.csv", b"\xef\xbb\xbfid,status\na,pass\n")
    assert import_results([csv], mapping={"case_id": "id", "outcome": "status"})["case_id"].to_list() == ["a"]


def test_size_is_checked_before_reading(tmp_path, monkeypatch):
    path = _bad(tmp_path, "r.json", _pf())
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read a file above the limit"))
    with pytest.raises(InputError, match="limit"):
        import_results([path], max_bytes=10)


def test_promptfoo_scores_outside_unit_interval_are_clipped_with_warning(tmp_path):
    row = promptfoo_row("q1", {"q": "a"}, passed=True, test_idx=0, score=1.5)
    with pytest.warns(UserWarning, match="clipped"):
        df = import_results([write_json(tmp_path / "r.json", promptfoo_doc([row]))])
    assert df["score"].to_list() == [1.0]
