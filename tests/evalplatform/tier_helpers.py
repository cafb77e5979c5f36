"""The mini suite with an LLM judge served by a local app that counts its calls and answers by the seed it is sent."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from evalplatform.models.local_provider import register_app
from tests.suite_helpers import make_project

_lock = threading.Lock()
JUDGE_CALLS: list[dict] = []  # the params (seed included) of every call the judge apps answered


def _record(params: dict) -> None:
    with _lock:
        JUDGE_CALLS.append(dict(params))


def judge_pass(messages: list[dict], params: dict) -> str:
    _record(params)
    return json.dumps({"reasoning": "fine", "verdict": "PASS"})


def judge_by_seed(messages: list[dict], params: dict) -> str:
    """PASS for an even seed, FAIL for an odd one: every case's verdict flips between consecutive repeats."""
    _record(params)
    verdict = "PASS" if int(params.get("seed") or 0) % 2 == 0 else "FAIL"
    return json.dumps({"reasoning": f"seed {params.get('seed')}", "verdict": verdict})


register_app("judge-pass", judge_pass)
register_app("judge-by-seed", judge_by_seed)


def judge_scorer(*, model: str = "local/judge-pass", advisory: bool = True, frontier: bool = False,
                 scorer_id: str = "polite") -> str:
    return (f"  - {{id: {scorer_id}, type: llm_judge, criterion: tone, input_field: text, advisory: "
            f"{str(advisory).lower()}, frontier: {str(frontier).lower()}, rubric_text: \"PASS when polite.\", "
            f"judge: {{model: {model}, seed: 7}}}}\n")


def mini_with_judge(tmp_path: Path, monkeypatch, *, judge: str | None = None, tiers: dict[str, str] | None = None,
                    extra: str = "") -> Path:
    """A project with the mini suite plus a judge scorer (and its tiers' extra settings); returns the suite file."""
    root = make_project(tmp_path)
    suite = root / "datasets" / "mini" / "suite.yaml"
    text = suite.read_text()
    text = text.replace("gate:\n", (judge if judge is not None else judge_scorer()) + "gate:\n", 1)
    for tier, more in (tiers or {}).items():
        start = text.index(f"  {tier}: {{") + len(f"  {tier}: {{")
        text = text[:start] + more + (", " if not more.endswith(", ") else "") + text[start:]
    suite.write_text(text + extra)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    for name in ("EVALPLATFORM_HOME", "EVALPLATFORM_HISTORY"):
        monkeypatch.delenv(name, raising=False)
    JUDGE_CALLS.clear()
    return suite
