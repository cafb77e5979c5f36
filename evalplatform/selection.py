"""Tier selection: which cases a tier runs (regression set always, plus a reproducible stratified slice)."""

from __future__ import annotations

import polars as pl

from evalplatform.errors import InputError
from evalplatform.provenance import sha256_text
from evalplatform.suite import TierSpec


def _rank(seed: int, case_id: str) -> str:
    # sha256, not polars' hash: the slice must not change with a library upgrade.
    return sha256_text(f"{seed}:{case_id}")


def select_cases(cases: pl.DataFrame, tier: TierSpec, where: str = "tiers", file=None) -> pl.DataFrame:
    """Cases of a tier, in dataset order.

    With `per_stratum`, each stratum keeps the cases with the smallest hash of (seed, case_id):
    the slice is reproducible, and adding a case changes it by at most that case.
    """
    if tier.per_stratum is None:
        chosen = cases
    else:
        key = tier.stratify_by
        if key is not None and (key not in cases.columns or cases[key].null_count() == cases.height):
            raise InputError(file, f"{where}.stratify_by", f"stratifies by case field {key!r}, which no case sets "
                             f"({cases.height} cases)", f"add {key!r} to the cases, or remove stratify_by")
        always = pl.col("source").is_in(tier.include_sources) if tier.include_sources else pl.lit(False)
        # The slice is drawn from the cases not already included, so it does not shrink per stratum.
        pool = cases.filter(~always)
        ranked = pool.with_columns(
            pl.Series("__rank", [_rank(tier.seed, c) for c in pool["case_id"].to_list()], dtype=pl.Utf8),
            (pl.col(key).cast(pl.Utf8).fill_null("(none)") if key else pl.lit("all")).alias("__stratum"),
        )
        sliced = (
            ranked.with_columns(pl.col("__rank").rank("ordinal").over("__stratum").alias("__pos"))
            .filter(pl.col("__pos") <= tier.per_stratum)
            .get_column("case_id")
        )
        keep = pl.col("case_id").is_in(sliced.implode()) | always
        chosen = cases.filter(keep)
    if chosen.height == 0:
        raise InputError(file, where, "the tier selects no cases", "check include_sources / per_stratum")
    return chosen
