"""CLI plumbing: every verb is a lazily loaded click command, `--help` is cheap, usage errors are one line (exit 2),
errors keep their exit codes, and `--seed` reaches the run request."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest

from evalplatform.cli import main
from evalplatform.cli.lazy import VERBS
from evalplatform.errors import EvalPlatformError, InfraError
from tests.suite_helpers import make_project

HEAVY = ("polars", "pydantic", "litellm", "dagster", "great_expectations", "scipy", "statsmodels", "duckdb",
         "evalplatform.importers", "evalplatform.suite", "evalplatform.request", "evalplatform.history")
VERB_MODULES = tuple(module for module, _ in VERBS.values())
HELP_LINES = [[], *([verb] for verb in VERBS), ["history", "list"], ["history", "show"]]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(tmp_path))
    monkeypatch.setenv("EVALPLATFORM_HISTORY", str(tmp_path / "history.duckdb"))
    monkeypatch.delenv("EVALPLATFORM_DAGSTER_URL", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def test_every_verb_is_a_click_command_of_its_name():
    assert {"run", "ci", "gate", "import", "calibrate", "judges", "history", "schema", "baseline", "promote",
            "rollback"} <= set(VERBS)
    from evalplatform.cli import group

    ctx = click.Context(group)
    for verb in VERBS:
        command = group.get_command(ctx, verb)
        assert isinstance(command, click.Command) and command.name == verb


def test_python_dash_m_lists_every_verb():
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run([sys.executable, "-m", "evalplatform", "--help"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert all(verb in out.stdout for verb in VERBS)


@pytest.mark.parametrize("argv", HELP_LINES, ids=lambda a: " ".join(a) or "evalplatform")
def test_help_does_not_import_heavy_libraries(argv):
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    probe = ("import json, sys; from evalplatform.cli import main; rc = main(sys.argv[1:] + ['--help']); "
             f"print('PROBE', json.dumps([rc, sorted(m for m in {HEAVY + VERB_MODULES!r} if m in sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=env, timeout=60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("PROBE ")), None)
    assert line is not None, out.stdout + out.stderr
    rc, loaded = json.loads(line[len("PROBE "):])
    assert rc == 0
    # Only the verb asked about is imported (`history` for its subcommands), and nothing heavy.
    own = {VERBS[argv[0]][0]} if argv else set()
    assert set(loaded) == own, loaded
    assert "Usage:" in out.stdout


@pytest.mark.parametrize("verb", ["import", "gate"])
def test_an_unknown_format_is_exit_2_naming_the_known_ones(tmp_path, capsys, verb):
    from evalplatform.importers import FORMATS

    (tmp_path / "r.jsonl").write_text('{"case_id": "a", "outcome": "pass"}\n')
    (tmp_path / "p.yaml").write_text("rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.1}}\n")
    argv = {"import": ["import", "r.jsonl"], "gate": ["gate", "--no-record", "--results", "r.jsonl", "--policy",
                                                      "p.yaml"]}[verb]
    assert main([*argv, "--format", "excel"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--format" in lines[0] and "excel" in lines[0]
    assert all(name in lines[0] for name in FORMATS), lines[0]


@pytest.mark.parametrize("argv, needle", [
    (["gate", "--policy", "p.yaml", "--no-such-flag"], "--no-such-flag"),
    (["run"], "--suite"),
    (["run", "--suite", "mini", "--repeats", "many"], "many"),
    (["no-such-verb"], "no-such-verb"),
    ([], "a command is needed"),
    (["history", "show"], "RUN_ID"),
], ids=["unknown option", "missing option", "wrong type", "unknown verb", "no verb", "missing argument"])
def test_a_usage_error_is_one_line_and_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: evalplatform") and needle in lines[0], err
    assert "Traceback" not in err and out == ""


def test_an_error_of_the_base_class_is_infrastructure_not_a_decision(monkeypatch, capsys):
    import evalplatform.schemas as schemas

    def broken(folder):
        raise EvalPlatformError("something went wrong")

    monkeypatch.setattr(schemas, "export", broken)
    assert main(["schema", "--out", "x"]) == 3
    assert capsys.readouterr().err.strip() == "error: something went wrong"


def test_an_unexpected_exception_is_one_redacted_line_and_exit_3(monkeypatch, capsys):
    import evalplatform.schemas as schemas

    def broken(folder):
        raise RuntimeError("boom with sk-abcdefghijklmnopqrstuvwxyz0123456789 inside\nsecond line")

    monkeypatch.setattr(schemas, "export", broken)
    assert main(["schema", "--out", "x"]) == 3
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "internal failure: RuntimeError: boom" in lines[0] and "Traceback" not in err
    assert "sk-abcdefghijklmnopqrstuvwxyz0123456789" not in err


def test_debug_shows_the_traceback_of_an_unexpected_exception(monkeypatch, capsys):
    import evalplatform.schemas as schemas

    def broken(folder):
        raise RuntimeError("boom")

    monkeypatch.setattr(schemas, "export", broken)
    monkeypatch.setenv("EVALPLATFORM_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["schema", "--out", "x"])


def test_an_interrupt_is_exit_3(monkeypatch, capsys):
    import evalplatform.schemas as schemas

    def interrupted(folder):
        raise KeyboardInterrupt

    monkeypatch.setattr(schemas, "export", interrupted)
    assert main(["schema", "--out", "x"]) == 3
    assert capsys.readouterr().err.strip() == "error: interrupted"


class _Stop(InfraError):
    pass


@pytest.mark.parametrize("verb", ["run", "ci"])
def test_seed_reaches_the_run_request(tmp_path, monkeypatch, capsys, verb):
    import evalplatform.ci as ci
    import evalplatform.pipeline as pipeline

    root = make_project(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    seen = []

    def capture(*args, **kwargs):
        seen.append(next(a for a in args if type(a).__name__ == "RunRequest"))
        raise _Stop("stopped by the test")

    monkeypatch.setattr(pipeline, "scored_run", capture)
    monkeypatch.setattr(ci, "submit_and_wait", capture)
    argv = [verb, "--suite", "mini", "--engine", "direct", "--seed", "1234", "--model", "local/echo-upper"]
    if verb == "ci":
        argv += ["--url", "http://127.0.0.1:9"]
    assert main(argv) == 3
    assert "stopped by the test" in capsys.readouterr().err
    assert [r.seed for r in seen] == [1234]


def test_a_seed_the_history_cannot_store_is_bad_input_and_nothing_is_stored(tmp_path, monkeypatch, capsys):
    from evalplatform.history import HistoryStore

    root = make_project(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    argv = ["run", "--suite", "mini", "--engine", "direct", "--model", "local/echo-upper", "--seed", str(2 ** 63)]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--seed" in lines[0], lines
    assert HistoryStore(tmp_path / "history.duckdb").list_runs(status=None).height == 0
