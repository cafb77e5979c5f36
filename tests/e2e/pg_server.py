"""A throwaway PostgreSQL server for tests: initdb into a temp folder, a free port on 127.0.0.1, stopped by PID.

Debian's `postgresql` package puts the server under /usr/lib/postgresql/<version>/bin, off PATH.
PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user the
package creates, in a folder of /tmp it owns (pytest's tmp folders are private to root).
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.e2e.procs import free_port

INSTALL_HINT = "`.ci/run` installs it on CI machines (apt-get install -y postgresql)"
SUPERUSER = "evalplatform"


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str
    db: str
    pid: int
    log: Path

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.postgres.yaml reads."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USER": self.user,
                "DAGSTER_PG_PASSWORD": self.password, "DAGSTER_PG_DB": self.db}

    def connect(self):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                dbname=self.db, connect_timeout=10)


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", path.parent.name)) or (0,)


def find_pg_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: from PATH, else the newest Debian install."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [p.parent for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)]
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def why_unusable() -> str | None:
    """Why no server can be started here, in one line, or None when it can."""
    if find_pg_bin() is None:
        return f"PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql/*/bin); {INSTALL_HINT}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return f"running as root, and there is no `postgres` system user to run the server as; {INSTALL_HINT}"
    return None


def _run(cmd: list[str], *, cwd: Path, log: Path, timeout_s: float) -> None:
    # Output to a file, not a pipe: pg_ctl's server child would otherwise keep a pipe open.
    with open(log, "ab") as out:
        done = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited {done.returncode}:\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def postgres_server(db: str = "dagster", timeout_s: float = 60.0) -> Iterator[PgServer]:
    """A running server with database `db` and a password-protected superuser; removed on exit."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", db):
        raise ValueError(f"database name {db!r}: lower-case letters, digits and _ only")
    reason = why_unusable()
    if reason:
        raise RuntimeError(reason)
    bin_dir = find_pg_bin()
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="evalplatform-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, sockets, log, ctl_log = root / "data", root / "sockets", root / "server.log", root / "pg_ctl.log"
    password = secrets.token_hex(16)
    pid = 0
    try:
        sockets.mkdir()
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        if as_user:
            for p in (sockets, pwfile):
                os.chown(p, owner.pw_uid, owner.pw_gid)
        # TCP connections need the password (what Dagster sends); the unix socket in our folder is trusted.
        _run(as_user + [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, f"--pwfile={pwfile}",
                        "--auth-host=scram-sha-256", "--auth-local=trust", "--encoding=UTF8", "--locale=C",
                        "--no-sync"], cwd=root, log=ctl_log, timeout_s=timeout_s)
        pwfile.unlink()
        port = free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off -c max_connections=200"
        _run(as_user + [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
                        "-t", str(int(timeout_s)), "start"], cwd=root, log=ctl_log, timeout_s=timeout_s + 15)
        pid = int((data / "postmaster.pid").read_text().split()[0])
        server = PgServer("127.0.0.1", port, SUPERUSER, password, "postgres", pid, log)
        con = server.connect()
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{db}"')  # an identifier (checked above): no placeholder exists
        finally:
            con.close()
        yield PgServer("127.0.0.1", port, SUPERUSER, password, db, pid, log)
    finally:
        if pid:
            try:
                _run(as_user + [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"],
                     cwd=root, log=ctl_log, timeout_s=45)
            except (RuntimeError, subprocess.TimeoutExpired):
                try:
                    os.kill(pid, signal.SIGKILL)  # the postmaster we started, by its PID
                except ProcessLookupError:
                    pass
        shutil.rmtree(root, ignore_errors=True)
