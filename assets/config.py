"""The scored runs' Dagster config: the fields of evalplatform's RunOptions, one for one (a test keeps them equal)."""


import dagster as dg
from pydantic import Field

from evalplatform.request import RunOptions, RunRequest


class ScoredRunConfig(dg.Config):
    """Run options of a scored run; a null (empty) field means "as the suite and tier say"."""

    model: str | None = Field(None, description=RunOptions.model_fields["model"].description)
    repeats: int | None = Field(None, description=RunOptions.model_fields["repeats"].description)
    no_cache: bool | None = Field(None, description=RunOptions.model_fields["no_cache"].description)
    concurrency: int | None = Field(None, description=RunOptions.model_fields["concurrency"].description)
    seed: int | None = Field(None, description=RunOptions.model_fields["seed"].description)
    budget_usd: float | None = Field(None, description=RunOptions.model_fields["budget_usd"].description)
    max_calls: int | None = Field(None, description=RunOptions.model_fields["max_calls"].description)

    def request(self, suite: str, tier: str) -> RunRequest:
        """The RunRequest this config spells (validated there: bad values are one line, exit 2)."""
        return RunRequest(suite=suite, tier=tier, **self.model_dump())


def run_config_for(op_name: str, options: RunOptions) -> dict:
    """Dagster run config carrying `options` to the scored-run op `op_name` (every field, nulls included)."""
    return {"ops": {op_name: {"config": options.model_dump(mode="json")}}}
