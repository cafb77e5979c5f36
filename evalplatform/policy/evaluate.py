"""Evaluate a policy on a result table (and a baseline): one RuleResult per rule and an overall decision.

Pure and Dagster-free: no I/O, no clock. Everything that is not a demonstrated PASS is said so:
bad rows, empty selections, missing baselines and internal failures become ERROR or NO_DATA with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Iterable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

import polars as pl

from evalplatform import results as rt
from evalplatform.policy.baseline import compare
from evalplatform.policy.metrics import METRICS, Calibrations
from evalplatform.policy.model import Policy, Rule, Selection
from evalplatform.policy.units import Missing, RuleFailure, Selected

REQUIRED = ("case_id", "repeat", "scorer", "outcome")
IDENTITY = ["case_id", "repeat", "scorer"]


class Outcome(StrEnum):
    """A rule's outcome; only PASS is a demonstrated pass."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    NO_DATA = "NO_DATA"
    ERROR = "ERROR"


class Overall(StrEnum):
    """A decision's verdict: PASS, BLOCK (a rule blocks), NO_DATA (nothing was demonstrated)."""

    PASS = "PASS"
    BLOCK = "BLOCK"
    NO_DATA = "NO_DATA"


class _Positional(BaseModel):
    """Fields may also be given in order (as the dataclasses these records replace took them)."""

    def __init__(self, *args: Any, **kwargs: Any):
        if args:
            kwargs.update(zip(type(self).model_fields, args))
        super().__init__(**kwargs)


class RuleResult(_Positional):
    """One rule's outcome with its numbers: the record every report, check and history row is made from."""

    model_config = ConfigDict(extra="ignore", use_enum_values=True)  # validated as enums, held as plain text

    rule_id: str
    metric: str
    severity: str
    outcome: Outcome
    blocks: bool
    reason: str
    numbers: dict[str, Any] = Field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Decision(_Positional):
    """PASS only when a blocking rule had data and passed and none blocks (or the policy allows an
    empty decision); BLOCK when a rule blocks; NO_DATA when nothing was demonstrated. Only PASS passes.

    A typed, versioned record: `to_dict()` is what the history and the JSON report store, and
    `Decision.from_record` is the one way to rebuild a decision from what was stored.
    """

    model_config = ConfigDict(extra="ignore", use_enum_values=True)  # validated as enums, held as plain text

    overall: Overall
    rules: list[RuleResult]
    policy_name: str
    policy_hash: str | None = None
    warnings: list[str] = Field(default_factory=list)
    inputs: dict[str, Any] = Field(default_factory=dict)
    schema_version: Literal[1] = 1

    @property
    def passed(self) -> bool:
        return self.overall == Overall.PASS

    @property
    def blocked(self) -> bool:
        """Anything but PASS stops the change: BLOCK and NO_DATA both exit 1 and are never promoted."""
        return not self.passed

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "overall": str(self.overall), "policy": self.policy_name,
                "policy_hash": self.policy_hash, "inputs": self.inputs, "warnings": list(self.warnings),
                "rules": [r.to_dict() for r in self.rules]}

    @classmethod
    def from_record(cls, stored: Mapping[str, Any]) -> "Decision":
        """A decision as stored (a history `decisions` row decoded, or `to_dict()`/JSON report output)."""
        inputs = stored.get("inputs") or {}
        name = stored.get("policy") or stored.get("policy_name") or inputs.get("policy") or "policy"
        warnings = list(stored.get("warnings") or [])
        if not warnings and inputs.get("plan_warnings"):
            warnings = [f"plan: {w}" for w in inputs["plan_warnings"]]
        return cls(overall=stored["overall"], rules=[RuleResult.model_validate(r) for r in stored.get("rules") or []],
                   policy_name=str(name), policy_hash=stored.get("policy_hash"), warnings=warnings, inputs=inputs)


@dataclass
class Prepared:
    """A result table checked once: `_problem` names what is wrong with a row (null when it is sound)."""

    frame: pl.DataFrame | None
    label: str
    fatal: str | None = None
    sound: bool = False


