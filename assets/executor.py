"""The code location's executor: in-process unless a run's config asks for one process per step."""


import dagster as dg
from dagster._core.definitions.executor_definition import (  # the pieces of Dagster's own default executor
    IN_PROC_CONFIG,
    MULTI_PROC_CONFIG,
    _get_default_executor_requirements,
    multi_or_in_process_executor,
)

# Dagster's default is multiprocess (about 2 s of process start per step here); ours flips the default only.
in_process_unless_told = dg.ExecutorDefinition(
    name="in_process_unless_told",
    config_schema=dg.Field(dg.Selector({"multiprocess": MULTI_PROC_CONFIG, "in_process": IN_PROC_CONFIG}),
                           default_value={"in_process": {}}),
    executor_creation_fn=multi_or_in_process_executor.executor_creation_fn,
    requirements=_get_default_executor_requirements,
    description="In-process by default (one step after another in the run's process); "
                "`execution: {config: {multiprocess: {}}}` runs each step in its own process.",
)
