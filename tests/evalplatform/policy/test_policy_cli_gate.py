"""`evalplatform gate` and `import` on real files: peer tools' results, outputs for CI, and the decision record."""

from __future__ import annotations

import json
from pathlib import Path
import xml.etree.ElementTree as ET

import polars as pl
import yaml
import pytest

from evalplatform.cli import main
from evalplatform.history import HistoryStore
from evalplatform.policy import load_policy
from tests.evalplatform.policy.builders import PEER, POLICIES, REPO, frame, rows

PEER_FILES = ["promptfoo/failures.results.json", "promptfoo/failures.results.jsonl",
              "promptfoo/failures.results.csv", "promptfoo/failures.results.junit.xml",
              "deepeval/failures.evaluate.test_run.json", "inspect/failures.log.json"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_HISTORY", str(tmp_path / "history.duckdb"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.mark.parametrize("name", PEER_FILES)
def test_peer_files_pass_at_0_6_and_block_at_0_8(name, capsys):
    results = str(PEER / name)
    assert main(["gate", "--no-record", "--results", results, "--policy", str(POLICIES / "floor-0.6.yaml")]) == 0
    out = capsys.readouterr().out
    assert "0.705" in out and "decision: PASS" in out
    assert main(["gate", "--no-record", "--results", results, "--policy", str(POLICIES / "floor-0.8.yaml")]) == 1
    out = capsys.readouterr().out
    assert "FAIL (blocks)" in out and "BLOCKED by floor" in out


def test_outputs_for_ci_and_the_recorded_decision(tmp_path, capsys, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    policy = POLICIES / "mixed.yaml"
    rc = main(["gate", "--results", str(PEER / "inspect/failures.log.json"), "--policy", str(policy),
               "--junit", "j.xml", "--json", "d.json", "--markdown", "m.md"])
    assert rc == 1
    capsys.readouterr()
    decision = json.loads((tmp_path / "d.json").read_text())
    assert decision["overall"] == "BLOCK"
    assert decision["policy_hash"] == load_policy(policy).sha256
    assert decision["inputs"]["results"][0]["format"] == "inspect"
    outcomes = {r["rule_id"]: (r["outcome"], r["blocks"]) for r in decision["rules"]}
    assert outcomes == {"floor": ("FAIL", True), "errors": ("PASS", False), "slow": ("FAIL", False)}
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["floor"].find("failure") is not None
    assert cases["slow"].find("failure") is None and cases["slow"].find("skipped") is not None
    assert cases["errors"].find("failure") is None and cases["errors"].find("skipped") is None
    assert suite.get("tests") == "3" and suite.get("failures") == "1"
    markdown = (tmp_path / "m.md").read_text()
    assert "**BLOCKED**" in markdown and "| `floor` |" in markdown
    assert summary.read_text() == "earlier step\n" + markdown
    stored = HistoryStore(tmp_path / "history.duckdb").get_decision(decision["decision_id"])
    assert stored["overall"] == "BLOCK" and stored["policy_hash"] == decision["policy_hash"]
    assert stored["inputs"]["results"][0]["sha256"] == decision["inputs"]["results"][0]["sha256"]
    assert {r["rule_id"]: r["numbers"]["k"] for r in stored["rules"]}["floor"] == 141


def _store_run(store: HistoryStore, run_id: str, df: pl.DataFrame) -> None:
    store.begin_run({"run_id": run_id, "suite": "demo"})
    store.complete_run(run_id, df.with_columns(pl.lit(run_id).alias("run_id")))


def test_recorded_runs_and_the_promoted_baseline(tmp_path, capsys):
    store = HistoryStore(tmp_path / "history.duckdb")
    safety = rows(40, 0, prefix="pii", tags=["category:pii", "source:regression"])
    arithmetic = rows(20, 0, prefix="arith", tags=["category:arithmetic", "source:golden"])
    golden = ["category:grounding", "source:golden"]
    _store_run(store, "base-1", frame(rows(360, 40, tags=golden), safety, arithmetic))
    _store_run(store, "cand-ok", frame(rows(360, 40, tags=golden), safety, arithmetic))
    # 40 points down on 400 of the 460 cases: well past the demo policy's 10-point margin.
    _store_run(store, "cand-worse", frame(rows(200, 200, tags=golden), safety, arithmetic))
    # The demo policy without its judge-corrected rules: these synthetic runs have no judge rows.
    doc = yaml.safe_load((REPO / "datasets" / "demo" / "policy.yaml").read_text())
    doc["rules"] = [r for r in doc["rules"] if r["metric"] != "judge_corrected_pass_rate"]
    policy = str(tmp_path / "policy.yaml")
    Path(policy).write_text(yaml.safe_dump(doc))
    # First run of the suite: no promoted baseline, the baseline rule is NO_DATA and does not block.
    assert main(["gate", "--run", "cand-ok", "--policy", policy, "--baseline", "promoted"]) == 0
    assert "no baseline" in capsys.readouterr().out
    store.promote("demo", "base-1", "test")
    assert main(["gate", "--run", "cand-ok", "--policy", policy, "--baseline", "promoted", "--json", "ok.json"]) == 0
    ok = json.loads((tmp_path / "ok.json").read_text())
    assert ok["inputs"]["baseline"] == {"kind": "promoted", "suite": "demo", "run_id": "base-1"}
    # A gate of a recorded run is a labelled re-decision; it never becomes the run's decision of record.
    assert store.re_decisions("cand-ok")[-1]["overall"] == "PASS" and store.get_run("cand-ok")["decision"] is None
    capsys.readouterr()
    assert main(["gate", "--run", "cand-worse", "--policy", policy, "--baseline", "base-1"]) == 1
    err = capsys.readouterr().err
    assert "rule no_regression_vs_baseline: FAIL" in err
    assert store.re_decisions("cand-worse")[-1]["overall"] == "BLOCK"


def test_the_promoted_run_is_never_its_own_baseline(tmp_path, capsys):
    store = HistoryStore(tmp_path / "history.duckdb")
    _store_run(store, "base-0", frame(rows(80, 20)))
    _store_run(store, "cand", frame(rows(90, 10)))
    store.promote("demo", "cand", "test")
    policy = tmp_path / "reg.yaml"
    policy.write_text("suite: demo\nrules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.5}}\n"
                      "  - {id: reg, metric: pass_rate, bound: {max_drop: 0.05}}\n")
    # As the run pipeline does: no baseline when the promoted run is the one being gated (not a 0.000 change).
    assert main(["gate", "--no-record", "--run", "cand", "--policy", str(policy), "--baseline", "promoted",
                 "--json", "d.json"]) == 1
    out, err = capsys.readouterr()
    assert "rule reg: ERROR: no baseline" in err and "itself the promoted baseline" in err
    decision = json.loads((tmp_path / "d.json").read_text())
    assert decision["inputs"]["baseline"]["run_id"] is None
    # Another run still compares with the promoted one; naming the gated run itself is bad input.
    assert main(["gate", "--no-record", "--run", "base-0", "--policy", str(policy), "--baseline", "promoted"]) == 1
    assert "aligned cases" in capsys.readouterr().out
    assert main(["gate", "--no-record", "--run", "cand", "--policy", str(policy), "--baseline", "cand"]) == 2
    assert "is the run being gated" in capsys.readouterr().err


def test_import_converts_to_the_canonical_table(tmp_path, capsys):
    out = tmp_path / "canon.parquet"
    assert main(["import", str(PEER / "inspect/failures.log.json"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "200 rows, 200 cases" in printed and "pass 141, fail 59" in printed
    df = pl.read_parquet(out)
    assert df.height == 200 and "case_hash" in df.columns
    assert main(["import", str(PEER / "promptfoo/failures.results.json"), "--out", str(tmp_path / "c.jsonl")]) == 0
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 200
    assert main(["import", str(PEER / "inspect/failures.log.json"), "--out", str(tmp_path / "x.xlsx")]) == 2
    # The canonical table gates like the original file.
    capsys.readouterr()
    assert main(["gate", "--no-record", "--results", str(out), "--policy", str(POLICIES / "floor-0.6.yaml")]) == 0


def test_policy_schema_file_is_current():
    from evalplatform.policy import policy_json_schema

    committed = json.loads((REPO / "datasets" / "schema" / "policy.schema.json").read_text())
    assert committed == json.loads(json.dumps(policy_json_schema()))
