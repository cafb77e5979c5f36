"""Cases whose verdict changed between repeats of one run: per (case, scorer), with the counts of each outcome.

A verdict that changes while the model's output stayed the same (`judge_only`) is the judge's own noise, which
re-sampling the judge on every repeat exposes; a verdict that changes with the output is the target's.
"""

from __future__ import annotations

import polars as pl

SCHEMA = {
    "case_id": pl.Utf8, "scorer": pl.Utf8, "criterion": pl.Utf8, "tier_cost": pl.Utf8, "n_repeats": pl.Int32,
    "n_pass": pl.Int32, "n_fail": pl.Int32, "n_error": pl.Int32, "n_outputs": pl.Int32, "judge_only": pl.Boolean,
}


def flaky_cases(results: pl.DataFrame) -> pl.DataFrame:
    """One row per (case, scorer) whose outcomes differ between the run's repeats (skipped rows aside).

    `n_outputs` is the number of distinct outputs the repeats produced; `judge_only` says the verdict changed
    although every repeat judged the same output (a judge re-sampled, the target did not move).
    """
    if results.height == 0 or "repeat" not in results.columns:
        return pl.DataFrame(schema=SCHEMA)
    rows = results.filter(pl.col("outcome") != "skipped")
    per = rows.group_by("case_id", "scorer").agg(
        pl.col("criterion").first(), pl.col("tier_cost").first(),
        pl.col("repeat").n_unique().cast(pl.Int32).alias("n_repeats"),
        (pl.col("outcome") == "pass").sum().cast(pl.Int32).alias("n_pass"),
        (pl.col("outcome") == "fail").sum().cast(pl.Int32).alias("n_fail"),
        (pl.col("outcome") == "error").sum().cast(pl.Int32).alias("n_error"),
        pl.col("output_hash").drop_nulls().n_unique().cast(pl.Int32).alias("n_outputs"),
        pl.col("outcome").n_unique().alias("_kinds"),
    )
    flaky = per.filter((pl.col("n_repeats") > 1) & (pl.col("_kinds") > 1))
    return flaky.with_columns((pl.col("n_outputs") <= 1).alias("judge_only")).select(list(SCHEMA)) \
        .cast(SCHEMA).sort("case_id", "scorer")


def summary(flaky: pl.DataFrame) -> dict:
    """What a run's metadata and summary say: flaky cases in all, and per scorer (how many of them judge-only)."""
    by_scorer = {}
    for row in flaky.group_by("scorer").agg(pl.len().alias("n"), pl.col("judge_only").sum().alias("judge_only"))\
            .sort("scorer").iter_rows(named=True):
        by_scorer[row["scorer"]] = {"cases": int(row["n"]), "judge_only": int(row["judge_only"] or 0)}
    return {"n_flaky_cases": int(flaky["case_id"].n_unique()) if flaky.height else 0, "by_scorer": by_scorer}
