"""The evalplatform code location: datasets -> scored runs -> gates -> promoted baseline."""

import dagster as dg

from assets.baseline import promoted_baseline
from assets.checks import RULE_CHECKS
from assets.judges import JUDGE_ASSETS, JUDGE_CHECKS
from assets.resources import RESOURCES
from assets.scored_runs import scored_run
from assets.suites import suite_dataset
from sensors.dataset_changes import dataset_change_sensor
from sensors.jobs import (
    judge_nightly_job,
    judge_nightly_schedule,
    nightly_eval_job,
    nightly_sweep,
    pr_eval_job,
    promotion_automation,
)

defs = dg.Definitions(
    assets=[suite_dataset, scored_run, promoted_baseline, *JUDGE_ASSETS],
    asset_checks=[*RULE_CHECKS, *JUDGE_CHECKS],
    jobs=[pr_eval_job, nightly_eval_job, judge_nightly_job],
    schedules=[nightly_sweep, judge_nightly_schedule],
    sensors=[promotion_automation, dataset_change_sensor],
    resources=RESOURCES,
)
