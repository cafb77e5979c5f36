"""A state folder or history file that cannot be written: exit 3 with one line naming it, and no decision claimed."""

from __future__ import annotations

import re

import pytest

from evalplatform.cli import main
from evalplatform.errors import InfraError
from evalplatform.history import HistoryStore
from tests.evalplatform.policy.builders import PEER, POLICIES
from tests.suite_helpers import make_project

CLAIM = re.compile(r"\b(PASS|PASSED|BLOCK|BLOCKED|BLOCKS)\b")
GATE = ["gate", "--results", str(PEER / "inspect" / "failures.log.json"), "--policy", str(POLICIES / "floor-0.6.yaml")]
RUN = ["run", "--suite", "mini", "--engine", "direct", "--model", "local/echo-upper", "--no-cache"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = make_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    monkeypatch.delenv("EVALPLATFORM_HISTORY", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return root


def _refused(capsys, argv: list[str], path_part: str) -> None:
    assert main(argv) == 3
    out, err = capsys.readouterr()
    assert not CLAIM.search(out), f"claimed a decision it could not record:\n{out}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and path_part in lines[0] and "internal failure" not in lines[0], err


@pytest.mark.parametrize("argv", [GATE, RUN], ids=["gate", "run"])
def test_a_state_folder_that_cannot_exist_is_one_line_and_no_claim(project, tmp_path, monkeypatch, capsys, argv):
    # A path under a regular file cannot be created, even by root (ENOTDIR).
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("EVALPLATFORM_HOME", str(tmp_path / "not-a-folder" / "state"))
    _refused(capsys, argv, str(tmp_path / "not-a-folder"))


@pytest.mark.parametrize("argv", [GATE, RUN], ids=["gate", "run"])
def test_a_history_file_that_is_a_folder_is_one_line_and_no_claim(project, tmp_path, monkeypatch, capsys, argv):
    (tmp_path / "history.duckdb").mkdir()
    monkeypatch.setenv("EVALPLATFORM_HISTORY", str(tmp_path / "history.duckdb"))
    _refused(capsys, argv, str(tmp_path / "history.duckdb"))


@pytest.mark.parametrize("argv", [GATE, RUN], ids=["gate", "run"])
def test_a_decision_that_cannot_be_written_is_never_claimed(project, tmp_path, monkeypatch, capsys, argv):
    history = tmp_path / "state" / "history.duckdb"
    monkeypatch.setenv("EVALPLATFORM_HISTORY", str(history))

    def full_disk(*args, **kwargs):
        raise InfraError(f"{history}: history write failed: IO Error: No space left on device")

    # Every write that carries a decision fails, as on a full disk.
    monkeypatch.setattr(HistoryStore, "record_decision", full_disk)
    monkeypatch.setattr(HistoryStore, "complete_run", full_disk)
    _refused(capsys, argv, str(history))
    runs = HistoryStore(history).list_runs(status=None)
    assert "complete" not in runs["status"].to_list()
