"""What a result path points at: directories and FIFOs are bad input (never opened), and gzipped result files
read transparently under the same size cap, with gzip named in every gzip problem."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import resource
import threading
from pathlib import Path

import polars as pl
import pytest

from evalplatform.cli import main
from evalplatform.errors import InputError
from evalplatform.importers import detect_format, import_results, load_results
from tests.evalplatform.importers.builders import (
    FIXTURES,
    inspect_log,
    inspect_sample,
    promptfoo_doc,
    promptfoo_row,
)

FLOOR = "rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.5}}\n"
REGRESSION = "rules:\n  - {id: reg, metric: pass_rate, bound: {max_drop: 0.05}}\n"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_HISTORY", str(tmp_path / "history.duckdb"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("EVALPLATFORM_IMPORT_MAX_BYTES", raising=False)


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal failure" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    return rc, errors[0] if len(errors) == 1 else err


def _message(line: str, path: Path) -> str:
    return line.replace(str(path), "<path>")


class FifoWatch:
    """A FIFO plus a watcher that notices (and unblocks) any reader that opens it, so a bug cannot hang the test."""

    def __init__(self, path: Path):
        self.path = path
        os.mkfifo(path)
        self.opened = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        for _ in range(20_000):  # bounded; each try is one failed non-blocking open
            if self._stop.wait(0.001):
                return
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no reader: nobody opened the FIFO
                    continue
                return
            self.opened = True
            os.close(fd)  # the reader sees end of file and carries on

    def stop(self) -> bool:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.opened


@pytest.mark.parametrize("kind", ["directory", "fifo"])
@pytest.mark.parametrize("verb", ["gate", "import", "baseline"])
def test_directory_or_fifo_is_bad_input_and_never_opened(tmp_path, capsys, kind, verb):
    target = tmp_path / "results.jsonl"
    watch = None
    if kind == "directory":
        target.mkdir()
    else:
        watch = FifoWatch(target)
    good = tmp_path / "good.jsonl"
    good.write_text('{"case_id": "a", "outcome": "pass"}\n')
    policy = tmp_path / "policy.yaml"
    policy.write_text(REGRESSION if verb == "baseline" else FLOOR)
    argv = {"gate": ["gate", "--no-record", "--results", str(target), "--policy", str(policy)],
            "import": ["import", str(target)],
            "baseline": ["gate", "--no-record", "--results", str(good), "--policy", str(policy),
                         "--baseline", str(target)]}[verb]
    rc, line = _run(capsys, argv)
    opened = watch.stop() if watch else False
    assert rc == 2, line
    # The test's own folder name holds these words too: look at the message without the path.
    assert str(target) in line and ("directory" if kind == "directory" else "FIFO") in _message(line, target), line
    if verb == "baseline":
        assert "--baseline" in line
    assert not opened, "the FIFO was opened for reading"


def test_fifo_is_refused_with_an_explicit_format(tmp_path):
    fifo = tmp_path / "r.jsonl"
    watch = FifoWatch(fifo)
    with pytest.raises(InputError, match="FIFO"):
        import_results([fifo], "jsonl", mapping={"case_id": "case_id", "outcome": "outcome"})
    assert not watch.stop()


# ---- gzip ----

def _gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data))
    return path


def _pf_bytes() -> bytes:
    rows = [promptfoo_row("q1", {"q": "a"}, passed=True, test_idx=0),
            promptfoo_row("q2", {"q": "b"}, passed=False, test_idx=1)]
    return json.dumps(promptfoo_doc(rows)).encode()


@pytest.mark.parametrize(("name", "fmt", "make"), [
    ("r.results.json.gz", "promptfoo", _pf_bytes),
    ("r.jsonl.gz", "promptfoo-jsonl", lambda: (FIXTURES / "promptfoo/failures.results.jsonl").read_bytes()),
    ("r.log.json.gz", "inspect", lambda: json.dumps(inspect_log([inspect_sample("a", 1, "C")])).encode()),
    ("r.csv.gz", "csv", lambda: b"case_id,outcome\na,pass\n"),
])
def test_gzipped_results_read_transparently(tmp_path, name, fmt, make):
    data = make()
    plain = tmp_path / name[:-3]
    plain.write_bytes(data)
    path = _gz(tmp_path / name, data)
    assert detect_format(path) == fmt
    got = load_results([path])
    assert got.formats == {str(path): fmt}
    want = import_results([plain])
    assert got.frame.drop("run_id", "suite").equals(want.drop("run_id", "suite"))
    # The suite named after the file drops both endings.
    assert got.frame["suite"][0] == want["suite"][0]


def test_gzipped_peer_fixture_gates_like_the_original_and_records_the_files_own_sha256(tmp_path, capsys):
    path = _gz(tmp_path / "failures.results.json.gz", (FIXTURES / "promptfoo/failures.results.json").read_bytes())
    policy = tmp_path / "policy.yaml"
    policy.write_text(FLOOR)
    rc = main(["gate", "--no-record", "--results", str(path), "--policy", str(policy), "--json", "d.json"])
    assert rc == 0, capsys.readouterr()
    decision = json.loads((tmp_path / "d.json").read_text())
    assert decision["inputs"]["results"][0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert decision["inputs"]["results"][0]["format"] == "promptfoo"


def test_truncated_gzip_is_one_line_exit_2(tmp_path, capsys):
    whole = gzip.compress((FIXTURES / "promptfoo/failures.results.jsonl").read_bytes())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    policy = tmp_path / "policy.yaml"
    policy.write_text(FLOOR)
    rc, line = _run(capsys, ["gate", "--no-record", "--results", str(path), "--policy", str(policy)])
    msg = _message(line, path)
    assert rc == 2 and str(path) in line and "gzip" in msg and "truncated" in msg, line


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("liar.json.gz", _pf_bytes(), "not gzip"),
    ("secret.results.json", gzip.compress(_pf_bytes()), "gzip-compressed"),
    ("secret.jsonl", gzip.compress(b'{"case_id": "a", "outcome": "pass"}\n'), "gzip-compressed"),
    ("garbage.jsonl.gz", b"\x1f\x8b\x08\x00" + b"\xff" * 64, "gzip"),
], ids=["gz-name-plain-content", "json-name-gzip-content", "jsonl-name-gzip-content", "corrupt-gzip"])
def test_gzip_that_lies_about_its_name_says_gzip(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    for fmt in ("auto", "promptfoo-jsonl" if "jsonl" in name else "promptfoo"):
        with pytest.raises(InputError) as err:
            import_results([path], fmt)
        line = str(err.value)
        assert str(path) in line and needle in _message(line, path) and "\n" not in line, line


def test_gzip_bomb_is_refused_by_the_cap_without_inflating_it(tmp_path, capsys, monkeypatch):
    # 1 GiB of zeros as 1024 gzip members of 1 MiB each (a valid gzip stream), about 1 MB on disk.
    member = gzip.compress(b"\0" * (1 << 20))
    path = tmp_path / "bomb.jsonl.gz"
    with path.open("wb") as fh:
        for _ in range(1024):
            fh.write(member)
    monkeypatch.setenv("EVALPLATFORM_IMPORT_MAX_BYTES", str(8 * 1024 * 1024))
    policy = tmp_path / "policy.yaml"
    policy.write_text(FLOOR)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rc, line = _run(capsys, ["gate", "--no-record", "--results", str(path), "--policy", str(policy)])
    msg = _message(line, path)
    assert rc == 2 and str(path) in line and "decompress" in msg and "limit" in msg, line
    # Inflating it all would add about 1 GiB; the cap stops at 8 MiB.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 200 * 1024  # KiB


def test_gzipped_eval_archive_and_parquet_read_too(tmp_path):
    from tests.evalplatform.importers.builders import write_eval_archive

    archive = write_eval_archive(tmp_path / "a.eval", inspect_log([inspect_sample("a", 1, "C")]))
    eval_gz = _gz(tmp_path / "a.eval.gz", archive.read_bytes())
    assert import_results([eval_gz])["outcome"].to_list() == ["pass"]
    pq = tmp_path / "t.parquet"
    pl.DataFrame({"case_id": ["a"], "outcome": ["fail"]}).write_parquet(pq)
    assert import_results([_gz(tmp_path / "t.parquet.gz", pq.read_bytes())])["outcome"].to_list() == ["fail"]
