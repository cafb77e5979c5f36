"""Outcome graders for agents: the final state, tools required or forbidden, and step and cost budgets.

They read the trial's trace (a Python target's tool calls and final state). None of them cares in
which order tools were called unless it says `ordered: true`: grade the outcome, not the path. A
row without a trace (a model target's text) is an error, never a pass.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalplatform.conversation import TRACE_COLUMN, load_trace
from evalplatform.errors import InputError
from evalplatform.prompt import template_fields
from evalplatform.scorers.base import ScorerBase, register
from evalplatform.textio import check_regex

NO_TRACE = "the target recorded no trajectory (tool calls and final state come from a Python target)"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# What the regex engine (Rust's, via polars) treats as syntax; everything else is literal.
_META = set("\\.+*?()|[]{}^$#&-~")


def escape(text: str) -> str:
    return "".join("\\" + c if c in _META else c for c in text)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _fullmatch(pattern: str, text: str) -> bool:
    return bool(pl.select(pl.lit(text).str.contains(f"^(?:{pattern})$")).item())


def json_subset(expected: Any, actual: Any, path: str = "") -> str | None:
    """Where `actual` fails to contain `expected` (None when it does): objects may have more keys, arrays
    match element by element with equal length, scalars are equal (true is not 1)."""
    where = path or "(root)"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {_as_text(actual)[:80]}"
        for key, want in expected.items():
            if key not in actual:
                return f"{path + '.' if path else ''}{key}: missing"
            problem = json_subset(want, actual[key], f"{path + '.' if path else ''}{key}")
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{where}: expected a list of {len(expected)}, got {_as_text(actual)[:80]}"
        for i, (want, got) in enumerate(zip(expected, actual)):
            problem = json_subset(want, got, f"{path}[{i}]")
            if problem:
                return problem
        return None
    same_kind = isinstance(expected, bool) == isinstance(actual, bool)
    if not same_kind or expected != actual or (expected is None) != (actual is None):
        return f"{where}: expected {_as_text(expected)[:80]}, got {_as_text(actual)[:80]}"
    return None


def _score_rows(frame: pl.DataFrame, check: Callable[[dict, dict], str | None]) -> pl.DataFrame:
    """Per row: None from `check` passes, text fails with that explanation; no trace is undecided."""
    scores: list[float | None] = []
    whys: list[str | None] = []
    traces = frame[TRACE_COLUMN].to_list() if TRACE_COLUMN in frame.columns else [None] * frame.height
    for row, text in zip(frame.iter_rows(named=True), traces):
        trace = load_trace(text)
        if trace is None:
            scores.append(None)
            whys.append(NO_TRACE)
            continue
        why = check(row, trace)
        scores.append(0.0 if why else 1.0)
        whys.append(why)
    return frame.with_columns(pl.Series("score", scores, dtype=pl.Float64),
                              pl.Series("explanation", whys, dtype=pl.Utf8))


@register
class FinalState(ScorerBase):
    """Passes when the trial's final state equals, contains (JSON subset) or validates against the spec."""

    type: Literal["final_state"] = "final_state"
    match: Literal["equals", "subset", "schema"] = Field("subset", description="equals, subset (the state may "
                                                         "hold more), or schema (`expected` is a JSON Schema)")
    expected: Any = Field(None, description="the expected state (or JSON Schema); or use `column`")
    column: str | None = Field(None, description="case field holding each case's expected state")

    @model_validator(mode="after")
    def _one_source(self) -> "FinalState":
        if ("expected" in self.model_fields_set) == (self.column is not None):
            raise ValueError("set exactly one of `expected` or `column`")
        if self.match == "schema" and "expected" in self.model_fields_set:
            from evalplatform.scorers.formats import _check_schema

            _check_schema(self.expected)
        return self

    def columns_needed(self) -> list[str]:
        return [self.column] if self.column else []

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        import jsonschema

        def check(row: dict, trace: dict) -> str | None:
            want = self.expected
            if self.column:
                want = row[self.column]
                if isinstance(want, str) and want[:1] in ("{", "["):
                    want = json.loads(want)
            state = trace.get("state")
            if self.match == "equals":
                problem = json_subset(want, state)
                if problem:
                    return f"final state differs: {problem}"
                extra = json_subset(state, want)  # all that was expected is there: what else is?
                return f"final state holds more than expected: {extra.split(':')[0]}" if extra else None
            if self.match == "subset":
                problem = json_subset(want, state)
                return f"final state does not match: {problem}" if problem else None
            err = next(iter(jsonschema.Draft202012Validator(want).iter_errors(state)), None)
            if err is not None:
                where = "/".join(str(p) for p in err.absolute_path) or "(root)"
                return f"final state violates the schema at {where}: {err.message}"
            return None

        return _score_rows(frame, check)


