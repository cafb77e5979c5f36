"""A scored run of a suite: model calls, scorers, and the run recorded in the DuckDB history."""


import dagster as dg
from pydantic import Field

from assets.partitions import suite_partitions
from assets.resources import EvalProject
from evalplatform.pipeline import RunOptions, scored_run as run_pipeline


class ScoredRunConfig(dg.Config):
    tier: str = Field(default="pr", description="pr (regression set + stratified slice) or nightly (all cases)")
    model: str | None = Field(default=None, description="Override the suite's target model (litellm string).")
    repeats: int | None = Field(default=None, description="Override the tier's repeats.")
    no_cache: bool = Field(default=False, description="Bypass the response cache entirely.")
    concurrency: int | None = Field(default=None, description="Maximum model calls in flight.")


@dg.asset(
    partitions_def=suite_partitions,
    group_name="evaluation",
    kinds={"duckdb"},
    pool="history_writer",
    description="One scored run: every selected case x repeat through the target, every scorer applied; "
    "the canonical result table and full provenance are stored atomically in the history.",
)
def scored_run(
    context: dg.AssetExecutionContext, config: ScoredRunConfig, eval_project: EvalProject, suite_dataset: dict
) -> dg.Output[dict]:
    project = eval_project.project()
    opts = RunOptions(suite=context.partition_key, tier=config.tier, model=config.model, repeats=config.repeats,
                      no_cache=config.no_cache, concurrency=config.concurrency)
    run, record = run_pipeline(project, opts, dagster_run_id=context.run_id, store=eval_project.store())
    if record["dataset_hash"] != suite_dataset["version"]:
        # The files changed between the two steps: the run is stored, but say which version it used.
        context.log.warning(f"dataset changed during the run: {suite_dataset['version'][:12]} -> "
                            f"{record['dataset_hash'][:12]}")
    t = run.totals
    return dg.Output(
        {"run_id": run.run_id, "suite": record["suite"], "tier": record["tier"]},
        metadata={
            "run_id": run.run_id,
            "tier": record["tier"],
            "model": record["target_model"],
            "cases": t["n_cases"],
            "results": t["n_results"],
            "pass": t["n_pass"], "fail": t["n_fail"], "error": t["n_error"],
            "model_calls": t["model_calls"], "cache_hits": t["cache_hits"],
            "tokens_in": t["tokens_in"], "tokens_out": t["tokens_out"], "cost_usd": t["cost_usd"],
            "wall_s": t["wall_s"],
            "history": str(project.history_path),
        },
    )
