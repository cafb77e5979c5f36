"""Calibrate a judge on its calibration set, store the result bound to its identity, and decide if it may gate."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from evalplatform.history import HistoryStore
from evalplatform.judges.llm_judge import JudgeScorerBase, LLMJudge
from evalplatform.judges.metrics import GateFloors, calibration_metrics, gate_reasons
from evalplatform.judges.trained import TrainedJudge, cross_validated_verdicts


@dataclass
class CalibrationReport:
    judge_name: str
    identity: dict
    identity_key: str
    criterion: str
    purpose: str
    method: str
    set_version: str
    metrics: dict
    self_consistency: float | None
    self_consistency_note: str
    allowed: bool
    reasons: list[str]
    verdicts: list[dict] = field(default_factory=list)
    calibration_id: str | None = None

    def record(self) -> dict:
        """The `calibrations` row (metrics, identity and reasons as JSON)."""
        (tp, fp), (fn, tn) = self.metrics["table"]
        return {
            "judge_name": self.judge_name, "judge_identity": self.identity_key, "judge_kind": self.identity["kind"],
            "criterion": self.criterion, "purpose": self.purpose, "method": self.method,
            "calibration_set_hash": self.set_version, "n_items": self.metrics["n_items"],
            "n_error": self.metrics["n_error"], "judge_fail_human_fail": tp, "judge_fail_human_pass": fp,
            "judge_pass_human_fail": fn, "judge_pass_human_pass": tn,
            "fail_recall_lb": self.metrics.get("fail_recall_lb"), "kappa_lb": self.metrics.get("kappa_lb"),
            "self_consistency": self.self_consistency, "allowed": self.allowed, "reasons": self.reasons,
            "metrics": {**self.metrics, "self_consistency_note": self.self_consistency_note},
            "identity": self.identity,
        }


def _sample(ids: list[str], size: int) -> list[int]:
    """A fixed, label-blind sample of positions (by hash of the item id) for the self-consistency check."""
    order = sorted(range(len(ids)), key=lambda i: hashlib.sha256(ids[i].encode()).hexdigest())
    return sorted(order[:size])


def _llm_verdicts(judge: LLMJudge, cache_dir: Path | None, k: int, sample: int):
    cal = judge.calibration_set()
    held_out = judge.example_ids()  # few-shot examples are not graded: they would flatter the judge
    items = [i for i in cal.items if i.id not in held_out]
    inputs, outputs = [i.input for i in items], [i.output for i in items]
    first = judge.judge_texts(inputs, outputs, repeat=0, cache_dir=cache_dir)
    verdicts = [j.verdict for j in first]
    consistency, note = None, "not measured (k < 2)"
    if k >= 2 and items:
        pos = _sample([i.id for i in items], sample)
        runs = [[verdicts[p] for p in pos]]
        for r in range(1, k):
            again = judge.judge_texts([inputs[p] for p in pos], [outputs[p] for p in pos], repeat=r,
                                      cache_dir=cache_dir)
            runs.append([j.verdict if j.verdict is not None else "error" for j in again])
        runs[0] = [v if v is not None else "error" for v in runs[0]]
        same = sum(len(set(col)) == 1 for col in zip(*runs))
        consistency = same / len(pos)
        note = (f"{same}/{len(pos)} items got the same verdict in all {k} judgments "
                f"(temperature {judge.judge.temperature}, seed {judge.judge.seed})")
    method = f"judged {len(items)} items" + (f" ({len(held_out)} few-shot examples held out)" if held_out else "")
    return items, verdicts, consistency, note, method


def _trained_verdicts(judge: TrainedJudge, k: int, sample: int):
    cal = judge.calibration_set()
    ids, labels, verdicts = cross_validated_verdicts(cal, judge.hyperparameters(), judge.folds)
    by_id = {i.id: i for i in cal.items}
    items = [by_id[i] for i in ids]
    consistency, note = None, "not measured (k < 2)"
    if k >= 2:
        # Fitting is seeded and prediction is a pure function: repeated predictions must agree exactly.
        import numpy as np

        model, _ = judge.model()
        pos = _sample(ids, sample)
        x = np.array([[items[p].input, items[p].output] for p in pos], dtype=object)
        runs = [tuple(model.predict(x)) for _ in range(k)]
        same = sum(len(set(col)) == 1 for col in zip(*runs))
        consistency = same / len(pos) if pos else None
        note = f"{same}/{len(pos)} items predicted identically {k} times (deterministic classifier)"
    return items, verdicts, consistency, note, f"stratified {judge.folds}-fold cross-validation, out-of-fold verdicts"


def calibrate_judge(judge: JudgeScorerBase, *, cache_dir: Path | None = None, purpose: str = "calibration",
                    self_consistency_k: int = 3, consistency_sample: int = 20,
                    floors: GateFloors | None = None) -> CalibrationReport:
    """Run `judge` on its calibration set and compute the calibration table (not stored; see store_report)."""
    floors = floors or judge.floors
    cal = judge.calibration_set()
    if isinstance(judge, TrainedJudge):
        items, verdicts, consistency, note, method = _trained_verdicts(judge, self_consistency_k, consistency_sample)
    elif isinstance(judge, LLMJudge):
        items, verdicts, consistency, note, method = _llm_verdicts(judge, cache_dir, self_consistency_k,
                                                                   consistency_sample)
    else:
        raise TypeError(f"no calibration procedure for {type(judge).__name__}")
    labels = [i.label for i in items]
    metrics = calibration_metrics(labels, verdicts, conf=floors.confidence)
    metrics["floors"] = floors.model_dump()
    reasons = gate_reasons(metrics, floors)
    identity = judge.identity()
    return CalibrationReport(
        judge_name=judge.judge_name, identity=identity.model_dump(), identity_key=identity.key,
        criterion=judge.criterion, purpose=purpose, method=method, set_version=cal.version, metrics=metrics,
        self_consistency=consistency, self_consistency_note=note, allowed=not reasons, reasons=reasons,
        verdicts=[{"item_id": i.id, "label": i.label, "verdict": v} for i, v in zip(items, verdicts)],
    )


def store_report(store: HistoryStore, report: CalibrationReport) -> str:
    report.calibration_id = store.put_calibration(report.record(), report.verdicts)
    return report.calibration_id


def latest_calibration(store: HistoryStore, judge_identity: str, purpose: str = "calibration") -> dict | None:
    """The newest stored calibration of exactly this judge identity (key string), or None."""
    rows = store.list_calibrations(judge_identity=judge_identity, purpose=purpose, limit=1)
    return rows[0] if rows else None


@dataclass
class GateStatus:
    judge_name: str
    identity_key: str
    status: str            # allowed | refused | stale | uncalibrated
    reasons: list[str]
    calibration: dict | None

    @property
    def allowed(self) -> bool:
        return self.status == "allowed"


def gate_status(store: HistoryStore, judge: JudgeScorerBase) -> GateStatus:
    """May this judge, as configured now, gate? Only with a calibration of its current identity clearing the floors."""
    key = judge.identity().key
    current = latest_calibration(store, key)
    if current is None:
        older = store.list_calibrations(judge_name=judge.judge_name, purpose="calibration", limit=1)
        if older:
            return GateStatus(judge.judge_name, key, "stale", [
                f"judge changed since its calibration of {older[0]['created_at']:%Y-%m-%d %H:%M} "
                f"(calibrated {older[0]['judge_identity']}, now {key}); run `evalplatform calibrate`"], older[0])
        return GateStatus(judge.judge_name, key, "uncalibrated", ["never calibrated; run `evalplatform calibrate`"],
                          None)
    # Today's floors apply to the stored numbers: tightening a floor can refuse a calibrated judge.
    reasons = gate_reasons(current["metrics"], judge.floors)
    return GateStatus(judge.judge_name, key, "refused" if reasons else "allowed", reasons, current)
