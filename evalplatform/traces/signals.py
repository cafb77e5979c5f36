"""Failure signals derived from what a trace states: feedback, status, retrieval, and the next turns of its session.

thumbs_down      feedback is down (a feedback event or attribute)
error            the turn's status is error
empty_retrieval  retrieval ran and returned nothing
regenerated      one of the next two turns of the session regenerates this one (marked as a regeneration,
                 or the same message sent again)
rephrased        one of the next two turns says nearly the same thing in other words (word-set Jaccard
                 similarity at least REPHRASE_SIMILARITY, not identical)
abandoned        the app recorded the session as abandoned (explicit only)
Sessions are only seen within one batch: a retry that lands in the next file is not linked.
"""

from __future__ import annotations

import polars as pl

from evalplatform.traces.schema import SIGNALS

REPHRASE_SIMILARITY = 0.5
LOOKAHEAD_TURNS = 2


def _normalized(col: str) -> pl.Expr:
    return (pl.col(col).fill_null("").str.to_lowercase().str.replace_all(r"[^\w\s]", " ")
            .str.replace_all(r"\s+", " ").str.strip_chars())


def derive_signals(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the derived signals to `signals` (vocabulary order, no duplicates) and a boolean `flagged`."""
    frame = frame.with_row_index("__pos")
    # Only turns of sessions with more than one turn can be retried; the text work is done for those alone.
    multi = frame.filter(pl.col("session_id").is_not_null() & (pl.len().over("session_id") > 1))
    ordered = multi.with_columns(_normalized("input").alias("__norm"))
    ordered = ordered.with_columns(pl.col("__norm").str.split(" ").list.unique().alias("__words"))
    ordered = ordered.sort(["session_id", "turn", "timestamp", "trace_id"], nulls_last=True)
    # Sorted by session then time, "the k-th next turn of the same session" is a shift with a same-session
    # guard: no window per session (hundreds of thousands of tiny groups are slow to window over).
    regenerated = pl.lit(False)
    rephrased = pl.lit(False)
    for k in range(1, LOOKAHEAD_TURNS + 1):
        same_session = pl.col("session_id").shift(-k) == pl.col("session_id")
        nxt_norm = pl.col("__norm").shift(-k)
        nxt_regen = pl.col("is_regeneration").shift(-k).fill_null(False)
        nxt_words = pl.col("__words").shift(-k)
        same = nxt_norm == pl.col("__norm")
        inter = pl.col("__words").list.set_intersection(nxt_words).list.len()
        union = pl.col("__words").list.set_union(nxt_words).list.len()
        similar = ~same & (inter >= REPHRASE_SIMILARITY * union) & (union > 0)
        regenerated = regenerated | (same_session & (same | nxt_regen)).fill_null(False)
        rephrased = rephrased | (same_session & similar).fill_null(False)
    retried = ordered.select("__pos", regenerated.fill_null(False).alias("__regenerated"),
                             rephrased.fill_null(False).alias("__rephrased"))
    derived = frame.join(retried, on="__pos", how="left").with_columns(
        pl.col("__regenerated").fill_null(False), pl.col("__rephrased").fill_null(False)).sort("__pos")
    flags = {
        "thumbs_down": pl.col("feedback") == "down",
        "regenerated": pl.col("__regenerated"),
        "rephrased": pl.col("__rephrased"),
        "empty_retrieval": pl.col("retrieved_context").is_not_null() & (pl.col("retrieved_context").list.len() == 0),
        "error": pl.col("status") == "error",
    }
    derived_list = pl.concat_list([
        pl.when(expr.fill_null(False)).then(pl.lit(name)).otherwise(pl.lit(None, dtype=pl.Utf8))
        for name, expr in flags.items()
    ])
    combined = pl.concat_list([pl.col("signals"), derived_list]).list.drop_nulls().list.unique()
    # Vocabulary order, so equal sets of signals compare and print equally.
    ordered_signals = pl.concat_list([
        pl.when(combined.list.contains(s)).then(pl.lit(s)).otherwise(pl.lit(None, dtype=pl.Utf8)) for s in SIGNALS
    ]).list.drop_nulls()
    out = derived.with_columns(ordered_signals.alias("signals"))
    return out.with_columns((pl.col("signals").list.len() > 0).alias("flagged")).drop(
        "__pos", "__regenerated", "__rephrased")
