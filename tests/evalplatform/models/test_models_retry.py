"""Backoff and Retry-After parsing: waits grow, stay jittered and never exceed the cap."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from evalplatform.models.retry import backoff_s, classify, retry_after_seconds


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    rng = random.Random(0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 10.0), (9, 10.0)]:
        waits = [backoff_s(attempt, 0.5, 10.0, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert max(waits) - min(waits) > ceiling / 10  # jittered, not lockstep


def test_retry_after_overrides_backoff_but_not_the_cap():
    assert backoff_s(1, 0.01, 20.0, retry_after_s=3.0) == 3.0
    assert backoff_s(1, 0.01, 2.0, retry_after_s=30.0) == 2.0


@pytest.mark.parametrize("headers,expected", [
    ({"retry-after": "2"}, 2.0),
    ({"retry-after": "0.5"}, 0.5),
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ({"retry-after": "soon"}, None),
    ({}, None),
    (None, None),
])
def test_retry_after_header_forms(headers, expected):
    assert retry_after_seconds(headers) == expected


def test_retry_after_http_date():
    now = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)
    when = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds({"retry-after": when}, now=now) == 30.0
    assert retry_after_seconds({"retry-after": when}, now=now + timedelta(minutes=5)) == 0.0  # past: no wait


def test_plain_exceptions_are_not_retried_but_connection_and_timeout_are():
    assert classify(ValueError("bad")).retryable is False
    assert classify(ConnectionRefusedError("refused")).retryable is True
    assert classify(TimeoutError("slow")).kind == "timeout"
