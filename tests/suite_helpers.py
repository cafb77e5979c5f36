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