class CallPattern(BaseModel):
    """A tool call to look for: the tool's name and, per argument, a regular expression its value must match
    in full (`{{ field }}` is replaced by the case's field, matched literally)."""

    model_config = ConfigDict(extra="forbid")

    tool: str = Field(min_length=1)
    arguments: dict[str, str] = Field(default_factory=dict)

    @field_validator("arguments")
    @classmethod
    def _patterns(cls, v: dict[str, str]) -> dict[str, str]:
        for pattern in v.values():
            try:
                template_fields(pattern)
            except InputError as exc:
                raise ValueError(exc.message) from None
            check_regex(_PLACEHOLDER.sub("x", pattern))
        return v

    def fields(self) -> list[str]:
        return [f for p in self.arguments.values() for f in template_fields(p)]

    def matches(self, call: dict, row: dict) -> bool:
        if call.get("name") != self.tool:
            return False
        args = call.get("arguments") or {}
        for name, pattern in self.arguments.items():
            if name not in args:
                return False
            filled = _PLACEHOLDER.sub(lambda m: escape(_as_text(row[m.group(1)])), pattern)
            if not _fullmatch(filled, _as_text(args[name])):
                return False
        return True

    def describe(self) -> str:
        args = ", ".join(f"{k}=/{v}/" for k, v in self.arguments.items())
        return f"{self.tool}({args})"


def _single_as_calls(data: Any) -> Any:
    """`tool:` and `arguments:` as shorthand for `calls: [{tool, arguments}]`."""
    if isinstance(data, dict) and "tool" in data and "calls" not in data:
        data = dict(data)
        call = {"tool": data.pop("tool")}
        if "arguments" in data:
            call["arguments"] = data.pop("arguments")
        data["calls"] = [call]
    return data


@register
class ToolCalled(ScorerBase):
    """Passes when every listed call was made (at least `times` times), in any order unless `ordered: true`."""

    type: Literal["tool_called"] = "tool_called"
    calls: list[CallPattern] = Field(min_length=1, description="the calls required (or give `tool` and `arguments`)")
    ordered: bool = Field(False, description="require the calls in this order (other calls may come between)")
    times: int = Field(1, ge=1, description="matching calls each pattern needs at least")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _single_as_calls(data)

    def columns_needed(self) -> list[str]:
        return list(dict.fromkeys(f for c in self.calls for f in c.fields()))

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        def check(row: dict, trace: dict) -> str | None:
            made = trace.get("tool_calls") or []
            if self.ordered:
                pos = 0
                for pattern in self.calls:
                    for _ in range(self.times):
                        pos = next((j + 1 for j in range(pos, len(made)) if pattern.matches(made[j], row)), -1)
                        if pos < 0:
                            return f"no {pattern.describe()} in order (calls: {_names(made)})"
                return None
            for pattern in self.calls:
                n = sum(1 for c in made if pattern.matches(c, row))
                if n < self.times:
                    return f"{pattern.describe()} called {n} time(s), needs {self.times} (calls: {_names(made)})"
            return None

        return _score_rows(frame, check)


