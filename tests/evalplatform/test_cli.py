"""CLI plumbing: the verbs are registered, the parser is cheap to build, `python -m evalplatform` works."""

from __future__ import annotations

import os
import subprocess
import sys

from evalplatform.cli import COMMANDS, build_parser
from evalplatform.cli_gate import FORMAT_NAMES
from evalplatform.importers import FORMATS


def test_every_verb_is_registered():
    build_parser()
    assert {"run", "ci", "gate", "import", "calibrate", "judges", "history", "schema"} <= set(COMMANDS)


def test_format_names_match_the_importer_registry():
    assert tuple(sorted(FORMATS)) == FORMAT_NAMES


def test_python_dash_m_lists_plugin_verbs():
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run([sys.executable, "-m", "evalplatform", "--help"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0 and "gate" in out.stdout and "calibrate" in out.stdout


def test_help_does_not_import_heavy_libraries():
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    probe = ("import sys; from evalplatform.cli import build_parser; build_parser(); "
             "print(sorted(m for m in ('litellm', 'dagster', 'great_expectations', 'scipy', 'statsmodels', "
             "'evalplatform.importers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
