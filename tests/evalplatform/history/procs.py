"""Starting and waiting on history_worker subprocesses from the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
WORKER = Path(__file__).with_name("history_worker.py")


def spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 600.0) -> None:
    """Wait until a worker signals through `path`; fail with its stderr if it died first.

    The timeout is a hang guard only, far above a loaded machine's start-up time.
    """
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"worker exited early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"worker did not signal {path.name} within {timeout}s")
        time.sleep(0.02)
