"""House rules that keep the layers apart and the inputs safe, checked over the source tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "evalplatform").rglob("*.py"))


# The CI client is a Dagster API client: it alone may use dagster-graphql (which loads Dagster when used).
DAGSTER_CLIENT = ROOT / "evalplatform" / "ci.py"


def test_library_never_imports_dagster():
    offenders = [str(p.relative_to(ROOT)) for p in LIBRARY
                 if re.search(r"^\s*(import dagster\b|from dagster\b(?!_graphql))", p.read_text(), re.MULTILINE)]
    assert offenders == []
    graphql = [str(p.relative_to(ROOT)) for p in LIBRARY if p != DAGSTER_CLIENT
               and re.search(r"^\s*(import|from) dagster_graphql", p.read_text(), re.MULTILINE)]
    assert graphql == []


def test_yaml_is_only_safe_loaded_and_config_is_never_evaluated():
    code = [p for p in LIBRARY + sorted((ROOT / "assets").rglob("*.py")) + sorted((ROOT / "sensors").rglob("*.py"))]
    unsafe = [str(p.relative_to(ROOT)) for p in code
              if re.search(r"yaml\.(load|unsafe_load|full_load)\(|(?<![.\w])(eval|exec)\(", p.read_text())]
    assert unsafe == []


def test_servers_bind_loopback_only():
    assert "-h 127.0.0.1" in (ROOT / "Makefile").read_text()
