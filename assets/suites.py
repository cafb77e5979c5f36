"""The dataset of each suite as an asset: validated, batch-checked once per version, versioned by content hash."""


import dagster as dg

from assets.partitions import suite_partitions
from assets.resources import EvalProject
from evalplatform.pipeline import checked_dataset, resolve_suite
from evalplatform.runner import load_dataset, plan_run


@dg.asset(
    partitions_def=suite_partitions,
    group_name="datasets",
    kinds={"polars", "duckdb"},
    description="Cases of a suite (JSONL/CSV/Parquet), rows validated by pydantic, the batch by Great Expectations; "
    "the data version is the sha256 of the canonical content.",
)
def suite_dataset(context: dg.AssetExecutionContext, eval_project: EvalProject) -> dg.Output[dict]:
    project = eval_project.project()
    suite = resolve_suite(project, context.partition_key)
    # Row and field checks first (they write nothing), then the batch check remembered per version.
    plan = plan_run(suite, "nightly", dataset=load_dataset(suite))
    dataset, check = checked_dataset(project, suite, eval_project.store(), plan.dataset)
    value = {"suite": suite.name, "version": dataset.version, "n_cases": dataset.n, "files": list(dataset.files)}
    return dg.Output(
        value,
        data_version=dg.DataVersion(dataset.version),
        metadata={
            "dataset_hash": dataset.version,
            "n_cases": dataset.n,
            "gx_check": "passed (remembered for this version)" if check["cached"] else "passed",
            "files": dg.MetadataValue.json(list(dataset.files)),
        },
    )
