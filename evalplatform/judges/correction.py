"""Judge-corrected pass rate: Rogan-Gladen with the judge's measured sensitivity and specificity.

The interval carries the calibration's own uncertainty (delta method, and the Lee et al. 2025
adjusted interval); a judge barely better than chance is refused rather than corrected.
"""

from __future__ import annotations

from evalplatform.stats import judge_corrected_ci_lee2025, rogan_gladen_ci_delta

MIN_YOUDEN = 0.3   # stats.md 5.4: below Se + Sp = 1.3 the correction explodes


def corrected_pass_rate(k: int, n: int, sensitivity: float, specificity: float, n_pos: int, n_neg: int,
                        conf: float = 0.95, min_youden: float = MIN_YOUDEN) -> dict:
    """Correct k judge-PASS verdicts out of n test outputs.

    sensitivity = P(judge PASS | human PASS) measured on n_pos human-PASS items, specificity =
    P(judge FAIL | human FAIL) on n_neg human-FAIL items. Returns status "ok" with estimate, ci
    (delta method) and ci_lee2025, or status "refused" with the reason and the raw judged rate.
    """
    raw = k / n if n else None
    youden = sensitivity + specificity - 1
    base = {"raw_rate": raw, "k": k, "n": n, "sensitivity": sensitivity, "specificity": specificity,
            "n_pos": n_pos, "n_neg": n_neg, "youden": youden, "conf": conf}
    if n <= 0 or n_pos <= 0 or n_neg <= 0:
        return {**base, "status": "refused", "reason": "no test outputs or no calibration items of a class"}
    if youden < min_youden:
        return {**base, "status": "refused",
                "reason": f"judge too close to chance (Se + Sp - 1 = {youden:.3f} < {min_youden}); "
                          "report the raw judged rate as uncorrected"}
    a, d = round(sensitivity * n_pos), round(specificity * n_neg)
    delta = rogan_gladen_ci_delta(k, n, a, n_pos, d, n_neg, conf)
    return {**base, "status": "ok", "estimate": delta["theta"], "ci": delta["ci"], "se": delta["se"],
            "se_ignoring_calibration": delta["se_ignoring_calibration"],
            "ci_lee2025": judge_corrected_ci_lee2025(k, n, a, n_pos, d, n_neg, conf)}


def corrected_pass_rate_from_calibration(k: int, n: int, calibration: dict, conf: float = 0.95) -> dict:
    """The same, with Se/Sp and their denominators taken from a stored calibration (see latest_calibration)."""
    m = calibration["metrics"]
    se = m["judge_pass_on_human_pass"] / m["m_human_pass"] if m["m_human_pass"] else 0.0
    sp = m["judge_fail_on_human_fail"] / m["m_human_fail"] if m["m_human_fail"] else 0.0
    out = corrected_pass_rate(k, n, se, sp, m["m_human_pass"], m["m_human_fail"], conf)
    out["judge_identity"] = calibration.get("judge_identity")
    return out
