"""Hands a Dagster-engine `evalplatform run` to a warm launcher: the code location's imports paid once, not per run.

Starting the Dagster engine costs ~2.5 s before a run does anything (importing Dagster, the code location, the
storage libraries, an instance). The launcher server (`python -m sensors.launch_server`, the code location's
side) pays that once and then forks one child per command: the child applies this command's working
directory, environment and terminal (the file descriptors are passed over the socket), runs the very same CLI
in-process and sends back its exit code. Output, exit codes and errors are those of the cold path.

The library never imports the code location: it talks to the server over a Unix socket in a private folder
(0700, owned by this user), the way it talks to the cold launcher program. Anything that goes wrong on the
way (no server, a stale one, a failed start) falls back to the cold launcher; a server whose code changed
since it started says so and exits, and the next command starts a fresh one. The server stops after
EVALPLATFORM_LAUNCHER_IDLE_S seconds without a command (default 600); EVALPLATFORM_LAUNCHER=cold turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LAUNCHER_ENV = "EVALPLATFORM_LAUNCHER"          # "server" (default) or "cold"
IDLE_ENV = "EVALPLATFORM_LAUNCHER_IDLE_S"
DEFAULT_IDLE_S = 600.0
START_TIMEOUT_S = 120.0                          # a server that is not listening by then: cold path
_HEADER = 8                                      # bytes of the length prefix of each JSON message
LOG_MAX_BYTES = 1 << 20                          # a server's log is rotated at its start once over this


class Unavailable(Exception):
    """The server could not take the command; the caller runs it on the cold path."""


def enabled() -> bool:
    # Unix sockets with file-descriptor passing (Linux, macOS); elsewhere every command takes the cold path.
    if not (hasattr(socket, "AF_UNIX") and hasattr(socket, "send_fds")):
        return False
    return os.environ.get(LAUNCHER_ENV, "server").strip().lower() != "cold" and _idle_s() > 0


def _idle_s() -> float:
    try:
        return float(os.environ.get(IDLE_ENV, DEFAULT_IDLE_S))
    except ValueError:
        return DEFAULT_IDLE_S


def runtime_dir() -> Path:
    """A folder only this user can enter (sockets, pid files, the servers' logs)."""
    folder = Path(tempfile.gettempdir()) / f"evalplatform-launcher-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = folder.stat()
    except OSError as err:
        raise Unavailable(f"{folder}: {err.strerror or err}") from None
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise Unavailable(f"{folder} is not private to this user")
    return folder


def server_key(location: Path, project_root: Path) -> str:
    """One server per interpreter, code location and project (the code location reads the project at import)."""
    ident = json.dumps([sys.executable, str(location.resolve()), str(project_root.resolve())])
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def paths(key: str) -> dict[str, Path]:
    folder = runtime_dir()
    return {name: folder / f"{key}.{name}" for name in ("sock", "pid", "log", "lock")}


def send_message(sock: socket.socket, doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    sock.sendall(len(body).to_bytes(_HEADER, "big") + body)


def recv_message(sock: socket.socket) -> dict[str, Any] | None:
    """The next message, or None when the peer closed the connection first."""
    head = _recv_exact(sock, _HEADER)
    if head is None:
        return None
    body = _recv_exact(sock, int.from_bytes(head, "big"))
    return None if body is None else json.loads(body)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _connect(sock_path: Path) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(sock_path))
    except OSError:
        s.close()
        return None
    return s


def _server_env(env: dict[str, str]) -> dict[str, str]:
    """The server's own environment: this command's without the variables redaction treats as secrets (each
    command's child gets that command's full environment; the long-lived server holds none of its keys)."""
    from evalplatform.models.redact import is_secret_env

    return {k: v for k, v in env.items() if not is_secret_env(k)}


def process_alive(pid: int) -> bool:
    """Whether process `pid` is still running (a zombie, exited but not yet reaped, has finished)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal said it exists


def servers() -> list[dict[str, Any]]:
    """The launcher servers of this user: pid, whether it is alive, socket, log."""
    try:
        folder = runtime_dir()
    except Unavailable:
        return []
    found = []
    for pid_file in sorted(folder.glob("*.pid")):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        key = pid_file.name.split(".")[0]
        found.append({"key": key, "pid": pid, "alive": process_alive(pid), "socket": str(folder / f"{key}.sock"),
                      "log": str(folder / f"{key}.log"), "pid_file": str(pid_file)})
    return found


def _start_server(location: Path, project_root: Path, files: dict[str, Path], env: dict[str, str]) -> subprocess.Popen:
    """The server as a session of its own (a Ctrl-C in this terminal does not reach it), logging to its file."""
    env = _server_env(env)
    env["EVALPLATFORM_PROJECT"] = str(project_root)   # as the cold launcher is told
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(location), env.get("PYTHONPATH")]))
    try:  # one old log kept beside the new one: a few lines per command, never without bound
        if files["log"].stat().st_size > LOG_MAX_BYTES:
            files["log"].replace(files["log"].with_name(files["log"].name + ".1"))
    except OSError:
        pass
    with open(files["log"], "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sensors.launch_server", "--socket", str(files["sock"]),
             "--pid-file", str(files["pid"]), "--idle", str(_idle_s())],
            cwd=location, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def _server(location: Path, project_root: Path, clock=time.monotonic, sleep=time.sleep) -> socket.socket:
    """A connection to a running server for this code location and project, starting one when there is none."""
    import filelock

    files = paths(server_key(location, project_root))
    conn = _connect(files["sock"])
    if conn is not None:
        return conn
    # One starter at a time: concurrent first commands share the server the first of them starts.
    with filelock.FileLock(str(files["lock"]), timeout=START_TIMEOUT_S):
        conn = _connect(files["sock"])
        if conn is not None:
            return conn
        files["sock"].unlink(missing_ok=True)   # a server that died left its socket file behind
        proc = _start_server(location, project_root, files, dict(os.environ))
        deadline = clock() + START_TIMEOUT_S
        while clock() < deadline:
            conn = _connect(files["sock"])
            if conn is not None:
                return conn
            if proc.poll() is not None:
                raise Unavailable(f"the launcher server exited {proc.returncode} at start (log: {files['log']})")
            sleep(0.02)
        raise Unavailable(f"the launcher server did not listen within {START_TIMEOUT_S:g} s (log: {files['log']})")


def run_in_server(argv: list[str], location: Path, project_root: Path, timeout_s: float) -> int:
    """Run `evalplatform <argv>` in a child of the warm server, on this process's terminal; its exit code.

    Raises Unavailable when the command could not be handed over (nothing of it has run then). Once handed
    over, the command's own outcome is final: a child that dies without an exit code is an infrastructure
    failure (exit 3), never a silent re-run.
    """
    from evalplatform.errors import InfraError

    import filelock

    for _ in range(2):  # a stale server exits after saying so: the second try starts a fresh one
        try:
            conn = _server(location, project_root)
        except (OSError, filelock.Timeout) as err:  # an unwritable folder, a lock held too long: the cold path
            raise Unavailable(f"no launcher server: {err}") from None
        handed = None
        try:
            conn.settimeout(30.0)
            # The terminal goes first, as file descriptors: the child writes where this process would.
            socket.send_fds(conn, [b"F"], [0, 1, 2])
            umask = os.umask(0o022)
            os.umask(umask)
            send_message(conn, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask,
                                "client_pid": os.getpid()})
            ack = recv_message(conn)
            if ack is None:
                raise Unavailable("the launcher server closed the connection")
            if ack.get("stale"):
                continue
            handed = ack.get("pid")
            conn.settimeout(timeout_s)
            try:
                done = recv_message(conn)
            except socket.timeout:
                raise InfraError(f"the Dagster launcher did not finish within {timeout_s:g} s "
                                 "(EVALPLATFORM_RUN_TIMEOUT_S)") from None
            except OSError:
                done = None
            if done is None or not isinstance(done.get("rc"), int):
                raise InfraError(f"the Dagster launcher (pid {handed}) ended without an exit code; a run it had "
                                 "started is marked abandoned by the next command that writes the history")
            return done["rc"]
        except OSError as err:  # the hand-over itself failed: nothing of the command ran
            raise Unavailable(f"the launcher server did not take the command: {err}") from None
        finally:
            conn.close()
    raise Unavailable("the launcher server stayed stale after a restart")
