"""Shared helpers for tests that run the mini suite: a copy in a tmp project and its local app."""

from __future__ import annotations

import shutil
from pathlib import Path

from evalplatform.models.local_provider import register_app

MINI = Path(__file__).resolve().parent / "fixtures" / "suites" / "mini"


def echo_upper(messages: list[dict], params: dict) -> str:
    """The mini suite's target: repeats the text after "Say:", upper-cased unless it looks like JSON."""
    text = messages[-1]["content"].split("Say: ", 1)[-1].strip()
    return text if text.startswith("{") else text.upper()


register_app("echo-upper", echo_upper)


def make_project(tmp_path: Path) -> Path:
    """A project folder with datasets/mini (a copy of the fixture suite) and its own state folder."""
    root = tmp_path / "proj"
    shutil.copytree(MINI, root / "datasets" / "mini")
    return root


def calibrate_judges(suite_file: Path, history: Path) -> None:
    """Calibrate every LLM judge of a suite into `history`, as `evalplatform calibrate` does: a judge
    without a calibration of its identity may not gate, so runs that should pass need this first."""
    from evalplatform.history import HistoryStore
    from evalplatform.judges.calibrate import calibrate_judge, store_report
    from evalplatform.judges.llm_judge import LLMJudge
    from evalplatform.judges.suites import judges_in_suite
    from evalplatform.suite import load_suite

    store = HistoryStore(history)
    for judge in judges_in_suite(load_suite(suite_file)):
        if isinstance(judge, LLMJudge):
            store_report(store, calibrate_judge(judge, self_consistency_k=1))
