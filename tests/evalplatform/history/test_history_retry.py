"""The history's waits run on an injected clock and sleep: what is asserted is the attempts, never elapsed time."""

from __future__ import annotations

import duckdb
import pytest

from evalplatform.errors import InfraError
from evalplatform.history import HistoryStore
from tests.evalplatform.history.procs import wait_for


class FakeTime:
    """A clock that moves only when the store sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def _store(path, fake: FakeTime, **timeouts) -> HistoryStore:
    return HistoryStore(path, clock=fake.clock, sleep=fake.sleep, **timeouts)


def _held(monkeypatch, times: int | None) -> list[str]:
    """duckdb.connect fails with a lock conflict `times` times (None: always); returns the attempts."""
    attempts: list[str] = []
    real = duckdb.connect

    def connect(path, read_only=False, **kw):
        attempts.append("ro" if read_only else "rw")
        if times is None or len(attempts) <= times:
            raise duckdb.IOException('IO Error: Could not set lock on file "x": Conflicting lock is held')
        return real(path, read_only=read_only, **kw)

    monkeypatch.setattr(duckdb, "connect", connect)
    return attempts


def test_a_writer_retries_the_open_until_the_holder_lets_go(tmp_path, monkeypatch):
    fake = FakeTime()
    store = _store(tmp_path / "h.duckdb", fake, connect_timeout=60)
    attempts = _held(monkeypatch, times=4)
    store.begin_run({"run_id": "r1", "suite": "demo"})
    assert attempts == ["rw"] * 5 and len(fake.sleeps) == 4
    assert store.get_run("r1")["status"] == "running"


@pytest.mark.parametrize("read_only", [False, True])
def test_the_open_gives_up_when_its_budget_is_spent(tmp_path, monkeypatch, read_only):
    fake = FakeTime()
    path = tmp_path / "h.duckdb"
    HistoryStore(path).begin_run({"run_id": "r1", "suite": "demo"})
    store = _store(path, fake, connect_timeout=60, read_timeout=30)
    attempts = _held(monkeypatch, times=None)
    budget = 30 if read_only else 60
    with pytest.raises(InfraError, match=rf"held by another process \(retried {budget}s\)"):
        store.get_run("r1") if read_only else store.begin_run({"run_id": "r2", "suite": "demo"})
    assert len(attempts) == len(fake.sleeps) + 1 and len(attempts) > 5
    assert sum(fake.sleeps) <= budget < sum(fake.sleeps) + 0.2 * 1.5 + 1e-9
    assert max(fake.sleeps) <= 0.2 * 1.5  # the wait is capped, so a freed file is noticed soon


def test_a_writer_waits_for_the_file_lock_on_the_injected_clock(tmp_path, workers):
    path = tmp_path / "h.duckdb"
    marker = tmp_path / "locked"
    holder = workers("hold_lock", str(path) + ".lock", str(marker))
    wait_for(marker, holder)
    fake = FakeTime()
    store = _store(path, fake, lock_timeout=45)
    with pytest.raises(InfraError, match=r"h\.duckdb\.lock: another writer has held the history lock for over 45s"):
        store.begin_run({"run_id": "r1", "suite": "demo"})
    assert len(fake.sleeps) > 5 and sum(fake.sleeps) <= 45 < sum(fake.sleeps) + 0.2 * 1.5 + 1e-9
    holder.kill()
    holder.wait()
    store.begin_run({"run_id": "r1", "suite": "demo"})
    assert store.get_run("r1")["status"] == "running"


class _TornConnection:
    """A read-only connection that meets a writer's checkpoint: its queries fail with DuckDB's short-read error."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def sql(self, *args, **kwargs):
        raise duckdb.IOException('IO Error: Could not read enough bytes from file "history.duckdb": attempted to '
                                 'read 262144 bytes from location 6041600')

    execute = sql


def _torn_reads(monkeypatch, times: int | None) -> list[str]:
    """Read-only connections whose queries fail `times` times (None: always); returns the connections made."""
    made: list[str] = []
    real = duckdb.connect

    def connect(path, read_only=False, **kw):
        con = real(path, read_only=read_only, **kw)
        if read_only:
            made.append("ro")
            if times is None or len(made) <= times:
                return _TornConnection(con)
        return con

    monkeypatch.setattr(duckdb, "connect", connect)
    return made


def test_a_read_that_meets_a_writers_checkpoint_is_repeated_on_a_new_connection(tmp_path, monkeypatch):
    fake = FakeTime()
    store = _store(tmp_path / "h.duckdb", fake)
    store.begin_run({"run_id": "r1", "suite": "demo"})
    store._schema_current = True  # the schema check itself reads: keep the torn reads on the query under test
    made = _torn_reads(monkeypatch, 2)
    assert store.list_runs(limit=5, status=None)["run_id"].to_list() == ["r1"]
    assert made == ["ro", "ro", "ro"] and fake.sleeps == [0.05, 0.1]


def test_a_file_that_stays_unreadable_is_still_an_infrastructure_error(tmp_path, monkeypatch):
    fake = FakeTime()
    store = _store(tmp_path / "h.duckdb", fake)
    store.begin_run({"run_id": "r1", "suite": "demo"})
    store._schema_current = True
    made = _torn_reads(monkeypatch, None)
    with pytest.raises(InfraError, match="history read failed: IO Error: Could not read enough bytes"):
        store.list_runs(limit=5, status=None)
    assert len(made) == 4
