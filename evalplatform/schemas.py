"""JSON Schemas of the eval-as-code files, exported for editors (datasets/schema/*.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


def _suite() -> dict:
    from evalplatform.suite import suite_json_schema

    return suite_json_schema()


def _policy() -> dict:
    from evalplatform.policy import policy_json_schema

    return policy_json_schema()


def _case() -> dict:
    from evalplatform.datasets import CaseRow

    return CaseRow.model_json_schema()


def _trace() -> dict:
    from evalplatform.traces.schema import trace_json_schema

    return trace_json_schema()


EXPORTS: dict[str, Callable[[], dict]] = {"suite": _suite, "case": _case, "policy": _policy, "trace": _trace}


def render(name: str) -> str:
    return json.dumps(EXPORTS[name](), indent=2, sort_keys=True) + "\n"


def available() -> list[str]:
    names = []
    for name, fn in EXPORTS.items():
        try:
            fn()
        except ImportError:
            continue
        names.append(name)
    return names


def export(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in available():
        path = folder / f"{name}.schema.json"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written
