"""The real result files the peers wrote for the shared 200-case suite import with the tools' own counts."""

from __future__ import annotations


import polars as pl
import pytest

from evalplatform import results
from evalplatform.errors import InputError
from evalplatform.importers import detect_format, import_results, load_results
from tests.evalplatform.importers.builders import FIXTURES

# (file, format auto-detection must pick, scorer the rows carry)
FAILURE_FILES = [
    ("promptfoo/failures.results.json", "promptfoo", "keyword_match"),
    ("promptfoo/failures.results.jsonl", "promptfoo-jsonl", "keyword_match"),
    ("promptfoo/failures.results.csv", "promptfoo-csv", "promptfoo"),
    ("promptfoo/failures.results.junit.xml", "junit", "junit"),
    ("deepeval/failures.evaluate.test_run.json", "deepeval", "ContainsKeyword"),
    ("deepeval/failures.testrun.test_run.json", "deepeval", "ContainsKeyword"),
    ("inspect/failures.log.json", "inspect", "includes"),
]


def _counts(df: pl.DataFrame) -> dict[str, int]:
    return dict(df.group_by("outcome").len().iter_rows())


@pytest.mark.parametrize(("name", "fmt", "scorer"), FAILURE_FILES)
def test_failures_file_matches_tool_counts(name, fmt, scorer):
    path = FIXTURES / name
    assert detect_format(path) == fmt
    df = import_results([path])
    assert _counts(df) == {"pass": 141, "fail": 59}
    assert df["case_id"].n_unique() == 200
    assert df["scorer"].unique().to_list() == [scorer]
    assert set(df["tier_cost"]) == {"external"}
    assert results.validate(df, name) == []
    assert df.columns == list(results.COLUMNS)


def test_case_ids_align_across_tools():
    """The same suite imported from three tools gives the same (case_id, outcome) pairs."""
    frames = [import_results([FIXTURES / n]).select("case_id", "outcome").sort("case_id")
              for n in ("promptfoo/failures.results.json", "inspect/failures.log.json",
                        "deepeval/failures.evaluate.test_run.json")]
    assert frames[0]["case_id"].head(3).to_list() == ["q000", "q001", "q002"]
    # The mock answers the same way for every tool: the same 59 cases fail everywhere.
    assert frames[0].equals(frames[1]) and frames[0].equals(frames[2])


def test_promptfoo_columns_carry_reason_usage_and_suite():
    df = import_results([FIXTURES / "promptfoo/failures.results.json"])
    row = df.filter(pl.col("case_id") == "q010").row(0, named=True)
    assert row["outcome"] == "fail" and row["score"] == 0.0
    assert row["explanation"] == 'Expected output to contain "garnet010"'
    assert (row["tokens_in"], row["tokens_out"], row["latency_ms"]) == (14, 9, 392.0)
    assert row["suite"] == "bench-200 failures"
    assert "topic:geography" in row["tags"]


def test_inspect_rows_map_letters_usage_and_task():
    df = import_results([FIXTURES / "inspect/failures.log.json"])
    row = df.filter(pl.col("case_id") == "q000").row(0, named=True)
    assert (row["outcome"], row["score"], row["repeat"]) == ("pass", 1.0, 0)
    assert (row["tokens_in"], row["tokens_out"]) == (14, 10)
    assert row["suite"] == "bench200"
    assert "geography" in row["tags"]


def test_run_id_is_content_hash_and_overridable(tmp_path):
    path = FIXTURES / "promptfoo/failures.results.jsonl"
    a = import_results([path])["run_id"][0]
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    assert import_results([copy])["run_id"][0] == a
    assert a.startswith("import-") and len(a) == len("import-") + 12
    out = import_results([path], run_id="r1", suite="s1")
    assert set(out["run_id"]) == {"r1"} and set(out["suite"]) == {"s1"}


def test_two_tools_in_one_run_are_refused_when_they_overlap():
    a, b = FIXTURES / "promptfoo/failures.results.json", FIXTURES / "promptfoo/failures.results.jsonl"
    with pytest.raises(InputError) as err:
        load_results([a, b])
    assert "failures.results.json" in str(err.value) and "failures.results.jsonl" in str(err.value)


def test_untrimmed_inspect_log_matches_tool_counts():
    # The Inspect log as Inspect wrote it (the fixture above is trimmed), kept gzipped as users keep them.
    path = FIXTURES / "inspect/failures.original.log.json.gz"
    assert detect_format(path) == "inspect"
    df = import_results([path])
    assert _counts(df) == {"pass": 141, "fail": 59}
