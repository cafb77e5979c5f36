"""`evalplatform launcher`: list or stop the Dagster engine's warm launcher servers (evalplatform/launcher_client.py)."""

from __future__ import annotations

import os
import signal
import time

import click

from evalplatform.cli.output import echo


@click.command("launcher")
@click.argument("action", type=click.Choice(["status", "stop"]), default="status")
@click.option("--all", "every", is_flag=True, help="every server of this user, not only this project's")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="with stop: seconds to wait for each server to exit")
def command(action: str, every: bool, wait_s: float) -> int:
    """List the launcher servers of this project (or, with --all, of this user), or stop them by their PIDs.

    A server exits by itself after EVALPLATFORM_LAUNCHER_IDLE_S seconds without a command; `stop` ends it now.
    Commands it is running go on to their end (each is a process of its own)."""
    from evalplatform.launcher_client import process_alive, server_key, servers
    from evalplatform.project import code_location_root, find_project

    found = [s for s in servers() if s["alive"]]
    if not every:
        project = find_project()
        location = code_location_root(project)
        key = server_key(location, project.root) if location is not None else None
        found = [s for s in found if s["key"] == key]
    if action == "status":
        for s in found:
            echo(f"pid {s['pid']}  socket {s['socket']}  log {s['log']}")
        echo(f"{len(found)} launcher server(s) running")
        return 0
    for s in found:
        try:
            os.kill(s["pid"], signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + wait_s
    left = [s for s in found if process_alive(s["pid"])]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [s for s in left if process_alive(s["pid"])]
    echo(f"stopped {len(found) - len(left)} launcher server(s)" + (f"; still running: {', '.join(str(s['pid']) for s in left)}"
                                                                 if left else ""))
    return 0 if not left else 3

