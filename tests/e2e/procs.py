"""Real servers for end-to-end tests: free ports, Dagster processes started in their own group, stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql_loaded(port: int) -> bool:
    """The webserver answers and every code location in its workspace has loaded."""
    body = json.dumps({"query": "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"})
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body.encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            entries = json.load(r)["data"]["workspaceOrError"]["locationEntries"]
            return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)
    except (OSError, KeyError, TypeError, ValueError):
        return False


def start(cmd: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    """Start `cmd` in a new process group (so stop() reaches its children), output to `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _descendants(pid: int) -> list[int]:
    """Every live process below `pid` (Dagster starts its code servers in sessions of their own)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM to the process group we started and to every process below it (by PID), SIGKILL to what
    outlives the timeout: nothing the test started is left running."""
    below = _descendants(proc.pid)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in below:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    deadline = time.monotonic() + timeout_s
    for pid in below:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_until(ready: Callable[[], bool], *, timeout_s: float, what: str, alive: subprocess.Popen | None = None,
               log: Path | None = None, poll_s: float = 0.5) -> None:
    """Poll `ready` until true; raise with the log's tail when the process dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        died = alive is not None and alive.poll() is not None
        if died or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            state = f"exited with {alive.returncode}" if died else f"not ready after {timeout_s:g}s"
            raise RuntimeError(f"{what} {state}:\n{tail}")
        time.sleep(poll_s)
