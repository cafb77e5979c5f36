"""Deterministic hash sampling of traces: a base rate plus oversampled flagged traces, each with its inclusion probability.

Each trace id maps to a fixed number u in [0, 1) (BLAKE2b of the id, salted per suite); a trace is
sampled when u < its rate. The same trace gets the same decision in any batch and at any rate, and a
trace sampled at 10% is also sampled at 20% (rates nest). The rate is the trace's inclusion
probability, which the monitors weight by (Horvitz-Thompson).
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

DEFAULT_BASE_RATE = 0.10
DEFAULT_FLAGGED_RATE = 1.0
_SCALE = float(2**64)


def draws(trace_ids: list[str], salt: str = "") -> np.ndarray:
    """u in [0, 1) for each trace id: stable across processes, library versions and batch boundaries."""
    key = salt.encode("utf-8")[:64]
    out = np.empty(len(trace_ids), dtype=np.float64)
    blake = hashlib.blake2b
    for i, tid in enumerate(trace_ids):
        out[i] = int.from_bytes(blake(tid.encode("utf-8"), digest_size=8, key=key).digest(), "big") / _SCALE
    return out


def inclusion_probability(flagged: pl.Expr, base_rate: float, flagged_rate: float) -> pl.Expr:
    return pl.when(flagged).then(pl.lit(flagged_rate)).otherwise(pl.lit(base_rate))


def sample(frame: pl.DataFrame, *, base_rate: float = DEFAULT_BASE_RATE, flagged_rate: float = DEFAULT_FLAGGED_RATE,
           salt: str = "") -> pl.DataFrame:
    """The sampled traces of `frame` (which has trace_id and flagged), with `inclusion_prob` and `stratum`."""
    if not (0 < base_rate <= 1 and 0 < flagged_rate <= 1):
        raise ValueError("sampling rates must be in (0, 1]")
    u = pl.Series("__u", draws(frame["trace_id"].to_list(), salt))
    marked = frame.with_columns(u, inclusion_probability(pl.col("flagged"), base_rate, flagged_rate)
                                .alias("inclusion_prob"))
    return (marked.filter(pl.col("__u") < pl.col("inclusion_prob"))
            .with_columns(pl.when(pl.col("flagged")).then(pl.lit("flagged")).otherwise(pl.lit("unflagged"))
                          .alias("stratum"))
            .drop("__u"))
