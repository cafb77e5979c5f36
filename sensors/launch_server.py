"""The warm launcher: Dagster and the code location imported once, one forked child per `evalplatform run`.

`evalplatform run` with the Dagster engine (evalplatform/launcher_client.py) starts this server on first use
and hands it each command over a Unix socket: its argv, working directory, environment and terminal (file
descriptors). The server only imports, never runs anything itself (so forking it is safe: no thread pool,
connection or lock exists yet), and forks a child per command. The child takes the command's world, builds the
definitions from the project as it is now (a suite added since the server started is there), runs the same
CLI in-process with the Dagster engine executing the job in this process (sensors.launch), and sends back the
exit code. Children are independent: commands run concurrently as they would as separate programs.

A server whose Python sources (evalplatform, the code location) or installed packages changed since it
started answers "stale" and exits; it also exits after `--idle` seconds with no command and no child, on
SIGTERM, and when its socket file is removed. It binds nothing but its socket, in a folder private to the user.
"""


import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from evalplatform.launcher_client import recv_message, send_message

# What a command would import on the cold path, imported here once (definitions itself is built per command).
PRELOAD = (
    "dagster", "dagster._core.storage.event_log.sqlite.sqlite_event_log",
    "dagster._core.storage.runs.sqlite.sqlite_run_storage", "dagster._core.execution.api",
    "evalplatform.cli.run", "evalplatform.cli.summary", "evalplatform.cli.reports", "evalplatform.pipeline",
    "evalplatform.decide", "evalplatform.report", "evalplatform.html_report", "evalplatform.run_view",
    "evalplatform.flakiness", "evalplatform.budget", "evalplatform.models.openai_http",
    "evalplatform.targets.dispatch", "assets.catalog", "assets.suite_assets", "assets.judges", "assets.traces",
    "assets.slos", "assets.executor", "sensors.launch", "sensors.instance", "sensors.dataset_changes",
    "sensors.run_failures", "matplotlib.pyplot", "aiohttp",
)


def _preload() -> None:
    import importlib
    import warnings

    os.environ.setdefault("MPLBACKEND", "Agg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except Exception as exc:  # an optional extra: the child imports it (or fails) as the cold path would
                print(f"preload {name}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


def _watched_files() -> list[Path]:
    """The sources the preloaded modules came from, and the installed packages' folder."""
    roots = [Path(__file__).resolve().parents[1]]
    import evalplatform

    roots.append(Path(evalplatform.__file__).resolve().parents[1])
    files = []
    for module in list(sys.modules.values()):
        f = getattr(module, "__file__", None)
        if f and f.endswith(".py") and any(Path(f).resolve().is_relative_to(r) for r in roots):
            files.append(Path(f))
    import dagster

    files.append(Path(dagster.__file__).resolve().parents[1])  # site-packages: changes on any install
    return sorted(set(files))


def _fingerprint(files: list[Path]) -> list:
    out = []
    for f in files:
        try:
            st = f.stat()
            out.append((str(f), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(f), None, None))
    return out


def _child(conn: socket.socket, fds: list[int], request: dict, project_root: str) -> int:
    """Become the command: its directory, environment and terminal; run it; its exit code."""
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.setpgid(0, 0)  # the client's Ctrl-C is forwarded as a closed connection (below), not a group signal
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ["EVALPLATFORM_PROJECT"] = project_root  # as the cold launcher is told
    if isinstance(request.get("umask"), int):
        os.umask(request["umask"])  # files the run writes get the command's permissions, not the server's
    # The command's PYTHONPATH (a Python target's package, say) is searched as the cold launcher would search it.
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
    sys.path[1:1] = extra

    def watch() -> None:
        # The client closed its end (Ctrl-C, killed): stop this command as its own Ctrl-C would, then for good.
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        import _thread

        _thread.interrupt_main()
        time.sleep(30.0)
        os._exit(130)

    threading.Thread(target=watch, name="client-watch", daemon=True).start()

    from evalplatform import engine
    from evalplatform.cli import main
    from sensors.launch import launch_request

    engine.IN_PROCESS_LAUNCHER = launch_request
    try:
        rc = main(list(request["argv"]))
    except KeyboardInterrupt:
        rc = 130
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return rc


def serve(sock_path: Path, pid_file: Path, idle_s: float) -> int:
    _preload()
    watched = _watched_files()
    started = _fingerprint(watched)
    project_root = os.environ.get("EVALPLATFORM_PROJECT", "")
    sock_path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(str(sock_path))
    finally:
        os.umask(old_umask)
    listener.listen(16)
    listener.settimeout(1.0)
    pid_file.write_text(str(os.getpid()))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    children: set[int] = set()
    last = time.monotonic()
    print(f"listening on {sock_path} (pid {os.getpid()}, {len(watched)} watched files)", flush=True)
    try:
        while not stop:
            for pid in list(children):
                try:
                    done, status, usage = os.wait4(pid, os.WNOHANG)
                except ChildProcessError:
                    done, status, usage = pid, None, None
                if done:
                    children.discard(pid)
                    last = time.monotonic()
                    if usage is not None:  # the command's peak memory (the pages it shares with this one included)
                        print(f"child {pid} ended: status {os.waitstatus_to_exitcode(status)}, peak RSS "
                              f"{usage.ru_maxrss / 1024:.0f} MB", flush=True)
            if not children and time.monotonic() - last > idle_s:
                print("idle: exiting", flush=True)
                break
            if not sock_path.exists():
                print("socket removed: exiting", flush=True)
                break
            try:
                conn, _ = listener.accept()
            except (socket.timeout, InterruptedError):
                continue
            last = time.monotonic()
            try:
                conn.settimeout(30.0)
                _, fds, _, _ = socket.recv_fds(conn, 1, 3)
                request = recv_message(conn)
            except (OSError, ValueError) as exc:
                print(f"bad hand-over: {exc}", flush=True)
                conn.close()
                continue
            if request is None or len(fds) != 3:
                for fd in fds:
                    os.close(fd)
                conn.close()
                continue
            if _fingerprint(watched) != started:
                send_message(conn, {"stale": True})
                for fd in fds:
                    os.close(fd)
                conn.close()
                print("sources changed: exiting", flush=True)
                break
            pid = os.fork()
            if pid == 0:
                listener.close()
                rc = 3
                try:
                    conn.settimeout(None)
                    send_message(conn, {"pid": os.getpid()})
                    rc = _child(conn, fds, request, project_root)
                except BaseException:  # on the command's terminal when it got that far, else in the server's log
                    import traceback

                    traceback.print_exc()
                finally:
                    try:
                        send_message(conn, {"rc": rc})
                    finally:
                        os._exit(0)
            children.add(pid)
            print(f"command {json.dumps(request['argv'][:1])} -> child {pid}", flush=True)
            for fd in fds:
                os.close(fd)
            conn.close()
    finally:
        listener.close()
        try:
            if pid_file.read_text() == str(os.getpid()):
                sock_path.unlink(missing_ok=True)
                pid_file.unlink(missing_ok=True)
        except OSError:
            pass
    # Children run on: each finishes its command and reports to its own client.
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sensors.launch_server", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--pid-file", required=True)
    parser.add_argument("--idle", type=float, default=600.0, help="seconds without a command before exiting")
    args = parser.parse_args(argv)
    return serve(Path(args.socket), Path(args.pid_file), args.idle)


if __name__ == "__main__":
    sys.exit(main())
