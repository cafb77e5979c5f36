"""The policy's `monitors:` section: where a suite's production traces land, how they are sampled, and the SLOs."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,99}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TraceSource(_Strict):
    """The folder the trace sensor watches; several suites may share one folder and split it by service."""

    folder: str | None = Field(None, description="relative to the project root; default traces/<suite>")
    services: list[str] = Field(default_factory=list, description="keep only traces of these apps (service.name); "
                                                                  "empty: every trace in the folder")
    ignore: list[str] = Field(default_factory=list, description="file name patterns the sensor skips (e.g. the "
                                                                "file a collector is still writing)")
    settle_seconds: float = Field(2.0, ge=0, description="a file must be unchanged this long before it is read")
    max_files_per_tick: int = Field(500, ge=1, le=100_000, description="new files requested per sensor tick")


class Sampling(_Strict):
    """Hash sampling: every trace at base_rate, flagged traces (any failure signal) at flagged_rate."""

    base_rate: float = Field(0.10, gt=0, le=1)
    flagged_rate: float = Field(1.0, gt=0, le=1)
    salt: str = Field("", max_length=64, description="changes which traces are drawn (keep it fixed: a new salt "
                                                     "starts a new sample)")


class Slo(_Strict):
    """A pass rate the production traffic must hold; the monitor alerts when its always-valid upper bound is below."""

    id: str
    criterion: str | None = Field(None, description="a scorer criterion (e.g. dates); omit for every criterion")
    tag: str | None = Field(None, description='only traces with this tag (e.g. "category:refusal")')
    min_pass_rate: float = Field(ge=0, le=1)
    severity: Literal["blocking", "advisory"] = Field(
        "blocking", description="blocking: an alert is an ERROR on the monitor's check; advisory: a WARN")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("an SLO id starts with a letter and holds letters, digits, _ . - (at most 100)")
        return value

    @model_validator(mode="after")
    def _one_scope(self) -> "Slo":
        if self.criterion is not None and self.tag is not None:
            raise ValueError("give criterion or tag, not both (or neither, for every trace)")
        return self


class Review(_Strict):
    max_items_per_batch: int = Field(50, ge=0, le=100_000, description="flagged or failed sampled traces queued "
                                                                       "per batch, most suspicious first")


class Coverage(_Strict):
    """Failure categories seen in review against regression cases per category."""

    min_cases_per_category: int = Field(1, ge=1, description="regression cases each category seen in production "
                                                             "should have")
    severity: Literal["warn", "error"] = Field("warn", description="of a category with some cases but fewer than the "
                                                                   "minimum (a category with none is always WARN)")


class BatchLimits(_Strict):
    max_clock_skew_minutes: float = Field(5, ge=0, description="timestamps later than now plus this are refused")
    max_age_days: float = Field(366, gt=0, description="timestamps older than this are refused")
    max_line_mib: float = Field(64, gt=0, description="longest JSON line read")


class Monitors(_Strict):
    """Production monitoring of a suite: trace files in, sampled scoring, SLO monitors, review queue, coverage."""

    traces: TraceSource = Field(default_factory=TraceSource)
    sampling: Sampling = Field(default_factory=Sampling)
    confidence: float = Field(0.95, gt=0.5, lt=1, description="of the intervals and the always-valid bounds")
    segment_by: Literal["release", "none"] = Field(
        "release", description="release: each app release gets its own monitor (its bound restarts when a release "
                               "ships); none: one monitor over all traffic")
    judges: list[str] | None = Field(
        None, description="judge scorers to run on the sample; default: the suite's judges that are allowed to gate "
                          "(calibrated, not advisory)")
    input_field: str | None = Field(None, description="case field holding the user's message (default: the prompt "
                                                      "template's only field)")
    slos: list[Slo] = Field(default_factory=list)
    review: Review = Field(default_factory=Review)
    coverage: Coverage = Field(default_factory=Coverage)
    limits: BatchLimits = Field(default_factory=BatchLimits)

    @model_validator(mode="after")
    def _unique_slos(self) -> "Monitors":
        ids = [s.id for s in self.slos]
        dup = next((i for i in ids if ids.count(i) > 1), None)
        if dup:
            raise ValueError(f"SLO id {dup!r} appears twice")
        return self
