"""The project's code location with its PR job on the multiprocess executor (each step a process of its own).

pr_eval_job runs in-process for speed; a scaled-out deployment fans steps out instead, which is
what the Postgres test exercises. Same assets, checks and resources; no sensors or schedules, so
the daemon launches nothing but the runs the test submits.
"""

import dagster as dg

import definitions as project  # the module, not its Definitions: one Definitions per code location file
from sensors.jobs import EVAL_SELECTION, pr_eval_job

# Steps fork from a server that has already imported the code location and Great Expectations,
# instead of each paying ~3-8 s of imports in a fresh interpreter.
FORKSERVER = {"start_method": {"forkserver": {"preload_modules": ["definitions", "great_expectations"]}}}

pr_eval_job_multiprocess = dg.define_asset_job(
    pr_eval_job.name,  # the name CI launches (evalplatform ci)
    selection=EVAL_SELECTION,
    executor_def=dg.multiprocess_executor.configured(FORKSERVER),
    tags={"tier": "pr"},
    config={"ops": {"scored_run": {"config": {"tier": "pr"}}}},
    description=pr_eval_job.description,
)

defs = dg.Definitions(
    assets=project.defs.assets,
    asset_checks=project.defs.asset_checks,
    jobs=[pr_eval_job_multiprocess],
    resources=project.defs.resources,
)
