"""Fixtures for the history tests: worker processes that are always cleaned up."""

from __future__ import annotations

import subprocess

import pytest

from tests.evalplatform.history.procs import spawn


@pytest.fixture
def workers():
    """Start workers with `spawn`; any still running at the end of the test are killed."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = spawn(*args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
