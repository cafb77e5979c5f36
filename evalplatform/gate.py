"""The suite's pass-rate floor: a case-level pass rate judged on its one-sided lower confidence bound."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import polars as pl

from evalplatform import stats

BLOCKING = ("FAIL", "INCONCLUSIVE", "NO_DATA", "ERROR")


def case_outcomes(results: pl.DataFrame) -> pl.DataFrame:
    """One row per (case_id, repeat): error if any scorer errored, else fail if any failed, else pass.

    Skipped rows do not count; a case whose rows are all skipped is `skipped`.
    """
    return (
        results.group_by(["case_id", "repeat"], maintain_order=True)
        .agg(
            (pl.col("outcome") == "error").any().alias("any_error"),
            (pl.col("outcome") == "fail").any().alias("any_fail"),
            (pl.col("outcome") == "pass").any().alias("any_pass"),
        )
        .with_columns(
            pl.when("any_error").then(pl.lit("error"))
            .when("any_fail").then(pl.lit("fail"))
            .when("any_pass").then(pl.lit("pass"))
            .otherwise(pl.lit("skipped")).alias("outcome")
        )
        .select("case_id", "repeat", "outcome")
    )


@dataclass
class GateResult:
    status: str  # PASS | FAIL | INCONCLUSIVE | NO_DATA | ERROR
    n: int
    k: int
    n_error: int
    estimate: float | None
    lower: float | None
    upper: float | None
    threshold: float
    confidence: float
    method: str
    reason: str

    @property
    def blocks(self) -> bool:
        return self.status in BLOCKING

    def as_dict(self) -> dict:
        return asdict(self)


def pass_rate_floor(results: pl.DataFrame, floor: float, confidence: float = 0.95,
                    max_error_rate: float = 0.05) -> GateResult:
    """Gate "the case pass rate is at least `floor`" at one-sided `confidence`.

    Errors are neither passes nor fails: they leave the denominator, and when more than
    `max_error_rate` of the cases errored the gate is ERROR (it blocks: fail closed).
    With repeats, cases are clusters (a cluster-robust bound), not n x repeats independent trials.
    """
    per = case_outcomes(results) if results.height else pl.DataFrame(
        schema={"case_id": pl.Utf8, "repeat": pl.Int32, "outcome": pl.Utf8})
    decided = per.filter(pl.col("outcome").is_in(["pass", "fail"]))
    n_units = per.filter(pl.col("outcome") != "skipped").height
    n_error = per.filter(pl.col("outcome") == "error").height
    n, k = decided.height, decided.filter(pl.col("outcome") == "pass").height

    def result(status, est=None, lo=None, hi=None, method="wilson", reason=""):
        return GateResult(status, n, k, n_error, est, lo, hi, floor, confidence, method, reason)

    if n == 0:
        why = "every case errored" if n_error else "no scored cases"
        return result("ERROR" if n_error else "NO_DATA", reason=why)
    if n_units and n_error / n_units > max_error_rate:
        return result("ERROR", k / n, reason=f"{n_error} of {n_units} cases errored "
                      f"(more than {max_error_rate:.0%}); errors never count as passes")
    repeats = per["repeat"].n_unique()
    if repeats > 1:
        per_case = decided.group_by("case_id").agg(
            (pl.col("outcome") == "pass").sum().alias("k"), pl.len().alias("n"))
        ks, ns = per_case["k"].to_list(), per_case["n"].to_list()
        c = stats.clustered_pass_rate(ks, ns, conf=confidence, alternative="greater")
        est, method = c["estimate"], "clustered"
        hi = stats.clustered_pass_rate(ks, ns, conf=2 * confidence - 1, alternative="two-sided")["upper"]
        # The cluster-robust SE is 0 when every case agrees with itself, which would let two all-pass
        # cases clear any floor: never claim more than Wilson on the number of cases allows.
        n_cases = len(ks)
        lo = min(c["lower"], stats.wilson_lower_bound(math.floor(est * n_cases + 1e-9), n_cases, confidence))
        hi = max(hi, stats.wilson_upper_bound(math.ceil(est * n_cases - 1e-9), n_cases, confidence))
    else:
        lo = stats.wilson_lower_bound(k, n, confidence)
        hi = stats.wilson_upper_bound(k, n, confidence)
        est, method = k / n, "wilson"
    if lo >= floor:
        return result("PASS", est, lo, hi, method, f"lower bound {lo:.3f} >= floor {floor:.3f}")
    if hi < floor:
        return result("FAIL", est, lo, hi, method, f"upper bound {hi:.3f} < floor {floor:.3f}")
    return result("INCONCLUSIVE", est, lo, hi, method,
                  f"floor {floor:.3f} lies inside [{lo:.3f}, {hi:.3f}]: more cases needed; blocks")
