"""Discrimination, measured: known degradations injected into a recorded run, the share the policy catches."""

from __future__ import annotations

import pytest

from evalplatform.discrimination import discriminate, discrimination_check, discrimination_table
from evalplatform.errors import InputError
from evalplatform.history import HistoryStore
from evalplatform.models.local_provider import register_app
from evalplatform.pipeline import scored_run
from evalplatform.project import Project
from evalplatform.request import RunRequest
from tests.suite_helpers import make_project


def perfect_echo(messages, params):
    """Passes every mini case: echoes the text, upper-cased, with the words the cases look for."""
    text = messages[-1]["content"].split("Say: ", 1)[-1].strip()
    return text.upper().replace("GOODBYE", "HELLO GOODBYE").replace("BOB@EXAMPLE.COM", "B***@EXAMPLE.COM")


register_app("perfect-echo", perfect_echo)


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = make_project(tmp_path)
    suite = root / "datasets" / "mini" / "suite.yaml"
    suite.write_text(suite.read_text() + "mutators: [empty_reply]\n")
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    return Project(root)


def _run(project, model="local/echo-upper", tier="nightly"):
    run, _ = scored_run(project, RunRequest(suite="mini", model=model, tier=tier, repeats=1))
    return run.run_id


def test_flipped_and_mutated_outputs_are_caught_per_dose_and_stored(project):
    run_id = _run(project)
    result = discriminate(project, "mini", run_id, fractions=(0.3, 1.0), draws=6, seed=3)
    flips = [d for d in result.doses if d.degradation == "flip"]
    assert [d.fraction for d in flips] == [0.3, 1.0]
    assert flips[1].caught == 6 and flips[1].interval[0] > 0.5  # every passing output broken: always caught
    assert all(0 <= d.caught <= d.draws == 6 for d in result.doses)
    assert {d.degradation for d in result.doses} == {"flip", "empty_reply"}
    assert result.score == pytest.approx(sum(d.rate for d in flips) / 2)
    stored = HistoryStore(project.history_path).discriminations("mini")
    assert stored[0]["run_id"] == run_id and stored[0]["results"]["doses"][0]["caught"] == flips[0].caught
    assert stored[0]["score"] == pytest.approx(result.score)
    text = discrimination_table(result)
    assert "flip" in text and "empty_reply" in text and "discrimination score" in text


def test_the_same_seed_gives_the_same_measurement(project):
    run_id = _run(project)
    a = discriminate(project, "mini", run_id, fractions=(0.5,), draws=5, seed=9, record=False)
    b = discriminate(project, "mini", run_id, fractions=(0.5,), draws=5, seed=9, record=False)
    assert [d.caught for d in a.doses] == [d.caught for d in b.doses]
    assert [d.outputs_broken for d in a.doses] == [d.outputs_broken for d in b.doses]


def test_a_run_at_100_percent_gets_the_ceiling_warning_and_the_check_fails(project):
    run_id = _run(project, model="local/perfect-echo")
    result = discriminate(project, "mini", run_id, fractions=(0.5,), draws=3, record=False)
    assert result.passing_outputs == result.all_outputs
    assert any("cannot see regressions above it" in w for w in result.warnings)
    ok, text = discrimination_check(result)
    assert not ok and "ceiling" in text


def test_bad_requests_are_one_line_input_errors(project):
    with pytest.raises(InputError, match="no complete run"):
        discriminate(project, "mini")
    run_id = _run(project)
    for bad in ((0.0,), (1.5,), ("x",), ()):
        with pytest.raises(InputError, match="--fraction"):
            discriminate(project, "mini", run_id, fractions=bad, record=False)
    with pytest.raises(InputError, match="--draws"):
        discriminate(project, "mini", run_id, draws=0, record=False)
    with pytest.raises(InputError, match="no recorded run"):
        discriminate(project, "mini", "nope", record=False)
