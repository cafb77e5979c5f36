"""The one spelling of a run's options: built by the CLI, carried whole over GraphQL, the source of Dagster's config.

Every path that starts a scored run (the CLI's direct engine, the in-process Dagster launcher, `evalplatform
ci` against a server, a sensor or schedule, a launch from the UI) goes through a RunRequest, so an option
cannot be dropped on one path and honoured on another. Outcomes that cross a process or Dagster boundary
are typed records too (RunOutcome, ErrorRecord), rebuilt with `model_validate_json` and nothing else.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from evalplatform.errors import EvalPlatformError, InfraError, InputError

Tier = Literal["pr", "nightly"]
TIERS: tuple[str, ...] = ("pr", "nightly")


class RunOptions(BaseModel):
    """What may vary between two runs of one suite's tier; None means "as the suite says"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(None, description="Override the suite's target model: a litellm model string, "
                              "or for a Python target the release it runs (e.g. local/support-v2).")
    repeats: int | None = Field(None, ge=1, le=100, description="Override the tier's repeats.")
    no_cache: bool | None = Field(None, description="Neither read nor write the response cache (default: the "
                                                    "tier's own setting: the nightly tier re-samples).")
    concurrency: int | None = Field(None, ge=1, le=512, description="Maximum model calls in flight.")
    seed: int | None = Field(None, description="Override the target's seed (recorded with the run; for re-run "
                                               "studies, not a suite edit).")
    budget_usd: float | None = Field(None, ge=0, allow_inf_nan=False,
                                     description="Most the run may spend on model calls (target and judges): refused "
                                                 "before it starts when estimated above, stopped (and failed) when "
                                                 "reached. Overrides the suite's and tier's budget_usd.")
    max_calls: int | None = Field(None, ge=1, description="Most model calls the run may make (target and judges); "
                                                         "overrides the suite's and tier's max_calls.")


class RunRequest(RunOptions):
    """A scored run to make: which suite and tier, with which options."""

    schema_version: Literal[1] = 1
    suite: str = Field(description="Suite name (datasets/NAME/suite.yaml) or a path to a suite file.")
    tier: Tier = "pr"

    def options(self) -> RunOptions:
        return RunOptions(**{k: getattr(self, k) for k in RunOptions.model_fields})

    def use_cache(self) -> bool:
        """The nightly tier bypasses the cache unless told otherwise; every other tier uses it."""
        return not (self.no_cache if self.no_cache is not None else self.tier == "nightly")


class ErrorRecord(BaseModel):
    """An EvalPlatformError as data: what crosses Dagster or a process boundary keeps its file, field and fix."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["input", "infra"]
    message: str
    file: str | None = None
    field: str | None = None
    fix: str | None = None

    @classmethod
    def of(cls, err: EvalPlatformError) -> "ErrorRecord":
        if isinstance(err, InputError):
            return cls(kind="input", message=err.message, file=err.file, field=err.field, fix=err.fix)
        return cls(kind="infra", message=str(err))

    def error(self) -> EvalPlatformError:
        if self.kind == "input":
            return InputError(self.file, self.field, self.message, self.fix)
        return InfraError(self.message)


class RunOutcome(BaseModel):
    """What a launcher reports back: the history's run id and Dagster's, or the error that stopped the run."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    run_id: str | None = None
    dagster_run_id: str | None = None
    error: ErrorRecord | None = None
