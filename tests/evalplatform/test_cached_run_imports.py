"""A run served wholly from the response cache loads none of the heavy machinery (litellm, GX, Dagster, HTTP clients)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.evalplatform.test_pipeline_http import write_suite
from tests.helpers.openai_server import OpenAIServer

ROOT = Path(__file__).resolve().parents[2]
# What an identical re-run must not import: the call transports (it makes no call), the data-quality
# suite (the dataset was checked on the first run) and the orchestrator (the direct engine).
NOT_ON_A_CACHED_RUN = ("litellm", "openai", "aiohttp", "httpx", "great_expectations", "dagster", "scipy", "pyarrow",
                       "statsmodels", "matplotlib")


def _imported(stderr: str) -> set[str]:
    """Top-level packages named in `-X importtime` output (works though the CLI leaves through os._exit)."""
    out = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            out.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return out


@pytest.fixture
def server():
    srv = OpenAIServer(max_lifetime_s=120).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_an_identical_rerun_from_the_cache_imports_no_transport_gx_or_dagster(tmp_path, server, transport):
    root = tmp_path / "proj"
    rows = [{"id": f"ok-{i}", "category": "ok", "behaviour": "ok", "text": f"case ok {i}"} for i in range(6)]
    suite = write_suite(root, server, rows, target=f"  transport: {transport}")
    env = {**os.environ, "TEST_LOCAL_KEY": "sk-test-local-0123456789abcdef", "EVALPLATFORM_PROJECT": str(root),
           "EVALPLATFORM_HOME": str(tmp_path / "home"), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("EVALPLATFORM_HISTORY", None)
    argv = [sys.executable, "-X", "importtime", "-m", "evalplatform", "run", "--suite", str(suite),
            "--engine", "direct"]
    first = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    calls_made = sum(server.requests.values())
    assert calls_made == 6 * 2  # cases x repeats: the first run asked the model
    # The first run did load a transport: the probe can see an import when there is one.
    assert {"aiohttp"} <= _imported(first.stderr) if transport == "auto" else {"litellm"} <= _imported(first.stderr)
    if transport == "auto":
        # The lean transport's run never loads litellm: not to call, not to price, not to estimate.
        assert not {"litellm", "openai"} & _imported(first.stderr), sorted(_imported(first.stderr))

    again = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert sum(server.requests.values()) == calls_made  # nothing reached the wire
    loaded = _imported(again.stderr) & set(NOT_ON_A_CACHED_RUN)
    assert loaded == set(), f"an identical re-run from the cache imported {sorted(loaded)}"
    assert {"evalplatform", "polars"} <= _imported(again.stderr)  # the probe saw the run's own imports
