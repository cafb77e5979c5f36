"""Which process owns a running run, and whether that process is still alive."""

from __future__ import annotations

import datetime as dt
import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True)
class Owner:
    """The process that began a run: pid, host name, and an identity that survives pid reuse."""

    pid: int
    host: str
    # "<boot id>:<start time in clock ticks since boot>" on Linux; None where /proc cannot tell.
    started: str | None


def _boot_id() -> str | None:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (field 3); None when there is no such process."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    return text[text.rfind(")") + 2:].split()


def process_started(pid: int) -> str | None:
    """The identity of process `pid` as it is now (see `Owner.started`)."""
    boot, fields = _boot_id(), _stat_fields(pid)
    if boot is None or fields is None or len(fields) < 20:
        return None
    return f"{boot}:{fields[19]}"  # field 22, starttime


def this_process() -> Owner:
    pid = os.getpid()
    return Owner(pid, socket.gethostname(), process_started(pid))


def gone_reason(pid: int, started: str | None) -> str | None:
    """Why process `pid` (with identity `started`) on this host no longer runs, or None if it does."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"its process {pid} is gone"
    except PermissionError:
        pass  # another user's process: it exists
    except OSError as err:
        if err.errno == errno.ESRCH:
            return f"its process {pid} is gone"
    fields = _stat_fields(pid)
    if fields is not None and fields[0] == "Z":
        return f"its process {pid} has exited"
    if started is not None:
        now = process_started(pid)
        if now is not None and now != started:
            boot = started.split(":", 1)[0]
            if boot != now.split(":", 1)[0]:
                return f"its process {pid} did not survive a restart of the host"
            return f"its process {pid} is gone (the pid now belongs to another process)"
    return None


def foreign_reason(host: str | None, started_at: dt.datetime, now: dt.datetime, limit: dt.timedelta) -> str | None:
    """A run of another host (or of an unrecorded process) counts as abandoned only after `limit`."""
    if now - started_at <= limit:
        return None
    hours = limit.total_seconds() / 3600
    where = f"on host {host}" if host else "by a process that was not recorded"
    return f"started {where} over {hours:g} h ago and never finished"
