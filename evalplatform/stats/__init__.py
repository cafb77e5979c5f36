"""Statistics for release gates, judge calibration and monitoring; one module per idea, public names re-exported here."""

from ._checks import StatsInputError
from .alignment import align_cases
from .bootstrap import paired_bootstrap_mean_diff
from .intervals import (
    GATE_BOUNDS,
    INTERVAL_METHODS,
    agresti_coull_interval,
    clopper_pearson_interval,
    clopper_pearson_lower_bound,
    clopper_pearson_upper_bound,
    interval_exact_coverage,
    pass_rate_gate,
    wilson_interval,
    wilson_lower_bound,
    wilson_upper_bound,
)
from .judges import (
    agreement_statistics,
    calibration_sample_size,
    judge_confusion_metrics,
    judge_corrected_ci_lee2025,
    judge_corrected_double_sampling,
    judge_drift_test,
    rogan_gladen,
    rogan_gladen_ci_delta,
)
from .power import (
    implied_pass_rate_for_margin,
    margin_of_error,
    mde_paired,
    n_all_pass_needed,
    n_for_absolute_gate,
    n_for_noninferiority_paired,
    required_n_paired,
    sample_size_for_margin,
)
from .repeats import (
    case_flip_probability,
    clustered_pass_rate,
    pass_at_k,
    pass_hat_k,
    resampling_variance_ratio,
    suite_repeat_summary,
)
from .scores import se_bernoulli, se_clustered, se_paired
from .sampling import horvitz_thompson_rate, stratified_failure_rate

# These modules import scipy (~0.5 s) at their top: loaded on first use, so a run that needs only
# Wilson bounds and clustered rates does not pay for them.
_LAZY = {
    "FLIP_TESTS": "mutation", "min_detectable_flips": "mutation", "mutant_detection_probability": "mutation",
    "mutation_score": "mutation",
    "mcnemar_test": "paired", "noninferiority_test_paired": "paired", "paired_diff_ci_tango": "paired",
    "paired_diff_ci_tango_envelope": "paired", "paired_diff_ci_wald": "paired", "regression_gate_paired": "paired",
    "alpha_for_look_open_ended": "sequential", "alpha_per_look": "sequential", "group_sequential_levels": "sequential", "alpha_spent_obrien_fleming": "sequential",
    "alpha_spent_pocock": "sequential", "confidence_sequence_bernoulli": "sequential",
    "monitor_alert": "sequential", "peeking_type1_error": "sequential",
    "GateProbabilities": "decidability", "absolute_detectable_change": "decidability",
    "absolute_gate_probabilities": "decidability", "absolute_outcomes": "decidability", "best_bound": "decidability",
    "n_for_perfect_pass": "decidability", "paired_detectable_drop": "decidability",
    "paired_gate_probabilities": "decidability", "poisson_binomial": "decidability",
    "pooled_discordance": "decidability",
    "rerun_distribution": "decidability", "smallest_n": "decidability", "smoothed_rate": "decidability",
    "tango_lower_bound": "decidability", "tango_statistic_grid": "decidability",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evalplatform.stats' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "GATE_BOUNDS", "INTERVAL_METHODS", "FLIP_TESTS", "GateProbabilities", "StatsInputError",
    "absolute_detectable_change", "absolute_gate_probabilities", "absolute_outcomes", "alpha_per_look", "best_bound", "group_sequential_levels",
    "n_for_perfect_pass", "paired_detectable_drop", "paired_gate_probabilities", "poisson_binomial", "pooled_discordance",
    "rerun_distribution", "smallest_n", "smoothed_rate", "tango_lower_bound", "tango_statistic_grid",
    "agreement_statistics", "agresti_coull_interval", "align_cases", "alpha_for_look_open_ended",
    "alpha_spent_obrien_fleming", "alpha_spent_pocock", "calibration_sample_size", "case_flip_probability",
    "clopper_pearson_interval", "clopper_pearson_lower_bound", "clopper_pearson_upper_bound",
    "clustered_pass_rate", "confidence_sequence_bernoulli", "horvitz_thompson_rate",
    "implied_pass_rate_for_margin", "interval_exact_coverage", "judge_confusion_metrics",
    "judge_corrected_ci_lee2025", "judge_corrected_double_sampling", "judge_drift_test",
    "margin_of_error", "mcnemar_test", "mde_paired", "min_detectable_flips", "monitor_alert",
    "mutant_detection_probability", "mutation_score", "n_all_pass_needed", "n_for_absolute_gate",
    "n_for_noninferiority_paired", "noninferiority_test_paired", "paired_bootstrap_mean_diff",
    "paired_diff_ci_tango", "paired_diff_ci_tango_envelope", "paired_diff_ci_wald", "pass_at_k", "pass_hat_k",
    "pass_rate_gate", "peeking_type1_error", "regression_gate_paired", "required_n_paired", "resampling_variance_ratio",
    "rogan_gladen", "rogan_gladen_ci_delta", "sample_size_for_margin", "se_bernoulli", "se_clustered",
    "se_paired", "stratified_failure_rate", "suite_repeat_summary", "wilson_interval",
    "wilson_lower_bound", "wilson_upper_bound",
]
