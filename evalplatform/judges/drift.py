"""Judge drift: re-judge a frozen reference set and test whether agreement with the human labels moved (McNemar)."""

from __future__ import annotations

from evalplatform.history import HistoryStore
from evalplatform.judges.calibrate import CalibrationReport
from evalplatform.stats import judge_drift_test

ALPHA = 0.05


def _discordant(pairs: list[tuple[str, str | None, str | None]]) -> tuple[int, int]:
    """(before agreed & now disagrees, before disagreed & now agrees); an errored verdict disagrees."""
    worse = sum(b == h and n != h for h, b, n in pairs)
    better = sum(b != h and n == h for h, b, n in pairs)
    return worse, better


def compare_verdicts(before: dict[str, tuple[str, str | None]], now: dict[str, tuple[str, str | None]],
                     alpha: float = ALPHA) -> dict:
    """Drift between two judgments of the same items: {item_id: (human label, verdict)} each."""
    common = sorted(set(before) & set(now))
    pairs = [(now[i][0], before[i][1], now[i][1]) for i in common]
    out: dict = {"n": len(pairs), "alpha": alpha}
    if not pairs:
        return {**out, "drifted": False, "note": "no items judged by both versions"}
    worse, better = _discordant(pairs)
    test = judge_drift_test(worse, better, n=len(pairs))
    out.update({"worse": worse, "better": better, **test,
                "agreement_before": sum(b == h for h, b, _ in pairs) / len(pairs),
                "agreement_now": sum(n == h for h, _, n in pairs) / len(pairs)})
    by_class = {}
    for label in ("FAIL", "PASS"):
        sub = [p for p in pairs if p[0] == label]
        if sub:
            w, b = _discordant(sub)
            by_class[label] = {"n": len(sub), "worse": w, "better": b, **judge_drift_test(w, b, n=len(sub))}
    out["by_class"] = by_class
    # Drift usually hits one class, so each class is tested too (stats: judge_drift_test docstring).
    out["drifted"] = any(t["p_midp"] < alpha for t in [test, *by_class.values()])
    return out


def drift_against_previous(store: HistoryStore, report: CalibrationReport, alpha: float = ALPHA) -> dict:
    """Compare a fresh judgment of the reference set with the previous stored one of the same judge and set."""
    previous = [r for r in store.list_calibrations(judge_name=report.judge_name, limit=50)
                if r["calibration_set_hash"] == report.set_version and r["calibration_id"] != report.calibration_id]
    if not previous:
        return {"drifted": False, "n": 0, "note": "first judgment of this reference set: nothing to compare"}
    prev = previous[0]
    rows = store.get_judge_verdicts(prev["calibration_id"]).iter_rows(named=True)
    before = {r["item_id"]: (r["label"], r["verdict"]) for r in rows}
    now = {v["item_id"]: (v["label"], v["verdict"]) for v in report.verdicts}
    out = compare_verdicts(before, now, alpha)
    out.update({"previous_calibration_id": prev["calibration_id"], "previous_identity": prev["judge_identity"],
                "identity": report.identity_key, "identity_changed": prev["judge_identity"] != report.identity_key})
    return out
