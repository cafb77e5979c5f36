"""Judge-vs-human agreement of one calibration, and whether it clears the floors that let a judge gate.

Tables follow evalplatform.stats: judge verdicts on rows, human labels on columns, [FAIL, PASS].
FAIL is the class of interest (catching failures is the judge's job); sensitivity/specificity are
for PASS, as the Rogan-Gladen correction uses them. An errored judgment is neither PASS nor FAIL:
it leaves the table and is counted in n_error (too many errors refuse the judge).
"""

from __future__ import annotations

from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field

from evalplatform.stats import agreement_statistics, judge_confusion_metrics, wilson_interval, wilson_lower_bound


class GateFloors(BaseModel):
    """What a judge's calibration must show before its verdicts may block a release."""

    model_config = ConfigDict(extra="forbid")

    fail_recall_lb: float = Field(0.7, ge=0, le=1, description="one-sided lower bound of FAIL recall (TNR)")
    kappa_lb: float = Field(0.6, ge=-1, le=1, description="one-sided lower bound of Cohen's kappa")
    min_fail_items: int = Field(50, ge=1, description="human-FAIL items the calibration needs (stats.md 5.3)")
    max_error_share: float = Field(0.05, ge=0, le=1, description="judge replies that were not a valid verdict")
    confidence: float = Field(0.95, gt=0.5, lt=1)


def confusion(labels: Sequence[str], verdicts: Sequence[str | None]) -> list[list[int]]:
    """[[judge FAIL & human FAIL, judge FAIL & human PASS], [judge PASS & human FAIL, judge PASS & human PASS]]."""
    t = [[0, 0], [0, 0]]
    idx = {"FAIL": 0, "PASS": 1}
    for h, j in zip(labels, verdicts, strict=True):
        if j is not None:
            t[idx[j]][idx[h]] += 1
    return t


def calibration_metrics(labels: Sequence[str], verdicts: Sequence[str | None], conf: float = 0.95) -> dict:
    """Everything the calibration table shows, from aligned human labels and judge verdicts (None = error)."""
    t = confusion(labels, verdicts)
    (tp, fp), (fn, tn) = t
    n = tp + fp + fn + tn
    n_error = sum(v is None for v in verdicts)
    m_fail, m_pass = tp + fn, fp + tn
    out: dict = {
        "n_items": len(labels), "n": n, "n_error": n_error,
        "error_share": n_error / len(labels) if labels else 0.0,
        "table": t, "m_human_fail": m_fail, "m_human_pass": m_pass,
        "judge_fail_on_human_fail": tp, "judge_pass_on_human_pass": tn,
        "conf": conf,
    }
    if n == 0:
        return out
    cm = judge_confusion_metrics(t, conf=conf)
    ag = agreement_statistics(t, conf=conf)
    out.update({
        "agreement": ag["agreement"], "agreement_ci": wilson_interval(tp + tn, n, conf),
        "kappa": ag["kappa"], "se_kappa": ag["se_kappa"], "kappa_ci": ag["kappa_ci"],
        # One-sided lower bound at `conf`: the two-sided (2 conf - 1) interval's lower end.
        "kappa_lb": agreement_statistics(t, conf=2 * conf - 1)["kappa_ci"][0],
        "ac1": ag["ac1"], "pabak": ag["pabak"],
        "tpr": cm["pass_recall"], "tpr_ci": cm["pass_recall_ci"],
        "tnr": cm["fail_recall"], "tnr_ci": cm["fail_recall_ci"],
        "fail_recall": cm["fail_recall"], "fail_recall_ci": cm["fail_recall_ci"],
        "fail_recall_lb": wilson_lower_bound(tp, m_fail, conf) if m_fail else 0.0,
        "fail_precision": cm["fail_precision"], "fail_precision_ci": cm["fail_precision_ci"],
        "fail_f1": cm["fail_f1"], "balanced_accuracy": cm["balanced_accuracy"],
        "sensitivity": cm["pass_recall"], "specificity": cm["fail_recall"],
    })
    return out


def gate_reasons(metrics: dict, floors: GateFloors) -> list[str]:
    """Why this calibration may not gate (empty when it may). Fail closed: missing numbers refuse."""
    reasons = []
    if metrics.get("n", 0) == 0:
        return ["no valid judgments on the calibration set"]
    if metrics["m_human_fail"] < floors.min_fail_items:
        reasons.append(f"only {metrics['m_human_fail']} human-FAIL items (need {floors.min_fail_items})")
    if metrics["fail_recall_lb"] < floors.fail_recall_lb:
        reasons.append(f"FAIL-recall lower bound {metrics['fail_recall_lb']:.3f} < {floors.fail_recall_lb}")
    if metrics["kappa_lb"] < floors.kappa_lb:
        reasons.append(f"kappa lower bound {metrics['kappa_lb']:.3f} < {floors.kappa_lb}")
    if metrics["error_share"] > floors.max_error_share:
        reasons.append(f"{metrics['error_share']:.1%} of judgments were errors (max {floors.max_error_share:.0%})")
    return reasons
