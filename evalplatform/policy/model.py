"""The policy file's schema: rules that select results and bound a metric, as pydantic models."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalplatform.policy.metrics import METRICS
from evalplatform.policy.monitors import Monitors
from evalplatform.textio import check_regex

Outcome = Literal["PASS", "FAIL", "INCONCLUSIVE", "NO_DATA", "ERROR"]
OUTCOMES: tuple[str, ...] = ("PASS", "FAIL", "INCONCLUSIVE", "NO_DATA", "ERROR")

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,99}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tags(_Strict):
    """Case tags ("key:value" or bare labels) a row must carry: at least one of `any`, every one of `all`."""

    any: list[str] = Field(default_factory=list)
    all: list[str] = Field(default_factory=list)


class Selection(_Strict):
    """Which result rows a rule looks at; every field given must match (an empty selection selects all)."""

    suite: str | None = None
    tags: Tags = Field(default_factory=Tags)
    scorer: str | list[str] | None = Field(None, description="one scorer or a list of scorers")
    criterion: str | list[str] | None = None
    case_id_pattern: str | None = Field(
        None, description="regular expression (Rust regex syntax: linear time, no backreferences or lookaround) "
                          "searched in case_id; anchor it with ^...$ for a full match")
    source: Literal["golden", "regression", "trace"] | list[Literal["golden", "regression", "trace"]] | None = None
    exclude_scorer: str | list[str] | None = Field(None, description="scorers whose rows the rule ignores")

    @field_validator("case_id_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is None:
            return value
        return check_regex(value)

    def scorers(self) -> list[str] | None:
        return [self.scorer] if isinstance(self.scorer, str) else self.scorer

    def excluded(self) -> list[str]:
        return [self.exclude_scorer] if isinstance(self.exclude_scorer, str) else list(self.exclude_scorer or [])


class Bound(_Strict):
    """Exactly one of: an absolute `min`/`max`, or a bound relative to the baseline `max_drop`/`max_increase`."""

    min: float | None = None
    max: float | None = None
    max_drop: float | None = Field(None, gt=0, description="pass rates and scores: absolute points (0.05 = 5 points)")
    max_increase: float | None = Field(
        None, gt=0, description="error_rate: absolute points; p95_latency_ms and cost_per_case: a fraction of the "
                                "baseline value (0.2 = 20% more)")

    @model_validator(mode="after")
    def _exactly_one(self) -> "Bound":
        given = [k for k in ("min", "max", "max_drop", "max_increase") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of min, max, max_drop, max_increase (got {', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("min", "max", "max_drop", "max_increase") if getattr(self, k) is not None)

    @property
    def value(self) -> float:
        return float(getattr(self, self.kind))

    @property
    def relative(self) -> bool:
        return self.kind in ("max_drop", "max_increase")


class JudgeCalibration(_Strict):
    """A judge's calibration against human labels: PASS is the positive class (stats.md section 5).

    sensitivity = judge_pass_on_human_pass / m_human_pass, specificity = judge_fail_on_human_fail / m_human_fail.
    """

    judge_pass_on_human_pass: int = Field(ge=0)
    m_human_pass: int = Field(gt=0)
    judge_fail_on_human_fail: int = Field(ge=0)
    m_human_fail: int = Field(gt=0)

    @classmethod
    def from_confusion(cls, judge_pass_human_pass: int, judge_fail_human_pass: int,
                       judge_pass_human_fail: int, judge_fail_human_fail: int) -> "JudgeCalibration":
        """From the four cells of a judge-vs-human table (as a calibration record stores them)."""
        return cls(judge_pass_on_human_pass=judge_pass_human_pass,
                   m_human_pass=judge_pass_human_pass + judge_fail_human_pass,
                   judge_fail_on_human_fail=judge_fail_human_fail,
                   m_human_fail=judge_fail_human_fail + judge_pass_human_fail)

    @model_validator(mode="after")
    def _counts(self) -> "JudgeCalibration":
        if self.judge_pass_on_human_pass > self.m_human_pass or self.judge_fail_on_human_fail > self.m_human_fail:
            raise ValueError("calibration counts exceed their totals")
        return self


class JudgeRef(_Strict):
    """Where a judge-corrected rule gets Se/Sp: inline counts, or the name of a calibration record."""

    calibration: str | None = Field(None, description="name of a calibration record supplied at evaluation time")
    counts: JudgeCalibration | None = None
    min_youden: float = Field(0.3, ge=0, lt=1, description="refuse to correct when Se + Sp - 1 is below this")

    @model_validator(mode="after")
    def _one_source(self) -> "JudgeRef":
        if (self.calibration is None) == (self.counts is None):
            raise ValueError("give exactly one of calibration (a record name) or counts")
        return self


class Rule(_Strict):
    id: str
    description: str = ""
    select: Selection = Field(default_factory=Selection)
    metric: str
    k: int | None = Field(None, ge=1, description="attempts for pass_at_k / pass_hat_k")
    bound: Bound
    confidence: float = Field(0.95, gt=0.5, lt=1)
    method: Literal["wilson", "clopper_pearson"] = "wilson"
    severity: Literal["blocking", "advisory"] = "blocking"
    on_missing: Literal["error", "no_data"] = Field(
        "error", description="when the selection is empty, the metric cannot be computed or the baseline is absent")
    no_data: Literal["block", "pass"] = Field("block", description="whether a NO_DATA outcome blocks")
    inconclusive: Literal["block", "pass"] = "block"
    errors: Literal["fail", "exclude"] = Field(
        "fail", description="pass rates, pass_at_k, pass_hat_k: an errored case counts as not passing (fail) or "
                            "leaves the denominator (exclude, then the rule is ERROR above max_error_share); "
                            "mean_score: an errored row scores 0 (fail) or leaves (exclude). error_rate, "
                            "p95_latency_ms and cost_per_case refuse it")
    max_error_share: float = Field(0.05, ge=0, le=1, description="with errors: exclude, the largest share of "
                                   "errored units the rule accepts before it is ERROR")
    cluster: str = Field("case", description="the independent unit: case, or tag:KEY for grouped cases")
    judge: JudgeRef | None = None
    on_incomplete: Literal["error", "ignore"] | None = Field(
        None, description="overrides the policy's import_warnings for this rule")
    baseline_n_boot: int = Field(2000, ge=200, le=100_000)
    partial_baseline: Literal["shared", "refuse"] = Field(
        "shared", description="relative bounds, when the baseline ran fewer of the rule's cases than the candidate "
                              "(a suite that grew, a baseline from a smaller tier): shared compares on the cases "
                              "both ran and says how many candidate cases it left out; refuse makes the rule ERROR "
                              "until the baseline is rerun on the current suite")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("a rule id starts with a letter and holds letters, digits, _ . - (at most 100)")
        return value

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str) -> str:
        if value != "case" and not (value.startswith("tag:") and len(value) > 4):
            raise ValueError("cluster is `case` or `tag:KEY`")
        return value

    @model_validator(mode="after")
    def _metric_fits(self) -> "Rule":
        spec = METRICS.get(self.metric)
        if spec is None:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(sorted(METRICS))}")
        allowed = spec.bounds
        if self.bound.kind not in allowed:
            raise ValueError(f"metric {self.metric} takes a bound of {' or '.join(allowed)}, not {self.bound.kind}")
        if spec.probability and self.bound.kind in ("min", "max") and not 0 <= self.bound.value <= 1:
            raise ValueError(f"bound.{self.bound.kind}: {self.metric} is a rate in [0, 1]")
        if spec.needs_k and self.k is None:
            raise ValueError(f"metric {self.metric} needs k (attempts per case)")
        if self.metric == "judge_corrected_pass_rate" and self.judge is None:
            raise ValueError("judge_corrected_pass_rate needs judge: {calibration: NAME} or judge: {counts: ...}")
        if spec.needs_scorer and self.select.scorer is None:
            raise ValueError(f"metric {self.metric} needs select.scorer")
        if "partial_baseline" in self.model_fields_set and not self.bound.relative:
            raise ValueError("partial_baseline applies to bounds relative to a baseline (max_drop, max_increase); "
                             "remove it")
        ignored = [f for f in ("errors", "max_error_share") if f in self.model_fields_set]
        if ignored and not spec.honours_errors:
            # A setting that changes nothing would read as a promise the rule does not keep.
            raise ValueError(f"metric {self.metric} does not use `{ignored[0]}` (errored calls "
                             f"are what it measures, or it has no pass/fail units); remove `{ignored[0]}`")
        return self


class Promotion(_Strict):
    """When a run becomes its tier's baseline without a person saying so. Without this section nothing is
    promoted automatically: `evalplatform promote RUN --reason ...` is the only way."""

    tiers: list[Literal["pr", "nightly"]] = Field(
        default_factory=list, description="tiers whose runs with a PASS decision become that tier's baseline")
    branches: list[str] = Field(
        default_factory=list, description="only runs made on these git branches (e.g. [main]); empty: any branch. "
                                          "The branch is $EVALPLATFORM_BRANCH, else the CI's, else git's")


class Policy(_Strict):
    """A release standard. Its decision is PASS only when at least one blocking rule had data and passed
    and no rule blocks; BLOCK when a rule blocks; NO_DATA (exit 1, never promoted) when no blocking
    rule had data and passed, unless `allow_empty: true`. A policy without a blocking rule is refused
    unless it says `advisory_only: true`; its rules then only report, and its decision is NO_DATA (or
    PASS with `allow_empty: true`)."""

    version: Literal[1] = 1
    name: str = "policy"
    description: str = ""
    suite: str | None = Field(None, description="the suite whose promoted baseline relative rules compare against")
    import_warnings: Literal["error", "warn"] = Field(
        "error", description="an imported file that reports missing results (e.g. an Inspect run that stopped "
                             "early): error makes every rule that selects rows ERROR; warn only prints it")
    advisory_scorers: list[str] = Field(
        default_factory=list,
        description="scorers that are reported but never gate (e.g. judges not calibrated well enough): every "
                    "rule that does not name them in select.scorer ignores their rows")
    allow_empty: bool = Field(
        False, description="when no blocking rule had data and passed (every one NO_DATA or INCONCLUSIVE without "
                           "blocking, or the policy is advisory_only), the decision is NO_DATA and fails (exit 1, "
                           "never promoted); true makes it PASS instead, and the decision says so")
    advisory_only: bool = Field(
        False, description="allow a policy without a blocking rule (refused otherwise). Its rules only report: "
                           "the decision is NO_DATA (exit 1, never promoted) since nothing gates, or PASS with "
                           "allow_empty: true; a blocking rule in it is refused")
    promotion: Promotion | None = Field(
        None, description="automatic promotion of passing runs to baselines (per tier); absent: manual only")
    rules: list[Rule] = Field(min_length=1)
    monitors: Monitors | None = Field(
        None, description="production monitoring of the suite: trace files, sampling, SLOs, review, coverage")

    @model_validator(mode="before")
    @classmethod
    def _apply_advisory_scorers(cls, data: Any) -> Any:
        """Rules that do not name scorers exclude the advisory ones (done on the input: models are frozen)."""
        if not isinstance(data, dict) or not data.get("advisory_scorers") or not isinstance(data.get("rules"), list):
            return data
        advisory = data["advisory_scorers"]
        if not isinstance(advisory, list) or not all(isinstance(a, str) for a in advisory):
            return data  # field validation reports it
        rules = []
        for rule in data["rules"]:
            sel = rule.get("select") if isinstance(rule, dict) else None
            if isinstance(rule, dict) and (sel is None or isinstance(sel, dict)) and not (sel or {}).get("scorer"):
                sel = dict(sel or {})
                have = sel.get("exclude_scorer") or []
                have = [have] if isinstance(have, str) else list(have) if isinstance(have, list) else have
                if isinstance(have, list):
                    sel["exclude_scorer"] = sorted(set(have) | set(advisory))
                rule = {**rule, "select": sel}
            rules.append(rule)
        return {**data, "rules": rules}

    @model_validator(mode="after")
    def _unique_ids(self) -> "Policy":
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} appears twice")
            seen.add(rule.id)
        return self

    @model_validator(mode="after")
    def _something_gates(self) -> "Policy":
        blocking = [r.id for r in self.rules if r.severity == "blocking"]
        if self.advisory_only and blocking:
            raise ValueError(f"advisory_only: true, but rule {blocking[0]} is blocking "
                             "(make it severity: advisory, or remove advisory_only)")
        if not blocking and not self.advisory_only:
            raise ValueError("no rule is blocking, so this policy could never stop a change; make a rule "
                             "severity: blocking, or say advisory_only: true")
        return self
