"""Every published reference vector runs against evalplatform.stats by name, with its own tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import evalplatform.stats as stats

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "stats" / "reference_vectors.json"


def _load(path: Path) -> list[dict]:
    # A missing fixture is a failure at collection, never a silently shorter test run.
    return json.loads(path.read_text())


def close(expected, got, tol) -> bool:
    """Numbers within tol at every leaf (tol may be a per-key dict); strings, bools and None exactly."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and all(
            k in got and close(v, got[k], tol[k] if isinstance(tol, dict) else tol) for k, v in expected.items()
        )
    if isinstance(expected, (list, tuple)):
        return isinstance(got, (list, tuple)) and len(expected) == len(got) and all(
            close(e, g, tol) for e, g in zip(expected, got)
        )
    if isinstance(expected, (str, bool)) or expected is None:
        return type(got) is type(expected) and got == expected
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return False
    return abs(expected - got) <= tol


def run_vector(vector: dict) -> None:
    fn = getattr(stats, vector["function"])
    expected = vector["expected"]
    if isinstance(expected, dict) and "raises" in expected:
        with pytest.raises(ValueError):
            fn(**vector["inputs"])
        return
    got = fn(**vector["inputs"])
    assert close(expected, got, vector["tolerance"]), f"{vector['name']}: expected {expected}, got {got}"


FIXTURE_VECTORS = _load(FIXTURE)


def test_fixture_holds_all_vectors():
    assert len(FIXTURE_VECTORS) == 95
    assert len({v["name"] for v in FIXTURE_VECTORS}) == 95


@pytest.mark.parametrize("vector", FIXTURE_VECTORS, ids=lambda v: v["name"])
def test_reference_vector(vector):
    run_vector(vector)


def test_close_rejects_wrong_answers():
    assert not close([0.1, 0.2], [0.1, 0.3], 1e-6)
    assert not close({"verdict": "PASS"}, {"verdict": "FAIL"}, 0)
    assert not close({"alert": True}, {"alert": 1}, 0)
    assert not close(0.5, None, 1e-6)
    assert close({"a": 1.0, "b": [0.0]}, {"a": 1.0 + 1e-10, "b": [0.0], "extra": 3}, 1e-9)
