"""The one place a run's requests meet its target: a litellm model or a Python callable, single- or multi-turn.

Model targets play conversations in rounds (turn k of every conversation in one batch of the model-call
layer, so concurrency, retries and the cache apply per turn); Python targets play each trial whole (a
class target keeps its instance across the turns of one trial, never across trials).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import polars as pl

from evalplatform.datasets import decode_cell
from evalplatform.conversation import CONVERSATION_FIELD, ConversationMessage, Player, parse_conversation
from evalplatform.errors import InputError
from evalplatform.models.cache import ResponseCache
from evalplatform.models.calls import CallRequest, CallResult, run_calls, run_sync
from evalplatform.models.retry import Clock
from evalplatform.provenance import sha256_text
from evalplatform.targets.spec import PythonTarget, is_python
from evalplatform.targets.trace import TargetCallResult, TraceError, add_turn, new_trace, sum_known, trace_text

if TYPE_CHECKING:
    from evalplatform.runner import RunPlan
    from evalplatform.suite import LoadedSuite

# Case columns that are bookkeeping, not the case's own fields.
_NOT_FIELDS = ("case_id", "case_hash", "tags")


def case_fields(cases: pl.DataFrame) -> dict[str, tuple[dict, list[str]]]:
    """case_id -> (its fields as the dataset gave them, its tags)."""
    out = {}
    for row in cases.iter_rows(named=True):
        fields = {k: decode_cell(v) for k, v in row.items() if k not in _NOT_FIELDS and v is not None}
        out[row["case_id"]] = (fields, list(row.get("tags") or []))
    return out


def conversations(cases: pl.DataFrame, suite_path: Path | None = None) -> dict[str, list[ConversationMessage]]:
    """case_id -> its conversation, for the cases that hold one."""
    if CONVERSATION_FIELD not in cases.columns:
        return {}
    out = {}
    for case_id, value in cases.select("case_id", CONVERSATION_FIELD).iter_rows():
        if value is None:
            continue
        try:
            out[case_id] = parse_conversation(value)
        except ValueError as exc:  # datasets validate it on load; a frame built by hand may not be
            raise InputError(suite_path, f"case {case_id!r}: conversation", str(exc).splitlines()[0]) from None
    return out


def prepare(target: Any, suite: "LoadedSuite") -> None:
    """Resolve a Python target before anything runs or is written (bad import path: InputError, exit 2)."""
    if is_python(target):
        from evalplatform.targets.resolve import resolve_target

        resolve_target(target, suite.root, suite.path)


def target_record(target: Any, suite: "LoadedSuite") -> dict[str, Any]:
    """The run record's target_model and target_params (provenance)."""
    from evalplatform.models.redact import redact

    if is_python(target):
        from evalplatform.targets.resolve import resolve_target

        resolved = resolve_target(target, suite.root, suite.path)
        return {"target_model": target.model or target.label,
                "target_params": {"python": target.python, "code_version": resolved.code_version,
                                  **target.params_for_record(), "timeout_s": target.timeout_s,
                                  "retry_on": target.retry_on,
                                  "system_prompt_sha256": sha256_text(target.system_prompt or "")}}
    return {"target_model": target.model,
            "target_params": {**target.params(), "api_base": redact(target.api_base or "") or None,
                              "system_prompt_sha256": sha256_text(target.system_prompt or "")}}


def run_plan_calls(plan: "RunPlan", *, cache_dir: Path | None, concurrency: int | None = None,
                   on_result: Callable[[CallResult], None] | None = None,
                   clock: Clock | None = None, budget: Any = None) -> list[CallResult]:
    """One result per request of the plan, in order, from whichever kind of target the suite names.

    `budget` (evalplatform.budget.Budget) admits each model call or trial; refused, it is the error
    `budget exhausted` and nothing is called."""
    cache = ResponseCache(cache_dir) if cache_dir is not None else None
    n = concurrency or plan.suite.spec.concurrency
    wanted = {r.case_id for r in plan.requests}
    convs = {k: v for k, v in conversations(plan.cases, plan.suite.path).items() if k in wanted}
    if is_python(plan.target):
        from evalplatform.targets.python_target import Trial, run_trials
        from evalplatform.targets.resolve import resolve_target

        resolved = resolve_target(plan.target, plan.suite.root, plan.suite.path)
        fields = case_fields(plan.cases.filter(pl.col("case_id").is_in(list(wanted))))
        trials = [Trial(r, *fields[r.case_id], conversation=convs.get(r.case_id)) for r in plan.requests]
        return run_sync(lambda: run_trials(plan.target, resolved, trials, concurrency=n, cache=cache,
                                            on_result=on_result, clock=clock, budget=budget))
    return run_sync(lambda: play_model(plan.target, plan.requests, convs, concurrency=n, cache=cache,
                                        on_result=on_result, clock=clock, budget=budget))


