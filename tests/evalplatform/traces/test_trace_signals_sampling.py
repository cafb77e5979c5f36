"""Failure signals come from what traces state; hash sampling is deterministic, nested across rates, independent of
batch boundaries, within binomial tolerance, and oversamples flagged traces with the right inclusion probability."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl

from evalplatform.traces.sampling import draws, sample
from evalplatform.traces.schema import COLUMNS
from evalplatform.traces.signals import derive_signals


def _frame(rows: list[dict]) -> pl.DataFrame:
    t0 = dt.datetime(2026, 11, 30, 10, tzinfo=dt.timezone.utc)
    full = []
    for i, r in enumerate(rows):
        base = {k: None for k in COLUMNS}
        base.update(trace_id=f"t{i}", timestamp=t0 + dt.timedelta(minutes=i), input="q", output="a", status="ok",
                    signals=[], tags=[], is_regeneration=False)
        base.update(r)
        full.append(base)
    return pl.DataFrame(full, schema=COLUMNS)


def _signals(rows):
    return derive_signals(_frame(rows))["signals"].to_list()


def test_feedback_status_and_retrieval_signals():
    got = _signals([{"feedback": "down"}, {"feedback": "up"}, {"status": "error", "output": None},
                    {"retrieved_context": []}, {"retrieved_context": ["doc"]}, {"signals": ["abandoned"]}])
    assert got == [["thumbs_down"], [], ["error"], ["empty_retrieval"], [], ["abandoned"]]


def test_regenerate_and_rephrase_within_two_turns_of_the_same_session():
    got = _signals([
        {"session_id": "a", "input": "When does my trial end if it started on 2026-02-20?"},
        {"session_id": "a", "input": "What plans do you have?"},
        {"session_id": "a", "input": "Sorry, when does my trial end? It started on 2026-02-20"},   # rephrase, +2
        {"session_id": "b", "input": "Show me my invoice"},
        {"session_id": "b", "input": "show me my invoice!"},                                     # same message again
        {"session_id": "c", "input": "Reset my password"},
        {"session_id": "c", "input": "Reset my password", "is_regeneration": True},
        {"session_id": "d", "input": "When does my trial end if it started on 2026-02-20?"},
        {"session_id": "d", "input": "x"}, {"session_id": "d", "input": "y"},
        {"session_id": "d", "input": "When does my trial end? It started on 2026-02-20"},          # +3: too late
        {"session_id": None, "input": "Show me my invoice"},
        {"session_id": None, "input": "Show me my invoice"},                                     # no session: no link
    ])
    assert got[0] == ["rephrased"] and got[1] == [] and got[2] == []
    assert got[3] == ["regenerated"] and got[5] == ["regenerated"]
    assert got[7] == [] and got[11] == [] and got[12] == []


def test_sampling_is_deterministic_nested_and_independent_of_batches():
    ids = [f"trace-{i}" for i in range(20_000)]
    frame = pl.DataFrame({"trace_id": ids, "flagged": [False] * len(ids)})
    at10 = set(sample(frame, base_rate=0.10)["trace_id"])
    assert at10 == set(sample(frame, base_rate=0.10)["trace_id"])
    at20 = set(sample(frame, base_rate=0.20)["trace_id"])
    assert at10 < at20  # a trace drawn at 10% is drawn at 20% too
    halves = set(sample(frame[:7_000], base_rate=0.10)["trace_id"]) | set(sample(frame[7_000:], base_rate=0.10)[
        "trace_id"])
    assert halves == at10
    reversed_frame = frame.reverse()
    assert set(sample(reversed_frame, base_rate=0.10)["trace_id"]) == at10
    assert set(sample(frame, base_rate=0.10, salt="other")["trace_id"]) != at10


def test_rates_are_within_binomial_tolerance_and_flagged_traces_are_oversampled():
    n = 40_000
    flagged = [i % 10 == 0 for i in range(n)]  # 4,000 flagged
    frame = pl.DataFrame({"trace_id": [f"id-{i:06d}" for i in range(n)], "flagged": flagged})
    for base, fl in ((0.10, 1.0), (0.05, 0.5), (0.2, 0.2)):
        drawn = sample(frame, base_rate=base, flagged_rate=fl)
        for is_flagged, rate, total in ((True, fl, 4_000), (False, base, 36_000)):
            part = drawn.filter(pl.col("flagged") == is_flagged)
            assert part["inclusion_prob"].unique().to_list() == [rate]
            assert part["stratum"].unique().to_list() == ["flagged" if is_flagged else "unflagged"]
            sd = math.sqrt(total * rate * (1 - rate))
            assert abs(part.height - total * rate) <= 4 * sd + 1e-9, (base, fl, is_flagged, part.height)


def test_draws_are_uniform():
    u = draws([f"x{i}" for i in range(10_000)])
    assert 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 4 * math.sqrt(1 / 12 / 10_000)
