"""The Dagster instance the CLI runs against: storage initialised once under a file lock, failures in one line.

Dagster's SQLite storages create their tables on first use, with no lock between processes: three
to six `evalplatform run` started at once on a fresh DAGSTER_HOME raced on `CREATE TABLE` and left
the folder broken for good ("table run_tags already exists", "alembic_version has more than one
head"). The first process to arrive initialises every shared storage while holding a lock in the
folder and leaves a marker; the others wait for the marker, and later processes skip the lock.
"""


import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
import filelock

from evalplatform.errors import InfraError

READY_MARKER = ".evalplatform-instance-ready"
INIT_LOCK = ".evalplatform-instance.lock"
INIT_TIMEOUT_S = 300.0


def _home() -> Path | None:
    value = os.environ.get("DAGSTER_HOME")
    return Path(value) if value else None


def broken_instance(home: Path, exc: BaseException) -> InfraError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InfraError(
        f"DAGSTER_HOME={home}: the Dagster instance storage is unusable ({type(exc).__name__}: {first}); "
        f"stop every Dagster process using it, move the folder aside (mv {home} {home}.broken) and run "
        "`make setup` to create a fresh one (the evaluation history lives in the DuckDB file, not here)")


def _touch_storages(instance: dg.DagsterInstance) -> None:
    """Create every storage shared between runs: run storage, the event log's index shard, schedules."""
    instance.get_runs(limit=1)
    instance.event_log_storage.get_asset_records()
    instance.schedule_storage.all_instigator_state()  # type: ignore[union-attr]


def ensure_instance_storage(home: Path | None = None, timeout_s: float = INIT_TIMEOUT_S) -> None:
    """Initialise DAGSTER_HOME's storage once, whoever calls first; a no-op once the marker exists."""
    home = home or _home()
    if home is None:
        return
    marker = home / READY_MARKER
    if marker.exists():
        return
    if not (home / "dagster.yaml").is_file():
        raise InfraError(f"DAGSTER_HOME={home}: no dagster.yaml in it (run `make setup`, which copies the "
                         "project's dagster.yaml there)")
    try:
        with filelock.FileLock(str(home / INIT_LOCK), timeout=timeout_s):
            if marker.exists():
                return
            try:
                with dg.DagsterInstance.from_config(str(home)) as instance:
                    _touch_storages(instance)
            except InfraError:
                raise
            except Exception as exc:
                raise broken_instance(home, exc) from exc
            marker.write_text("initialised by evalplatform\n", encoding="utf-8")
    except filelock.Timeout:
        raise InfraError(f"DAGSTER_HOME={home}: another process has been initialising the Dagster instance for "
                         f"over {timeout_s:g}s ({home / INIT_LOCK})") from None


@contextmanager
def cli_instance() -> Iterator[dg.DagsterInstance]:
    """The instance in DAGSTER_HOME (initialised once), or an ephemeral one when it is unset."""
    home = _home()
    if home is None:
        with dg.DagsterInstance.ephemeral() as instance:
            yield instance
        return
    ensure_instance_storage(home)
    try:
        instance = dg.DagsterInstance.get()
    except Exception as exc:
        raise broken_instance(home, exc) from exc
    with instance:
        yield instance
