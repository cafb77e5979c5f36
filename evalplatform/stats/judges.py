"""Judge calibration against human labels: agreement, per-class rates, Rogan-Gladen correction and its intervals."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from . import _checks as chk
from .intervals import wilson_interval

_ORDER = ("FAIL", "PASS")


def _judge_table(table: Sequence[Sequence[int]], order: Sequence[str]) -> np.ndarray:
    """2x2 counts, judge verdicts on rows and human labels on columns, reordered to [FAIL, PASS]."""
    if sorted(order) != sorted(_ORDER):
        raise chk.StatsInputError(f"order: must name FAIL and PASS once each, got {list(order)!r}")
    arr = np.asarray(table, dtype=float)
    if arr.shape != (2, 2) or not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr != np.round(arr)):
        raise chk.StatsInputError("table_judge_rows_human_cols: must be a 2x2 table of non-negative integer counts")
    if arr.sum() == 0:
        raise chk.StatsInputError("table_judge_rows_human_cols: the table is empty")
    idx = [list(order).index(label) for label in _ORDER]
    return arr[np.ix_(idx, idx)]


def agreement_statistics(
    table_judge_rows_human_cols: Sequence[Sequence[int]], order: Sequence[str] = _ORDER, conf: float = 0.95
) -> dict:
    """Judge-vs-human agreement: raw agreement, Cohen's kappa with its large-sample SE and CI, Gwet's AC1, PABAK.

    Gate a judge on kappa (with its CI) and on FAIL recall (judge_confusion_metrics); agreement,
    AC1 and PABAK reward agreement on the majority class, so a judge that always says PASS scores
    high on them. Kappa and its SE (Fleiss, Cohen & Everitt 1969) come from statsmodels.
    """
    from statsmodels.stats.inter_rater import cohens_kappa

    t = _judge_table(table_judge_rows_human_cols, order)
    conf = chk.level("conf", conf)
    n = t.sum()
    p = t / n
    p_o = float(np.trace(p))
    with np.errstate(invalid="ignore"):
        result = cohens_kappa(t, return_results=True)
    kappa = float(result.kappa) if np.isfinite(result.kappa) else 0.0
    # A degenerate margin makes the variance round to a tiny negative number; it is 0.
    se_kappa = math.sqrt(max(0.0, float(result.var_kappa)))
    z = chk.z_two_sided(conf)
    fail_prevalence = (p[0, :].sum() + p[:, 0].sum()) / 2
    p_e_ac1 = 2 * fail_prevalence * (1 - fail_prevalence)
    return {
        "n": int(n),
        "agreement": p_o,
        "kappa": kappa,
        "se_kappa": se_kappa,
        "kappa_ci": [kappa - z * se_kappa, kappa + z * se_kappa],
        "ac1": float((p_o - p_e_ac1) / (1 - p_e_ac1)),
        "pabak": 2 * p_o - 1,
    }


def judge_confusion_metrics(
    table_judge_rows_human_cols: Sequence[Sequence[int]], order: Sequence[str] = _ORDER, conf: float = 0.95
) -> dict:
    """Per-class judge rates with Wilson intervals, FAIL as the class of interest.

    fail_recall (the judge's TNR) is what to gate a judge on: its lower bound must clear a floor,
    on at least ~50 human-FAIL items. Rates with an empty denominator are None.
    """
    t = _judge_table(table_judge_rows_human_cols, order)
    conf = chk.level("conf", conf)
    tp, fp, fn, tn = (int(t[0, 0]), int(t[0, 1]), int(t[1, 0]), int(t[1, 1]))

    def rate(k: int, m: int) -> tuple[float | None, list[float]]:
        return (k / m if m else None), wilson_interval(k, m, conf)

    recall, recall_ci = rate(tp, tp + fn)
    precision, precision_ci = rate(tp, tp + fp)
    tpr_pass, tpr_pass_ci = rate(tn, tn + fp)
    f1_denominator = 2 * tp + fp + fn
    return {
        "agreement": (tp + tn) / (tp + fp + fn + tn),
        "fail_recall": recall,
        "fail_recall_ci": recall_ci,
        "fail_precision": precision,
        "fail_precision_ci": precision_ci,
        "fail_f1": 2 * tp / f1_denominator if f1_denominator else None,
        "pass_recall": tpr_pass,
        "pass_recall_ci": tpr_pass_ci,
        "balanced_accuracy": (recall + tpr_pass) / 2 if recall is not None and tpr_pass is not None else None,
    }


def _youden(sensitivity: float, specificity: float) -> float:
    j = sensitivity + specificity - 1
    if j <= 0:
        raise chk.StatsInputError(
            f"sensitivity_pass + specificity_pass: the judge must beat chance (Se + Sp > 1), got {sensitivity + specificity:.4g}"
        )
    return j


def rogan_gladen(q_observed_pass: float, sensitivity_pass: float, specificity_pass: float, clip: bool = True) -> float:
    """Judge-corrected pass rate theta = (q + Sp - 1)/(Se + Sp - 1) (Rogan & Gladen 1978).

    Se = P(judge PASS | human PASS), Sp = P(judge FAIL | human FAIL) from a calibration set.
    Use for any judged pass rate reported as a quality number; clipped to [0, 1] unless clip=False.
    Raises ValueError unless Se + Sp > 1.
    """
    q = chk.probability("q_observed_pass", q_observed_pass)
    se = chk.probability("sensitivity_pass", sensitivity_pass)
    sp = chk.probability("specificity_pass", specificity_pass)
    theta = (q + sp - 1) / _youden(se, sp)
    return chk.clip01(theta) if clip else theta


def _calibration_counts(judge_pass, n_test, judge_pass_on_human_pass, m_human_pass, judge_fail_on_human_fail, m_human_fail):
    k, n = chk.k_of_n(judge_pass, n_test, "judge_pass", "n_test")
    a, m1 = chk.k_of_n(judge_pass_on_human_pass, m_human_pass, "judge_pass_on_human_pass", "m_human_pass")
    d, m0 = chk.k_of_n(judge_fail_on_human_fail, m_human_fail, "judge_fail_on_human_fail", "m_human_fail")
    for name, value in (("n_test", n), ("m_human_pass", m1), ("m_human_fail", m0)):
        if value == 0:
            raise chk.StatsInputError(f"{name}: must be > 0 to correct a judged pass rate")
    return k, n, a, m1, d, m0


def rogan_gladen_ci_delta(
    judge_pass: int,
    n_test: int,
    judge_pass_on_human_pass: int,
    m_human_pass: int,
    judge_fail_on_human_fail: int,
    m_human_fail: int,
    conf: float = 0.95,
) -> dict:
    """Rogan-Gladen estimate with a delta-method interval that carries calibration uncertainty.

    Var = [q(1-q)/n + theta^2 Se(1-Se)/m1 + (1-theta)^2 Sp(1-Sp)/m0] / (Se+Sp-1)^2. Also returns
    se_ignoring_calibration to show how much the calibration set contributes (usually most).
    """
    k, n, a, m1, d, m0 = _calibration_counts(judge_pass, n_test, judge_pass_on_human_pass, m_human_pass,
                                              judge_fail_on_human_fail, m_human_fail)
    conf = chk.level("conf", conf)
    q, se, sp = k / n, a / m1, d / m0
    j = _youden(se, sp)
    raw = (q + sp - 1) / j
    var_test = q * (1 - q) / n
    var_cal = raw**2 * se * (1 - se) / m1 + (1 - raw) ** 2 * sp * (1 - sp) / m0
    se_theta = math.sqrt(var_test + var_cal) / j
    z = chk.z_two_sided(conf)
    return {
        "theta": chk.clip01(raw),
        "theta_unclipped": raw,
        "se": se_theta,
        "ci": [chk.clip01(raw - z * se_theta), chk.clip01(raw + z * se_theta)],
        "se_ignoring_calibration": math.sqrt(var_test) / j,
    }


def judge_corrected_ci_lee2025(
    judge_pass: int,
    n_test: int,
    judge_pass_on_human_pass: int,
    m_human_pass: int,
    judge_fail_on_human_fail: int,
    m_human_fail: int,
    conf: float = 0.95,
) -> list[float]:
    """Lee et al. (2025) adjusted interval for a judge-corrected pass rate, clipped to [0, 1].

    Rogan-Gladen on add-z^2/2 / add-one smoothed inputs plus a bias shift; better small-sample
    coverage than the plain delta method. Use when reporting a corrected judged pass rate.
    """
    k, n, a, m1, d, m0 = _calibration_counts(judge_pass, n_test, judge_pass_on_human_pass, m_human_pass,
                                              judge_fail_on_human_fail, m_human_fail)
    conf = chk.level("conf", conf)
    z = chk.z_two_sided(conf)
    n_t, m0_t, m1_t = n + z * z, m0 + 2, m1 + 2
    p_t = (k + z * z / 2) / n_t
    q0 = (d + 1) / m0_t
    q1 = (a + 1) / m1_t
    j = _youden(q1, q0)
    theta = (p_t + q0 - 1) / j
    shift = 2 * z * z * (-(1 - theta) * q0 * (1 - q0) / m0_t + theta * q1 * (1 - q1) / m1_t)
    half = z * math.sqrt(p_t * (1 - p_t) / n_t + (1 - theta) ** 2 * q0 * (1 - q0) / m0_t
                         + theta**2 * q1 * (1 - q1) / m1_t) / j
    centre = theta + shift
    return [chk.clip01(centre - half), chk.clip01(centre + half)]


def judge_corrected_double_sampling(
    n_test: int,
    judge_pass: int,
    m_labelled_judge_pass: int,
    human_pass_in_judge_pass: int,
    m_labelled_judge_fail: int,
    human_pass_in_judge_fail: int,
    conf: float = 0.95,
) -> dict:
    """Double-sampling pass rate (Tenenbein 1970) when labelled items were sampled by judge verdict.

    theta = q*a1 + (1-q)*a0 with a1 = P(human PASS | judge PASS), a0 = P(human PASS | judge FAIL),
    both measured on the test items themselves; use instead of Rogan-Gladen when judge-FAIL items
    were oversampled for review. Delta-method SE and a normal CI clipped to [0, 1].
    """
    k, n = chk.k_of_n(judge_pass, n_test, "judge_pass", "n_test")
    h1, m1 = chk.k_of_n(human_pass_in_judge_pass, m_labelled_judge_pass, "human_pass_in_judge_pass", "m_labelled_judge_pass")
    h0, m0 = chk.k_of_n(human_pass_in_judge_fail, m_labelled_judge_fail, "human_pass_in_judge_fail", "m_labelled_judge_fail")
    conf = chk.level("conf", conf)
    if n == 0:
        raise chk.StatsInputError("n_test: must be > 0")
    q = k / n
    if (k > 0 and m1 == 0) or (k < n and m0 == 0):
        raise chk.StatsInputError("m_labelled_judge_pass, m_labelled_judge_fail: each judge verdict present in the test set needs labelled items")
    a1 = h1 / m1 if m1 else 0.0
    a0 = h0 / m0 if m0 else 0.0
    theta = q * a1 + (1 - q) * a0
    var = q * (1 - q) * (a1 - a0) ** 2 / n
    var += q * q * a1 * (1 - a1) / m1 if m1 else 0.0
    var += (1 - q) ** 2 * a0 * (1 - a0) / m0 if m0 else 0.0
    se = math.sqrt(var)
    z = chk.z_two_sided(conf)
    return {"theta": theta, "se": se, "ci": [chk.clip01(theta - z * se), chk.clip01(theta + z * se)]}


def calibration_sample_size(
    sensitivity_planning: float, specificity_planning: float, moe: float, conf: float = 0.95
) -> dict:
    """Human-labelled items needed per class so Se and Sp are each known within +/- moe: ceil(z^2 r(1-r)/moe^2).

    Human-FAIL items are usually the scarce resource; stratify or oversample them for labelling.
    """
    se = chk.probability("sensitivity_planning", sensitivity_planning)
    sp = chk.probability("specificity_planning", specificity_planning)
    moe = chk.probability("moe", moe, open_low=True, open_high=True)
    z = chk.z_two_sided(chk.level("conf", conf))
    return {
        "m_human_pass": chk.ceil_count(z * z * se * (1 - se) / moe**2),
        "m_human_fail": chk.ceil_count(z * z * sp * (1 - sp) / moe**2),
    }


def judge_drift_test(
    v1_agree_v2_disagree_with_human: int,
    v1_disagree_v2_agree_with_human: int,
    n: int | None = None,
    conf: float = 0.95,
) -> dict:
    """Did judge v2 agree with humans more or less often than v1 on the same frozen items? (McNemar).

    Counts are the discordant items. Returns the exact and mid-p McNemar p-values; with n (items
    judged by both) also the agreement change v2 - v1 and its Tango interval. Run it separately on
    human-FAIL and human-PASS items too: drift usually hits one class.
    """
    worse = chk.count("v1_agree_v2_disagree_with_human", v1_agree_v2_disagree_with_human)
    better = chk.count("v1_disagree_v2_agree_with_human", v1_disagree_v2_agree_with_human)
    from .paired import mcnemar_test, paired_diff_ci_tango  # scipy: loaded only for drift tests

    test = mcnemar_test(better, worse)
    result = {"p_exact": test["p_exact"], "p_midp": test["p_midp"]}
    if n is not None:
        result["ci"] = paired_diff_ci_tango(better, worse, n, conf)
        result["agreement_change"] = (better - worse) / n if n else None
    return result
