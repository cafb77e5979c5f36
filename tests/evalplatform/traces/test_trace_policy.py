"""The policy's `monitors:` section: validated like the rest of the policy; a shared folder is split by service."""

from __future__ import annotations

import pytest

from evalplatform.errors import InputError
from evalplatform.history import HistoryStore
from evalplatform.policy import load_policy
from evalplatform.project import Project
from evalplatform.traces import pipeline as P
from tests.evalplatform.traces.helpers import monitored_project, plain_row, write_jsonl


@pytest.mark.parametrize("section, match", [
    ("monitors:\n  slos:\n    - {id: x, criterion: dates, tag: 'category:dates', min_pass_rate: 0.9}\n",
     "criterion or tag, not both"),
    ("monitors:\n  slos:\n    - {id: x, min_pass_rate: 1.5}\n", "less than or equal to 1"),
    ("monitors:\n  sampling: {base_rate: 0}\n", "greater than 0"),
    ("monitors:\n  sampling: {rate: 0.1}\n", "xtra"),
    ("monitors:\n  slos:\n    - {id: a, min_pass_rate: 0.9}\n    - {id: a, min_pass_rate: 0.8}\n", "appears twice"),
])
def test_a_bad_monitors_section_is_one_clear_error(tmp_path, section, match):
    root = monitored_project(tmp_path / "proj", section)
    with pytest.raises(InputError, match=match) as err:
        load_policy(root / "datasets" / "demo" / "policy.yaml")
    assert "monitors" in str(err.value)


def test_a_suite_without_monitors_says_where_to_add_them(tmp_path):
    root = monitored_project(tmp_path / "proj", "")
    with pytest.raises(InputError, match="no `monitors:` section"):
        P.setup_for(Project(root), "demo")


def test_a_shared_folder_keeps_only_the_suites_services(tmp_path, monkeypatch):
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    monkeypatch.delenv("EVALPLATFORM_HISTORY", raising=False)
    root = monitored_project(tmp_path / "proj", "monitors:\n  traces: {folder: traces/shared, services: [nimbus]}\n")
    setup = P.setup_for(Project(root), "demo")
    write_jsonl(setup.folder / "mixed.jsonl", [plain_row(i, service="nimbus" if i % 3 else "billing-bot")
                                               for i in range(30)])
    batch = P.ingest(setup, HistoryStore(setup.project.history_path), "mixed.jsonl")
    assert batch.status == "accepted" and batch.n_traces == 20
