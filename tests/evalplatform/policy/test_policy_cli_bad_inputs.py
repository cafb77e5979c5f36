"""Bad inputs to `evalplatform gate`: one clear line naming the file and the field or rule, the right exit code,
no traceback, and never a pass."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import pytest

from evalplatform.cli import main
from tests.evalplatform.policy.builders import PEER

GOOD_POLICY = "rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.5}}\n"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_HISTORY", str(tmp_path / "history.duckdb"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("EVALPLATFORM_IMPORT_MAX_BYTES", raising=False)


def _jsonl(n_pass: int, n_fail: int = 0, **extra) -> str:
    lines = [json.dumps({"case_id": f"c{i}", "outcome": "pass" if i < n_pass else "fail", **extra})
             for i in range(n_pass + n_fail)]
    return "\n".join(lines) + "\n"


def _write(tmp: Path, name: str, content: str | bytes) -> str:
    path = tmp / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def _gate(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["gate", "--no-record", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "internal failure" not in err, err
    return rc, out, err


# (name, results content, policy content, extra argv, expected exit, text the error line must hold)
RESULT_CASES = [
    ("truncated.results.json", (PEER / "promptfoo/failures.results.json").read_text()[:5000], GOOD_POLICY, [], 2,
     "malformed JSON"),
    ("truncated.jsonl", _jsonl(3) + '{"case_id": "c9", "outc', GOOD_POLICY, [], 2, "line 4"),
    ("wrong.json", '{"foo": [1, 2, 3]}', GOOD_POLICY, [], 2, "wrong.json"),
    ("latin1.jsonl", b'{"case_id": "caf\xe9", "outcome": "pass"}\n', GOOD_POLICY, [], 2, "not valid UTF-8"),
    ("empty.jsonl", "", GOOD_POLICY, [], 2, "empty"),
    ("blank.jsonl", "\n \n\t\n", GOOD_POLICY, [], 2, "empty"),
    ("nan.jsonl", '{"case_id": "a", "outcome": "pass", "score": NaN}\n', GOOD_POLICY, [], 2, "NaN"),
    ("inf.jsonl", '{"case_id": "a", "outcome": "pass", "score": 1e999}\n', GOOD_POLICY, [], 2, "infinite"),
    ("unknown-outcome.jsonl", '{"case_id": "a", "outcome": "maybe"}\n', GOOD_POLICY, [], 2, "maybe"),
    ("dup.jsonl", '{"case_id": "a", "outcome": "pass"}\n{"case_id": "a", "outcome": "fail"}\n', GOOD_POLICY, [], 2,
     "duplicate"),
    ("nocols.jsonl", '{"id": "a", "verdict": "pass"}\n', GOOD_POLICY, [], 2, "case_id"),
    ("bad.csv", "name,value\nx,1\n", GOOD_POLICY, [], 2, "bad.csv"),
    ("score-range.jsonl", '{"case_id": "a", "outcome": "pass", "score": 1.5}\n', GOOD_POLICY, [], 2, "[0, 1]"),
    ("wrong-format.jsonl", _jsonl(3), GOOD_POLICY, ["--format", "junit"], 2, "wrong-format.jsonl"),
    ("unknown-format.jsonl", _jsonl(3), GOOD_POLICY, ["--format", "excel"], 2, "format"),
    ("corrupt.parquet", b"PAR1 this is not parquet", GOOD_POLICY, [], 2, "corrupt.parquet"),
    ("toolarge.jsonl", _jsonl(50), GOOD_POLICY, ["--max-bytes", "100"], 2, "above the import limit"),
    # Policy problems.
    ("ok.jsonl", _jsonl(10), "rules: [", [], 2, "invalid YAML"),
    ("ok.jsonl", _jsonl(10), "- just\n- a list\n", [], 2, "expected a mapping"),
    ("ok.jsonl", _jsonl(10), b"name: caf\xe9\nrules: []\n", [], 2, "not valid UTF-8"),
    ("ok.jsonl", _jsonl(10), "", [], 2, "empty"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: x, metric: vibes, bound: {min: 0.5}}\n", [], 2, "unknown metric"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: x, metric: pass_rate, bound: {min: 0.5}, "
                             "select: {case_id_pattern: '(unclosed'}}\n", [], 2, "invalid regular expression"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: x, metric: pass_rate, bound: {min: 0.5}, "
                             "select: {case_id_pattern: '(a)\\1'}}\n", [], 2, "invalid regular expression"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: x, metric: pass_rate, bound: {min: 0.5, max_drop: 0.1}}\n", [], 2,
     "exactly one"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: x, metric: pass_rate}\n", [], 2, "bound"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: x, metric: pass_rate, bound: {min: 0.5}}\n"
                             "  - {id: x, metric: error_rate, bound: {max: 0.5}}\n", [], 2, "appears twice"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: x, metric: pass_rate, bound: {min: 0.5}, severty: advisory}\n", [],
     2, "severty"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: x, metric: pass_rate, bound: {min: 1.5}}\n", [], 2, "[0, 1]"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: x, metric: pass_hat_k, bound: {min: 0.5}}\n", [], 2, "needs k"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: x, metric: error_rate, bound: {min: 0.5}}\n", [], 2, "max"),
    ("ok.jsonl", _jsonl(10), "rules: !!python/object/apply:os.system ['echo hi']\n", [], 2, "invalid YAML"),
    ("ok.jsonl", _jsonl(10), "rules: []\n", [], 2, "rules"),
    # A key given twice would silently replace the first: a second `bound:` loosens the rule, a second
    # `rules:` list drops every rule before it.
    ("ok.jsonl", _jsonl(10), "rules:\n  - id: x\n    metric: pass_rate\n    bound: {min: 0.9}\n    bound: {min: 0.1}\n",
     [], 2, "line 5: bound: duplicate key 'bound' (first on line 4)"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: x, metric: pass_rate, bound: {min: 0.99}}\n"
                             "rules:\n  - {id: y, metric: pass_rate, bound: {min: 0.1}}\n", [], 2,
     "line 3: rules: duplicate key 'rules'"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: x, metric: pass_rate, bound: {min: 0.9, min: 0.1}}\n", [], 2,
     "duplicate key 'min'"),
    ("ok.jsonl", _jsonl(10), "description: " + "[" * 50000 + "]" * 50000 + "\n" + GOOD_POLICY, [], 2,
     "nested too deeply"),
    # Error settings where a metric does not use them: refused, naming the rule and the setting.
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.5}}\n"
                             "  - {id: errs, metric: error_rate, bound: {max: 0.1}, errors: exclude}\n", [], 2,
     "rules[1] (rule errs): metric error_rate does not use `errors`"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: lat, metric: p95_latency_ms, bound: {max: 900}, max_error_share: 0.2}\n",
     [], 2, "metric p95_latency_ms does not use `max_error_share`"),
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: cost, metric: cost_per_case, bound: {max: 0.1}, errors: fail}\n",
     [], 2, "metric cost_per_case does not use `errors`"),
    # Baselines.
    ("ok.jsonl", _jsonl(10), "rules:\n  - {id: reg, metric: pass_rate, bound: {max_drop: 0.05}}\n",
     ["--baseline", "no-such-run-or-file"], 2, "--baseline"),
]


@pytest.mark.parametrize(("name", "content", "policy", "argv", "code", "needle"), RESULT_CASES,
                         ids=[f"{i:02d}-{c[0]}-{c[5]}" for i, c in enumerate(RESULT_CASES)])
def test_bad_input_is_one_clear_line_and_never_passes(tmp_path, capsys, name, content, policy, argv, code, needle):
    results = _write(tmp_path, name, content)
    policy_path = _write(tmp_path, "policy.yaml", policy)
    rc, out, err = _gate(capsys, "--results", results, "--policy", policy_path, *argv)
    assert rc == code, (out, err)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert needle in errors[0], errors[0]
    if "--baseline" in argv:
        named = argv[argv.index("--baseline") + 1]
    elif "--format" in argv and needle == "format":
        named = "format"
    else:
        named = "policy.yaml" if name == "ok.jsonl" else Path(results).name
    assert named in errors[0], errors[0]


def test_missing_results_and_policy_files(tmp_path, capsys):
    policy = _write(tmp_path, "policy.yaml", GOOD_POLICY)
    rc, _, err = _gate(capsys, "--results", str(tmp_path / "nope.jsonl"), "--policy", policy)
    assert rc == 2 and "nope.jsonl" in err and "not found" in err
    rc, _, err = _gate(capsys, "--results", _write(tmp_path, "r.jsonl", _jsonl(3)), "--policy", "missing.yaml")
    assert rc == 2 and "missing.yaml" in err
    rc, _, err = _gate(capsys, "--policy", policy)
    assert rc == 2 and "--results" in err


def test_corrupt_baseline_file_is_bad_input_naming_the_baseline(tmp_path, capsys):
    policy = _write(tmp_path, "policy.yaml", "rules:\n  - {id: reg, metric: pass_rate, bound: {max_drop: 0.05}}\n")
    base = _write(tmp_path, "base.jsonl", '{"case_id": "a", "outc')
    rc, _, err = _gate(capsys, "--results", _write(tmp_path, "r.jsonl", _jsonl(5)), "--policy", policy,
                       "--baseline", base)
    assert rc == 2 and "base.jsonl" in err and "--baseline" in err


@pytest.mark.parametrize(("content", "needle"), [
    ("tone:\n  judge_pass_on_human_pass: 40\n  m_human_pass: 50\n  judge_fail_on_human_fail: 30\n  m_human_fail: 40\n"
     "  m_human_fail: 35\n", "line 6: m_human_fail: duplicate key 'm_human_fail' (first on line 5)"),
    ('{"tone": {"judge_pass_on_human_pass": 4, "m_human_pass": 5, "judge_fail_on_human_fail": 3, '
     '"m_human_fail": 4}, "tone": {"judge_pass_on_human_pass": 5, "m_human_pass": 5, '
     '"judge_fail_on_human_fail": 4, "m_human_fail": 4}}', "duplicate key 'tone'"),
    ("tone: " + "{a: " * 30000 + "1" + "}" * 30000 + "\n", "nested too deeply"),
])
def test_bad_calibrations_file_is_one_line_naming_it(tmp_path, capsys, content, needle):
    policy = _write(tmp_path, "policy.yaml", "rules:\n  - {id: tone, metric: judge_corrected_pass_rate, "
                                             "select: {scorer: judge}, judge: {calibration: tone}, bound: {min: 0.5}}\n")
    cal = _write(tmp_path, "cal.yaml", content)
    rc, out, err = _gate(capsys, "--results", _write(tmp_path, "r.jsonl", _jsonl(5, scorer="judge")),
                         "--policy", policy, "--calibrations", cal)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 2 and len(errors) == 1, (out, err)
    assert "cal.yaml" in errors[0] and needle in errors[0], errors[0]


# Inputs that import but must not pass: the rule is ERROR and blocks (exit 1), named on one line.
def _blocked_line(err: str, rule: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("blocked:") and f"rule {rule}:" in line]
    assert len(lines) == 1, err
    return lines[0]


def test_empty_selection_blocks(tmp_path, capsys):
    policy = _write(tmp_path, "policy.yaml", "rules:\n  - {id: pii, metric: pass_rate, bound: {min: 0.5}, "
                                             "select: {tags: {any: ['category:pii']}}}\n")
    rc, _, err = _gate(capsys, "--results", _write(tmp_path, "r.jsonl", _jsonl(5)), "--policy", policy)
    assert rc == 1
    assert "matched no result rows" in _blocked_line(err, "pii") and "policy.yaml" in err


def test_missing_metric_blocks(tmp_path, capsys):
    policy = _write(tmp_path, "policy.yaml", "rules:\n  - {id: lat, metric: p95_latency_ms, bound: {max: 1000}}\n")
    rc, _, err = _gate(capsys, "--results", str(PEER / "promptfoo/failures.results.csv"), "--policy", policy)
    assert rc == 1 and "latency_ms" in _blocked_line(err, "lat")


def test_missing_promoted_baseline_blocks_unless_the_rule_says_no_data(tmp_path, capsys):
    strict = _write(tmp_path, "strict.yaml", "suite: demo\nrules:\n  - {id: reg, metric: pass_rate, "
                                             "bound: {max_drop: 0.05}}\n")
    results = _write(tmp_path, "r.jsonl", _jsonl(5))
    rc, _, err = _gate(capsys, "--results", results, "--policy", strict, "--baseline", "promoted")
    assert rc == 1 and "no baseline" in _blocked_line(err, "reg")
    lenient = _write(tmp_path, "lenient.yaml", "suite: demo\nrules:\n  - {id: floor, metric: pass_rate, "
                                               "bound: {min: 0.3}}\n  - {id: reg, metric: pass_rate, "
                                               "bound: {max_drop: 0.05}, on_missing: no_data, no_data: pass}\n")
    rc, out, _ = _gate(capsys, "--results", results, "--policy", lenient, "--baseline", "promoted")
    assert rc == 0 and "NO_DATA (does not block)" in out


def test_relative_bound_on_zero_baseline_blocks(tmp_path, capsys):
    policy = _write(tmp_path, "policy.yaml", "rules:\n  - {id: cost, metric: cost_per_case, "
                                             "bound: {max_increase: 0.2}}\n")
    base = _write(tmp_path, "base.jsonl", _jsonl(5, cost_usd=0.0))
    rc, _, err = _gate(capsys, "--results", _write(tmp_path, "r.jsonl", _jsonl(5, cost_usd=0.01)),
                       "--policy", policy, "--baseline", base)
    assert rc == 1 and "zero baseline" in _blocked_line(err, "cost")


def test_renamed_tests_block_the_baseline_rule(tmp_path, capsys):
    policy = _write(tmp_path, "policy.yaml", "rules:\n  - {id: reg, metric: pass_rate, bound: {max_drop: 0.05}}\n")
    base = _write(tmp_path, "base.jsonl", _jsonl(20))
    renamed = "\n".join(json.dumps({"case_id": f"test_c{i}", "outcome": "pass"}) for i in range(20)) + "\n"
    rc, _, err = _gate(capsys, "--results", _write(tmp_path, "r.jsonl", renamed), "--policy", policy,
                       "--baseline", base)
    assert rc == 1 and "no case aligns" in _blocked_line(err, "reg")


def test_mixed_repeat_shapes_block_pass_hat_k(tmp_path, capsys):
    policy = _write(tmp_path, "policy.yaml", "rules:\n  - {id: rel, metric: pass_hat_k, k: 2, bound: {min: 0.1}}\n")
    lines = [{"case_id": "a", "repeat": 0, "outcome": "pass"}, {"case_id": "a", "repeat": 1, "outcome": "pass"},
             {"case_id": "b", "repeat": 0, "outcome": "pass"}]
    results = _write(tmp_path, "r.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    rc, _, err = _gate(capsys, "--results", results, "--policy", policy)
    assert rc == 1 and "mixed repeat shapes" in _blocked_line(err, "rel")


def test_incomplete_input_blocks_by_default(tmp_path, capsys):
    policy = _write(tmp_path, "policy.yaml", GOOD_POLICY)
    results = str(PEER / "deepeval/failures.testrun.test_run.json")
    rc, _, err = _gate(capsys, "--results", results, "--policy", policy)
    assert rc == 1 and "incomplete input" in _blocked_line(err, "floor")
    assert "warning:" in err
    lenient = _write(tmp_path, "lenient.yaml", "import_warnings: warn\n" + GOOD_POLICY)
    assert _gate(capsys, "--results", results, "--policy", lenient)[0] == 0


def test_backtracking_pattern_through_the_cli_is_fast(tmp_path, capsys):
    lines = [json.dumps({"case_id": "a" * 100_000 + f"!{i}", "outcome": "pass"}) for i in range(20)]
    results = _write(tmp_path, "long.jsonl", "\n".join(lines) + "\n")
    policy = _write(tmp_path, "policy.yaml", "rules:\n  - {id: evil, metric: pass_rate, bound: {min: 0.5}, "
                                             "select: {case_id_pattern: '^(a+)+$'}}\n")
    t0 = time.perf_counter()
    rc, _, err = _gate(capsys, "--results", results, "--policy", policy)
    assert time.perf_counter() - t0 < 5
    assert rc == 1 and "matched no result rows" in _blocked_line(err, "evil")


def test_bom_results_are_accepted_and_judged(tmp_path, capsys):
    policy = _write(tmp_path, "policy.yaml", "rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.8}}\n")
    rc, out, _ = _gate(capsys, "--results", _write(tmp_path, "bom.jsonl", b"\xef\xbb\xbf" + _jsonl(5, 5).encode()),
                       "--policy", policy)
    assert rc == 1 and "FAIL (blocks)" in out


def test_a_200_mb_file_is_refused_by_size_without_reading_it(tmp_path, capsys, monkeypatch):
    big = tmp_path / "big.jsonl"
    with big.open("wb") as fh:  # sparse: 200 MB on paper, nothing on disk
        fh.truncate(200 * 1024 * 1024)
    monkeypatch.setenv("EVALPLATFORM_IMPORT_MAX_BYTES", str(10 * 1024 * 1024))
    policy = _write(tmp_path, "policy.yaml", GOOD_POLICY)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    rc, _, err = _gate(capsys, "--results", str(big), "--policy", policy)
    assert rc == 2 and "big.jsonl" in err and "above the import limit" in err
    assert time.perf_counter() - t0 < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 50 * 1024  # KiB: under 50 MB more
    monkeypatch.setenv("EVALPLATFORM_IMPORT_MAX_BYTES", "lots")
    rc, _, err = _gate(capsys, "--results", str(big), "--policy", policy)
    assert rc == 2 and "EVALPLATFORM_IMPORT_MAX_BYTES" in err
