"""House rules that keep the layers apart and the inputs safe, checked over the source tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "evalplatform").rglob("*.py"))


def test_library_never_imports_dagster():
    offenders = [str(p.relative_to(ROOT)) for p in LIBRARY
                 if re.search(r"^\s*(import dagster|from dagster)", p.read_text(), re.MULTILINE)]
    assert offenders == []


def test_yaml_is_only_safe_loaded_and_config_is_never_evaluated():
    code = [p for p in LIBRARY + sorted((ROOT / "assets").rglob("*.py")) + sorted((ROOT / "sensors").rglob("*.py"))]
    unsafe = [str(p.relative_to(ROOT)) for p in code
              if re.search(r"yaml\.(load|unsafe_load|full_load)\(|(?<![.\w])(eval|exec)\(", p.read_text())]
    assert unsafe == []


def test_servers_bind_loopback_only():
    assert "-h 127.0.0.1" in (ROOT / "Makefile").read_text()