def prepare(frame: pl.DataFrame | None, label: str) -> Prepared:
    if frame is None:
        return Prepared(None, label)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        return Prepared(None, label, f"{label}: missing column(s) {', '.join(missing)}")
    df = rt.conform(frame)
    if _looks_sound(df):
        return Prepared(df.with_columns(pl.lit(None, dtype=pl.Utf8).alias("_problem")), label, sound=True)
    score = pl.col("score")
    problem = (
        pl.when(pl.col("case_id").is_null() | (pl.col("case_id").str.len_bytes() == 0)).then(pl.lit("empty case_id"))
        .when(pl.col("repeat").is_null()).then(pl.lit("missing repeat"))
        .when(pl.col("scorer").is_null()).then(pl.lit("missing scorer"))
        .when(~pl.col("outcome").is_in(list(rt.OUTCOMES)) | pl.col("outcome").is_null())
        .then(pl.lit("outcome not one of pass/fail/error/skipped"))
        .when(score.is_nan() | score.is_infinite()).then(pl.lit("score is NaN or infinite"))
        .when((score < 0) | (score > 1)).then(pl.lit("score outside [0, 1]"))
        .when(pl.struct(IDENTITY).is_duplicated()).then(pl.lit("duplicate (case_id, repeat, scorer) row"))
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    return Prepared(df.with_columns(problem.alias("_problem")), label)


def _looks_sound(df: pl.DataFrame) -> bool:
    """Cheap whole-frame checks; the per-row problem column is only built when one of them fails."""
    score = pl.col("score")
    found = df.select(
        (pl.col("case_id").is_null() | (pl.col("case_id").str.len_bytes() == 0)).any().alias("a"),
        pl.col("repeat").is_null().any().alias("b"),
        pl.col("scorer").is_null().any().alias("c"),
        (~pl.col("outcome").is_in(list(rt.OUTCOMES)) | pl.col("outcome").is_null()).any().alias("d"),
        (score.is_nan() | score.is_infinite() | (score < 0) | (score > 1)).any().alias("e"),
        # Distinct hashes prove distinct keys; equal hashes (a duplicate, or a rare collision) take the slow path.
        (pl.struct(IDENTITY).hash().n_unique() != pl.len()).alias("f"),
    ).row(0)
    return not any(bool(x) for x in found)


def selection_expr(sel: Selection) -> pl.Expr:
    expr = pl.lit(True)
    if sel.suite is not None:
        expr &= pl.col("suite") == sel.suite
    if sel.scorers():
        expr &= pl.col("scorer").is_in(sel.scorers())
    if sel.excluded():
        expr &= ~pl.col("scorer").is_in(sel.excluded())
    if sel.criterion is not None:
        expr &= pl.col("criterion").is_in([sel.criterion] if isinstance(sel.criterion, str) else sel.criterion)
    if sel.case_id_pattern is not None:
        expr &= pl.col("case_id").str.contains(sel.case_id_pattern).fill_null(False)
    has = lambda tag: pl.col("tags").list.contains(pl.lit(tag)).fill_null(False)  # noqa: E731
    if sel.source is not None:
        sources = [sel.source] if isinstance(sel.source, str) else sel.source
        expr &= pl.any_horizontal([has(f"source:{s}") for s in sources])
    if sel.tags.any:
        expr &= pl.any_horizontal([has(t) for t in sel.tags.any])
    for tag in sel.tags.all:
        expr &= has(tag)
    return expr


class _Selector:
    """Selections shared by several rules are filtered once."""

    def __init__(self, prepared: Prepared):
        self.prepared = prepared
        self.cache: dict[str, Selected] = {}

    def __call__(self, sel: Selection) -> Selected:
        key = sel.model_dump_json()
        if key not in self.cache:
            everything = sel == Selection()
            frame = self.prepared.frame
            self.cache[key] = Selected(frame if everything else frame.filter(selection_expr(sel)))
        return self.cache[key]


def _bad_rows(rows: Selected, label: str) -> str | None:
    bad = rows.rows.filter(pl.col("_problem").is_not_null())
    if bad.height == 0:
        return None
    first = bad.row(0, named=True)
    return (f"{label}: {bad.height} bad row(s), e.g. {first['_problem']} (case_id={first['case_id']!r}, "
            f"repeat={first['repeat']}, scorer={first['scorer']!r})")


def _clean(numbers: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe numbers: non-finite floats become None, numpy scalars plain Python."""
    out = {}
    for key, value in numbers.items():
        if hasattr(value, "item") and not isinstance(value, (list, dict)):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = value
    return out


def _judge_absolute(numbers: dict, rule: Rule) -> tuple[str, str]:
    est, lo, hi, t = numbers["estimate"], numbers.get("lower"), numbers.get("upper"), rule.bound.value
    if rule.bound.kind == "min":
        if lo is None:
            return ("PASS", f"{est:.4g} >= {t:g}") if est >= t else ("FAIL", f"{est:.4g} < {t:g}")
        if lo >= t:
            return "PASS", f"lower bound {lo:.3f} >= {t:g}"
        if hi < t:
            return "FAIL", f"upper bound {hi:.3f} < {t:g}"
    else:
        if lo is None:
            return ("PASS", f"{est:.4g} <= {t:g}") if est <= t else ("FAIL", f"{est:.4g} > {t:g}")
        if hi <= t:
            return "PASS", f"upper bound {hi:.3f} <= {t:g}"
        if lo > t:
            return "FAIL", f"lower bound {lo:.3f} > {t:g}"
    return "INCONCLUSIVE", f"{t:g} lies inside [{lo:.3f}, {hi:.3f}] (estimate {est:.3f}): more cases needed"


def _coverage(numbers: dict) -> str:
    """Says so when the baseline ran fewer of the rule's cases than the candidate (partial_baseline: shared)."""
    missing = numbers.get("n_without_baseline") or 0
    if not missing:
        return ""
    return (f"; the baseline ran {numbers['n_candidate'] - missing} of the candidate's {numbers['n_candidate']} "
            f"cases: compared on those only ({missing} left out)")


def _relative_reason(numbers: dict, rule: Rule) -> str:
    if "ratio_lower" in numbers:  # p95_latency_ms, cost_per_case (policy/ratio.py)
        from evalplatform.policy.ratio import reason

        return reason(numbers) + _coverage(numbers)
    if numbers.get("lower") is None:
        return (f"{numbers['estimate']:.4g} vs baseline {numbers['baseline_estimate']:.4g}: limit "
                f"{numbers['threshold']:.4g} (+{rule.bound.value:.0%})") + _coverage(numbers)
    change = f"change {numbers['estimate']:+.3f} [{numbers['lower']:+.3f}, {numbers['upper']:+.3f}]"
    text = (f"{change} on {numbers['n']} aligned cases vs margin -{rule.bound.value:g} ({numbers['n_added']} added, "
            f"{numbers['n_removed']} removed, {numbers['n_renamed']} renamed, {numbers['n_content_changed']} changed)")
    if numbers.get("rerun_baseline_advised"):
        text += "; over 10% of the cases both ran changed content: rerun the baseline"
    return text + _coverage(numbers)


def _blocks(rule: Rule, outcome: str) -> bool:
    if rule.severity != "blocking" or outcome == "PASS":
        return False
    if outcome == "INCONCLUSIVE":
        return rule.inconclusive == "block"
    if outcome == "NO_DATA":
        return rule.no_data == "block"
    return True


def _result(rule: Rule, outcome: str, reason: str, numbers: dict | None = None) -> RuleResult:
    base = {"n": None, "k": None, "estimate": None, "lower": None, "upper": None,
            "threshold": rule.bound.value, "bound": rule.bound.kind, "method": rule.method,
            "confidence": rule.confidence}
    return RuleResult(rule.id, rule.metric, rule.severity, outcome, _blocks(rule, outcome), reason,
                      _clean({**base, **(numbers or {})}), rule.description)


def _not_allowed_reason(scorer: str, why: str) -> str:
    return f"judge {scorer} is not allowed to gate: {why}"


def _judge_not_allowed(rule: Rule, rows: Selected, not_allowed: Mapping[str, str]) -> str | None:
    """Why the rule cannot be decided on its rows: it names, or its rows include, a judge that may not gate.

    A rule that names such a judge cannot gate on it even when the judge is advisory; broad rules
    already leave advisory scorers out, so any such rows left in them would gate.
    """
    if not not_allowed:
        return None
    named = [s for s in (rule.select.scorers() or []) if s in not_allowed]
    if named:
        return _not_allowed_reason(named[0], not_allowed[named[0]])
    if rows.height:
        present = sorted(rows.rows.filter(pl.col("scorer").is_in(list(not_allowed)))["scorer"].unique().to_list())
        if present:
            return _not_allowed_reason(present[0], not_allowed[present[0]]) + (
                f" (+{len(present) - 1} more judge(s))" if len(present) > 1 else "")
    return None


def _scoped(rule: Rule, outcome: str, reason: str) -> RuleResult:
    """A rule the run's tier decided by its choice of scorers (evalplatform.tiers.rule_scope): not applicable
    there (NO_DATA that never blocks, and is never the evidence a PASS needs), or ERROR."""
    result = _result(rule, outcome, reason, {"applicable": outcome != "NO_DATA"})
    if outcome == "NO_DATA":
        result.blocks = False
    return result


def _shared_scorers(rule: Rule, rows: Selected, base_rows: Selected) -> tuple[Selected, Selected, str]:
    """Both sides of a relative rule on the scorers both ran: a candidate of the PR tier (no LLM judges) against
    a nightly baseline (judges too) compares like with like, and the reason says what was left out."""
    cand_s = set(rows.rows["scorer"].unique().to_list())
    base_s = set(base_rows.rows["scorer"].unique().to_list())
    if cand_s == base_s or not (cand_s & base_s):
        return rows, base_rows, ""
    shared = sorted(cand_s & base_s)
    left = sorted(cand_s ^ base_s)
    note = f"; compared on the {len(shared)} scorer(s) both ran (left out: {', '.join(left[:5])}" + \
        (f", +{len(left) - 5} more" if len(left) > 5 else "") + ")"
    keep = pl.col("scorer").is_in(shared)
    return Selected(rows.rows.filter(keep)), Selected(base_rows.rows.filter(keep)), note


def _evaluate(rule: Rule, cand: _Selector, base: _Selector | None, calibrations: Calibrations | None,
              input_warnings: list[str], import_warnings: str,
              not_allowed: Mapping[str, str] | None = None,
              scope: Mapping[str, tuple[str, str]] | None = None) -> RuleResult:
    if cand.prepared.fatal:
        return _result(rule, "ERROR", cand.prepared.fatal)
    if scope and rule.id in scope:
        return _scoped(rule, *scope[rule.id])
    rows = cand(rule.select)
    refused = _judge_not_allowed(rule, rows, not_allowed or {})
    if refused:
        return _result(rule, "ERROR", refused)
    if rows.height == 0:
        return _missing(rule, "the selection matched no result rows")
    bad = None if cand.prepared.sound else _bad_rows(rows, cand.prepared.label)
    if bad:
        return _result(rule, "ERROR", bad)
    if input_warnings and (rule.on_incomplete or import_warnings) == "error":
        return _result(rule, "ERROR", f"incomplete input: {input_warnings[0]}"
                                      + (f" (+{len(input_warnings) - 1} more)" if len(input_warnings) > 1 else ""))
    spec = METRICS[rule.metric]
    try:
        if not rule.bound.relative:
            numbers = spec.absolute(rows, rule, calibrations)
            outcome, reason = _judge_absolute(numbers, rule)
            return _result(rule, outcome, reason, numbers)
        if base is None or (base.prepared.frame is None and not base.prepared.fatal):
            return _missing(rule, "no baseline (none promoted for the suite, or none given)")
        if base.prepared.fatal:
            return _result(rule, "ERROR", base.prepared.fatal)
        base_rows = base(rule.select)
        if base_rows.height == 0:
            return _missing(rule, "the selection matched no baseline rows")
        bad = None if base.prepared.sound else _bad_rows(base_rows, base.prepared.label)
        if bad:
            return _result(rule, "ERROR", bad)
        rows, base_rows, note = _shared_scorers(rule, rows, base_rows)
        numbers = compare(rule, rows, base_rows)
        verdict = numbers.pop("verdict")
        return _result(rule, verdict, _relative_reason(numbers, rule) + note, numbers)
    except Missing as exc:
        return _missing(rule, str(exc))
    except RuleFailure as exc:
        return _result(rule, "ERROR", str(exc))
    except Exception as exc:  # a failure inside a statistic must not pass the rule, nor hide the others
        first = str(exc).splitlines()[0] if str(exc) else ""
        return _result(rule, "ERROR", f"could not compute {rule.metric}: {type(exc).__name__}: {first}")


def _missing(rule: Rule, why: str) -> RuleResult:
    if rule.on_missing == "no_data":
        return _result(rule, "NO_DATA", why + " (on_missing: no_data)")
    return _result(rule, "ERROR", why + " (on_missing: error)")


def evaluate_rule(rule: Rule, results: pl.DataFrame, baseline: pl.DataFrame | None = None, *,
                  calibrations: Calibrations | None = None, input_warnings: Iterable[str] = (),
                  import_warnings: str = "error", judges_not_allowed: Mapping[str, str] | None = None,
                  scope: Mapping[str, tuple[str, str]] | None = None) -> RuleResult:
    """One rule on a result table (and a baseline for relative bounds): what an asset check wraps."""
    base = _Selector(prepare(baseline, "baseline")) if baseline is not None else None
    return _evaluate(rule, _Selector(prepare(results, "results")), base, calibrations,
                     list(input_warnings), import_warnings, judges_not_allowed, scope)


def evaluate_policy(policy: Policy, results: pl.DataFrame, baseline: pl.DataFrame | None = None, *,
                    calibrations: Calibrations | None = None, input_warnings: Iterable[str] = (),
                    policy_hash: str | None = None, results_label: str = "results",
                    baseline_label: str = "baseline", judges_not_allowed: Mapping[str, str] | None = None,
                    scope: Mapping[str, tuple[str, str]] | None = None) -> Decision:
    """Every rule of the policy, and the overall decision: BLOCK if any blocking rule does not pass,
    PASS if one had data and passed, otherwise NO_DATA (PASS only if the policy says allow_empty).

    Args:
        policy: a validated Policy (see load_policy).
        results: the candidate's canonical result table.
        baseline: the baseline's result table, or None (relative rules then follow their on_missing).
        calibrations: judge calibration records by name, for judge_corrected_pass_rate rules.
        input_warnings: importer warnings (an incomplete file); rules that select rows turn ERROR
            unless the policy's import_warnings (or the rule's on_incomplete) says otherwise.
        policy_hash: sha256 of the policy file, carried into the decision.
        results_label, baseline_label: how reasons name the inputs (e.g. their file names).
        judges_not_allowed: scorer id -> why that judge may not gate (stale, refused, uncalibrated; see
            decide.judges_not_allowed): every rule that names it, or reads its rows, is ERROR.
        scope: rule id -> (outcome, reason) for the rules the run's tier decided by its choice of scorers
            (evalplatform.tiers.rule_scope): not applicable there (NO_DATA, never blocking) or ERROR.
    """
    warnings = list(input_warnings)
    rules = evaluate_rules(policy, results, baseline, calibrations=calibrations, input_warnings=warnings,
                           results_label=results_label, baseline_label=baseline_label,
                           judges_not_allowed=judges_not_allowed, scope=scope)
    return decision_from_rules(policy, rules, policy_hash, warnings)


def evaluate_rules(policy: Policy, results: pl.DataFrame, baseline: pl.DataFrame | None = None, *,
                   calibrations: Calibrations | None = None, input_warnings: Iterable[str] = (),
                   results_label: str = "results", baseline_label: str = "baseline",
                   judges_not_allowed: Mapping[str, str] | None = None,
                   scope: Mapping[str, tuple[str, str]] | None = None) -> list[RuleResult]:
    """One result per rule of the policy, before the overall decision (see evaluate_policy)."""
    warnings = list(input_warnings)
    cand = _Selector(prepare(results, results_label))
    base = _Selector(prepare(baseline, baseline_label)) if baseline is not None else None
    return [_evaluate(r, cand, base, calibrations, warnings, policy.import_warnings, judges_not_allowed, scope)
            for r in policy.rules]


def decision_from_rules(policy: Policy, rules: list[RuleResult], policy_hash: str | None = None,
                        warnings: Iterable[str] = ()) -> Decision:
    """The overall decision from one result per rule (after evaluate_policy, or after an adaptive extension)."""
    notes = [f"advisory {r.rule_id}: {r.outcome}: {r.reason}" for r in rules
             if r.severity == "advisory" and r.outcome != "PASS"]
    overall, note = _overall(policy, rules)
    return Decision(overall, rules, policy.name, policy_hash, list(warnings) + notes + ([note] if note else []))


NO_EVIDENCE = "no blocking rule had data and passed"


def _overall(policy: Policy, rules: list[RuleResult]) -> tuple[str, str | None]:
    """BLOCK if a rule blocks; PASS if a blocking rule had data and passed; else NO_DATA, unless the
    policy says allow_empty. A NO_DATA decision makes its blocking rules block, so that every reader
    of single rules (asset checks, JUnit, tables) stops the change too."""
    if any(r.blocks for r in rules):
        return "BLOCK", None
    if any(r.severity == "blocking" and r.outcome == "PASS" for r in rules):
        return "PASS", None
    if policy.allow_empty:
        return "PASS", f"decision: PASS although {NO_EVIDENCE} (the policy says allow_empty: true)"
    for r in rules:
        if r.severity == "blocking":
            r.blocks = True
            r.reason += f"; blocks: {NO_EVIDENCE} (decision NO_DATA; allow_empty: true would let it pass)"
    what = "the policy is advisory_only" if policy.advisory_only else NO_EVIDENCE
    return "NO_DATA", f"decision: NO_DATA: {what}; nothing was demonstrated, so nothing passes " \
                      "(allow_empty: true at the top of the policy would let it pass)"


