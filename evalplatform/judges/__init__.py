"""Judges you can trust: LLM and trained judge scorers, calibration against human labels, gating, correction, drift."""

# Scorer specs import the judge scorer modules; loading them first keeps that cycle one-directional.
import evalplatform.scorers  # noqa: F401,I001
from evalplatform.judges.calibrate import (
    CalibrationReport, GateStatus, calibrate_judge, gate_status, latest_calibration, store_report,
)
from evalplatform.judges.calibration_set import CalibrationItem, CalibrationSet, load_calibration_set
from evalplatform.judges.correction import corrected_pass_rate, corrected_pass_rate_from_calibration
from evalplatform.judges.identity import JudgeIdentity
from evalplatform.judges.llm_judge import JudgeScorerBase, LLMJudge
from evalplatform.judges.metrics import GateFloors, calibration_metrics, gate_reasons
from evalplatform.judges.trained import TrainedJudge

__all__ = [
    "CalibrationItem", "CalibrationReport", "CalibrationSet", "GateFloors", "GateStatus", "JudgeIdentity",
    "JudgeScorerBase", "LLMJudge", "TrainedJudge", "calibrate_judge", "calibration_metrics", "corrected_pass_rate",
    "corrected_pass_rate_from_calibration", "gate_reasons", "gate_status", "latest_calibration",
    "load_calibration_set", "store_report",
]
