"""The policy layer: a versioned YAML release standard evaluated on a result table into a gate decision."""

from evalplatform.policy.evaluate import Decision, RuleResult, evaluate_policy, evaluate_rule
from evalplatform.policy.load import LoadedPolicy, load_policy, parse_policy, policy_json_schema
from evalplatform.policy.metrics import METRICS, MetricSpec
from evalplatform.policy.model import Bound, JudgeCalibration, JudgeRef, Policy, Promotion, Rule, Selection, Tags

__all__ = [
    "Bound", "Decision", "JudgeCalibration", "JudgeRef", "LoadedPolicy", "METRICS", "MetricSpec", "Policy",
    "Rule", "RuleResult", "Selection", "Tags", "evaluate_policy", "evaluate_rule", "load_policy",
    "parse_policy", "policy_json_schema",
]