@register
class ToolNotCalled(ScorerBase):
    """Passes when no call to the tool(s) was made (only calls whose arguments match, when `arguments` is set)."""

    type: Literal["tool_not_called"] = "tool_not_called"
    tool: str | list[str] = Field(description="the forbidden tool, or several")
    arguments: dict[str, str] = Field(default_factory=dict, description="forbidden only with these arguments "
                                                                       "(regular expressions, {{ field }} allowed)")

    def _patterns(self) -> list[CallPattern]:
        tools = [self.tool] if isinstance(self.tool, str) else self.tool
        return [CallPattern(tool=t, arguments=self.arguments) for t in tools]

    @model_validator(mode="after")
    def _valid(self) -> "ToolNotCalled":
        self._patterns()
        return self

    def columns_needed(self) -> list[str]:
        return list(dict.fromkeys(f for p in self._patterns() for f in p.fields()))

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        patterns = self._patterns()

        def check(row: dict, trace: dict) -> str | None:
            for call in trace.get("tool_calls") or []:
                hit = next((p for p in patterns if p.matches(call, row)), None)
                if hit is not None:
                    args = json.dumps(call.get("arguments") or {}, sort_keys=True, ensure_ascii=False)
                    return f"forbidden call {call.get('name')}({args[1:-1]})"
            return None

        return _score_rows(frame, check)


@register
class TrajectoryBudget(ScorerBase):
    """Passes when the trial stayed within its budgets; an unknown cost or token count fails closed (error)."""

    type: Literal["trajectory_budget"] = "trajectory_budget"
    max_steps: int | None = Field(None, ge=0, description="steps the target reported")
    max_tool_calls: int | None = Field(None, ge=0)
    max_cost_usd: float | None = Field(None, ge=0, allow_inf_nan=False)
    max_tokens: int | None = Field(None, ge=0, description="tokens in + out over all turns")
    max_latency_ms: float | None = Field(None, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _some_budget(self) -> "TrajectoryBudget":
        if all(getattr(self, k) is None for k in ("max_steps", "max_tool_calls", "max_cost_usd", "max_tokens",
                                                   "max_latency_ms")):
            raise ValueError("set at least one of max_steps, max_tool_calls, max_cost_usd, max_tokens, "
                             "max_latency_ms")
        return self

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        scored = _score_rows(frame, self._check)
        # A budget on what the target did not report cannot be shown to hold: undecided, not a pass.
        unknown = [self._unknown(r) for r in frame.iter_rows(named=True)]
        return scored.with_columns(
            pl.when(pl.Series(unknown, dtype=pl.Utf8).is_not_null()).then(pl.lit(None, dtype=pl.Float64))
            .otherwise(pl.col("score")).alias("score"),
            pl.when(pl.Series(unknown, dtype=pl.Utf8).is_not_null()).then(pl.Series(unknown, dtype=pl.Utf8))
            .otherwise(pl.col("explanation")).alias("explanation"))

    def _unknown(self, row: dict) -> str | None:
        if self.max_cost_usd is not None and row.get("cost_usd") is None:
            return "the target reported no cost: max_cost_usd cannot be checked"
        if self.max_tokens is not None and (row.get("tokens_in") is None or row.get("tokens_out") is None):
            return "the target reported no token counts: max_tokens cannot be checked"
        return None

    def _check(self, row: dict, trace: dict) -> str | None:
        over = []
        steps, calls = len(trace.get("steps") or []), len(trace.get("tool_calls") or [])
        if self.max_steps is not None and steps > self.max_steps:
            over.append(f"{steps} steps > {self.max_steps}")
        if self.max_tool_calls is not None and calls > self.max_tool_calls:
            over.append(f"{calls} tool calls > {self.max_tool_calls}")
        cost = row.get("cost_usd")
        if self.max_cost_usd is not None and cost is not None and cost > self.max_cost_usd:
            over.append(f"cost ${cost:.4f} > ${self.max_cost_usd:.4f}")
        if self.max_tokens is not None and row.get("tokens_in") is not None and row.get("tokens_out") is not None:
            tokens = row["tokens_in"] + row["tokens_out"]
            if tokens > self.max_tokens:
                over.append(f"{tokens} tokens > {self.max_tokens}")
        latency = row.get("latency_ms")
        if self.max_latency_ms is not None and latency is not None and latency > self.max_latency_ms:
            over.append(f"latency {latency:.0f} ms > {self.max_latency_ms:.0f} ms")
        return "over budget: " + "; ".join(over) if over else None


def _names(calls: list[dict]) -> str:
    return ", ".join(str(c.get("name")) for c in calls) or "none"