async def play_model(target: Any, requests: list[CallRequest], convs: dict[str, list[ConversationMessage]], *,
                     concurrency: int, cache: ResponseCache | None, on_result: Callable | None,
                     clock: Clock | None, budget: Any = None) -> list[CallResult]:
    """Single-turn requests as one batch; conversations turn by turn, every conversation's turn k in round k."""
    if not convs:
        return await run_calls(target, requests, concurrency=concurrency, cache=cache, on_result=on_result,
                               clock=clock, budget=budget)
    results: list[CallResult | None] = [None] * len(requests)
    players = {i: Player(convs[r.case_id], target.system_prompt) for i, r in enumerate(requests) if r.case_id in convs}
    traces = {i: new_trace(conversation=True) for i in players}
    turns: dict[int, list[CallResult]] = {i: [] for i in players}
    pending = {i: r for i, r in enumerate(requests) if i not in players}  # single-turn: answered in round 0
    k = 0
    while pending or players:
        batch_ix = list(pending)
        batch = [pending[i] for i in batch_ix]
        sent = {}
        for i, player in list(players.items()):
            messages = player.next_messages()
            if messages is None:  # every turn played
                results[i] = _conversation_result(requests[i], turns[i], traces[i], None)
                _notify(on_result, results[i])
                del players[i]
                continue
            sent[i] = messages
            batch_ix.append(i)
            batch.append(CallRequest(case_id=requests[i].case_id, repeat=requests[i].repeat, messages=messages))
        if not batch:
            break
        answers = await run_calls(target, batch, concurrency=concurrency, cache=cache, clock=clock, budget=budget)
        for i, answer in zip(batch_ix, answers):
            if i in pending:
                results[i] = answer
                _notify(on_result, answer)
                continue
            turns[i].append(answer)
            if answer.error is not None:
                results[i] = _conversation_result(requests[i], turns[i], traces[i], answer)
                _notify(on_result, results[i])
                del players[i]
                continue
            # Timings and cache hits stay out of the trace: the same conversation gives the same trace.
            add_turn(traces[i], k, sent[i], {"output": answer.text, "tokens_in": answer.tokens_in,
                                             "tokens_out": answer.tokens_out, "cost_usd": answer.cost_usd})
            players[i].reply(answer.text or "")
        pending = {}
        k += 1
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def _notify(on_result: Callable | None, result: CallResult) -> None:
    if on_result is not None:
        on_result(result)


def _conversation_result(req: CallRequest, calls: list[CallResult], trace: dict,
                         failed: CallResult | None) -> TargetCallResult:
    """A conversation's turns as one result: the last reply, summed latency, tokens and cost."""
    log = [{**e, "turn": t} for t, c in enumerate(calls) for e in c.attempt_log]
    common = dict(served_ms=sum(c.served_ms for c in calls), tokens_in=sum_known([c.tokens_in for c in calls]),
                  tokens_out=sum_known([c.tokens_out for c in calls]), cost_usd=sum_known([c.cost_usd for c in calls]),
                  cache_hit=all(c.cache_hit for c in calls), attempts=sum(c.attempts for c in calls),
                  attempt_log=log, trace=trace)
    try:
        trace_text(trace)
    except TraceError as exc:
        return TargetCallResult(req.case_id, req.repeat, None, str(exc), None, error_kind="malformed",
                                **{**common, "trace": None})
    if failed is not None:
        return TargetCallResult(req.case_id, req.repeat, None, f"turn {len(calls)}: {failed.error}", None,
                                error_kind=failed.error_kind, infra_error=failed.infra_error, **common)
    return TargetCallResult(req.case_id, req.repeat, calls[-1].text, None,
                            sum_known([c.latency_ms for c in calls]), **common)
