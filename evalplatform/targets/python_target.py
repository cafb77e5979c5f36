"""Run trials against a Python target: bounded concurrency, a per-attempt timeout, retries on the exceptions
the suite marks retryable, a response cache keyed by the import path and code version, one trace per trial.

A trial is one (case, repeat): a fresh instance of a class target with its `setup` and `teardown`, and
every turn of the case's conversation played in order. Sync callables run in a daemon thread each, so a
call that runs over its timeout is abandoned (it cannot hold up the run or the process's exit).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import math
import threading
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import ValidationError

from evalplatform.conversation import ConversationMessage, Player
from evalplatform.models.cache import CachedResponse, ResponseCache
from evalplatform.models.calls import CallRequest
from evalplatform.models.redact import redact
from evalplatform.models.retry import INFRA_KINDS, Clock, backoff_s, classify
from evalplatform.models.text import unicode_problem
from evalplatform.targets.resolve import Resolved
from evalplatform.targets.spec import PythonTarget
from evalplatform.targets.trace import TargetCallResult, TraceError, add_turn, new_trace, sum_known, trace_text
from evalplatform.targets.types import CaseInput, TargetResult

log = logging.getLogger(__name__)
_MAX_ERROR = 1000


@dataclass
class Trial:
    """One (case, repeat) to play: the first turn's messages, the case's fields, its conversation if any."""

    request: CallRequest
    fields: dict[str, Any]
    tags: list[str]
    conversation: list[ConversationMessage] | None = None


class _Failed(Exception):
    """A call failed for good (after its retries): kind, whether it is the infrastructure's, the message."""

    def __init__(self, kind: str, message: str, infra: bool = False):
        super().__init__(message)
        self.kind, self.message, self.infra = kind, message, infra


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


async def _in_thread(fn: Callable, args: tuple, timeout: float) -> Any:
    """fn(*args) in a daemon thread of its own, awaited for at most `timeout` s (then abandoned)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not done.done():  # abandoned after a timeout: nobody is waiting any more
            (done.set_result if ok else done.set_exception)(value)

    def work() -> None:
        try:
            value, ok = fn(*args), True
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting coroutine, which classifies it
            value, ok = exc, False
        try:
            loop.call_soon_threadsafe(settle, ok, value)
        except RuntimeError:  # the run's loop is closed: the run ended without this call
            pass

    threading.Thread(target=work, name=f"evalplatform-target-{getattr(fn, '__name__', 'call')}", daemon=True).start()
    return await asyncio.wait_for(done, timeout)


async def _call(fn: Callable, args: tuple, timeout: float, clock: Clock) -> Any:
    """One attempt within `timeout`: an async callable on the loop, a sync one in a thread."""
    t0 = clock.monotonic()
    if _is_async(fn):
        return await asyncio.wait_for(fn(*args), timeout)
    value = await _in_thread(fn, args, timeout)
    if inspect.isawaitable(value):  # a sync wrapper around a coroutine
        return await asyncio.wait_for(value, max(0.0, timeout - (clock.monotonic() - t0)))
    return value


def _retryable(exc: BaseException, names: list[str]) -> bool:
    if not names:
        return False
    for cls in type(exc).__mro__:
        if cls.__name__ in names or f"{cls.__module__}.{cls.__qualname__}" in names:
            return True
    return False


def _text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:_MAX_ERROR]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _accepts_case(fn: Callable) -> bool:
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        return True
    return bool(params)


class _TrialRunner:
    def __init__(self, target: PythonTarget, resolved: Resolved, clock: Clock):
        self.target, self.resolved, self.clock = target, resolved, clock

    async def attempts(self, what: str, fn: Callable, args: tuple, log_: list[dict]) -> Any:
        """Call with retries on the suite's retryable exceptions; raises _Failed when it gives up."""
        t = self.target
        for attempt in range(1, t.max_attempts + 1):
            t0 = self.clock.monotonic()
            entry = {"attempt": attempt, "call": what, "outcome": "ok", "status": None, "exception": None,
                     "elapsed_ms": None, "wait_s": None, "cause": None}
            log_.append(entry)
            try:
                value = await _call(fn, args, t.timeout_s, self.clock)
            except TimeoutError:
                entry.update(outcome="timeout", exception="TimeoutError",
                             elapsed_ms=round((self.clock.monotonic() - t0) * 1000, 3))
                # Never retried: the abandoned call may still be changing the trial's state.
                raise _Failed("timeout", f"{what}: no answer within timeout_s={t.timeout_s:g} (call abandoned)")
            except Exception as exc:
                failure = classify(exc)
                kind = failure.kind if failure.kind in INFRA_KINDS else "exception"
                entry.update(outcome=kind, exception=type(exc).__name__, cause=failure.cause,
                             elapsed_ms=round((self.clock.monotonic() - t0) * 1000, 3))
                if not _retryable(exc, t.retry_on) or attempt == t.max_attempts:
                    raise _Failed(kind, f"{what} raised {_text(exc)}", infra=kind in INFRA_KINDS) from None
                wait = backoff_s(attempt, t.backoff_base_s, t.backoff_max_s)
                entry["wait_s"] = round(wait, 4)
                await self.clock.sleep(wait)
                continue
            entry["elapsed_ms"] = round((self.clock.monotonic() - t0) * 1000, 3)
            return value
        raise AssertionError("unreachable: max_attempts >= 1")

    def case_input(self, trial: Trial, fields: dict, messages: list[dict], turn: int) -> CaseInput:
        req, t = trial.request, self.target
        seed = None if t.seed is None else t.seed + req.repeat
        return CaseInput(case_id=req.case_id, messages=messages, fields=fields, tags=list(trial.tags),
                         repeat=req.repeat, seed=seed, turn=turn, model=t.model, params=copy.deepcopy(t.params))

    async def play(self, trial: Trial) -> tuple[dict, list[float | None], list[dict], _Failed | None]:
        """Every turn of the trial: (trace, measured ms of turns that reported no latency, attempt log, the
        failure that ended it or None)."""
        fields = copy.deepcopy(trial.fields)  # a trial that edits its case changes no other trial
        player = Player(trial.conversation, self.target.system_prompt) if trial.conversation else None
        trace = new_trace(conversation=player is not None)
        measured_ms: list[float | None] = []
        log_: list[dict] = []
        messages = player.next_messages() if player else [dict(m) for m in trial.request.messages]
        first = self.case_input(trial, fields, messages, 0)
        instance, failure = None, None
        try:
            if self.resolved.is_class:
                instance = await self.attempts("creating the target", self.resolved.obj, (), log_)
                setup = getattr(instance, "setup", None)
                if callable(setup):
                    await self.attempts("setup", setup, (first,) if _accepts_case(setup) else (), log_)
            fn = instance if instance is not None else self.resolved.obj
            turn = 0
            while messages is not None:
                case = first if turn == 0 else self.case_input(trial, fields, messages, turn)
                t0 = self.clock.monotonic()
                value = await self.attempts(f"turn {turn + 1}" if player else "the call", fn, (case,), log_)
                measured = (self.clock.monotonic() - t0) * 1000
                record = self.turn_record(value, measured)
                measured = record.pop("__measured_ms")
                measured_ms.append(measured if record.get("latency_ms") is None else None)
                add_turn(trace, turn, messages, record)
                if player is None:
                    break
                player.reply(trace["turns"][-1]["output"])
                messages, turn = player.next_messages(), turn + 1
        except _Failed as exc:
            failure = exc
        finally:
            teardown = getattr(instance, "teardown", None) if instance is not None else None
            if callable(teardown):
                try:
                    await self.attempts("teardown", teardown, (), log_)
                except _Failed as exc:
                    failure = failure or exc
        return trace, measured_ms, log_, failure

    def turn_record(self, value: Any, measured_ms: float) -> dict:
        """A turn's result as stored in the trace; _Failed when the target returned something unusable."""
        try:
            if isinstance(value, str):
                result = TargetResult(output=value)
            elif isinstance(value, TargetResult):
                result = value
            elif isinstance(value, dict):
                result = TargetResult.model_validate(value)
            else:
                raise _Failed("malformed", f"returned {type(value).__name__}, expected text or a TargetResult")
            skip = {"state"} if "state" not in result.model_fields_set else set()
            bad = _non_finite(result.model_dump(mode="python", exclude=skip))
            if bad:  # JSON has no NaN: dumped as null it would be a silent change of the target's state
                raise _Failed("malformed", f"returned a result with a NaN or infinite number at {bad}")
            record = result.model_dump(mode="json", exclude=skip)
        except ValidationError as err:
            e = err.errors()[0]
            where = ".".join(str(p) for p in e["loc"]) or "(result)"
            raise _Failed("malformed", f"returned an invalid result: {where}: {e['msg']}") from None
        except (TypeError, ValueError) as exc:  # pydantic cannot serialise a value in it
            raise _Failed("malformed", f"returned a result that is not JSON: {exc}") from None
        problem = unicode_problem(result.output)
        if problem:
            raise _Failed("malformed", f"reply text is {problem}")
        # Only what the target reported goes into the trace: equal behaviour must give an equal trace (and
        # hash) on every run. The time we measured stands in for an unreported latency in the totals only.
        record["__measured_ms"] = measured_ms
        return record


def _non_finite(value: Any, path: str = "") -> str | None:
    """Where a NaN or infinite float sits in a result (dotted path), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "(result)"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def _summary(trace: dict, measured_ms: list[float | None]) -> dict[str, Any]:
    turns = trace["turns"]
    latency = [t.get("latency_ms") if t.get("latency_ms") is not None else m for t, m in zip(turns, measured_ms)]
    return {"text": turns[-1]["output"] if turns else None,
            "latency_ms": sum_known(latency),
            "tokens_in": sum_known([t.get("tokens_in") for t in turns]),
            "tokens_out": sum_known([t.get("tokens_out") for t in turns]),
            "cost_usd": sum_known([t.get("cost_usd") for t in turns])}


def cache_key(target: PythonTarget, resolved: Resolved, trial: Trial, cache: ResponseCache) -> str:
    """Everything the function sees, with its import path and code version in place of a model name."""
    conversation = [m.model_dump(exclude_none=True) for m in trial.conversation] if trial.conversation else None
    inputs = {**target.params_for_record(), "fields": trial.fields, "tags": trial.tags,
              "conversation": conversation, "system_prompt": target.system_prompt}
    return cache.key(f"{target.label}@{resolved.code_version}", None, trial.request.messages, inputs,
                     target.seed, trial.request.repeat)


async def run_trials(target: PythonTarget, resolved: Resolved, trials: list[Trial], *, concurrency: int = 8,
                     cache: ResponseCache | None = None,
                     on_result: Callable[[TargetCallResult], None] | None = None,
                     clock: Clock | None = None, budget: Any = None) -> list[TargetCallResult]:
    """One result per trial, in order; a failed trial is a result with `error` set, never an exception.

    `budget` (evalplatform.budget.Budget) admits each trial as one call and is charged the trial's reported
    cost; once it refuses, the trial is not played and its result is the error `budget exhausted`."""
    clock = clock or Clock()
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    runner = _TrialRunner(target, resolved, clock)
    results: list[TargetCallResult | None] = [None] * len(trials)
    keys = [cache_key(target, resolved, t, cache) if cache is not None else None for t in trials]

    def finish(i: int, result: TargetCallResult) -> None:
        results[i] = result
        if on_result is not None:
            on_result(result)

    misses = []
    for i, trial in enumerate(trials):
        req = trial.request
        t0 = clock.monotonic()
        hit = cache.get(keys[i]) if cache is not None else None
        if hit is None or hit.trace is None:
            misses.append(i)
            continue
        finish(i, TargetCallResult(req.case_id, req.repeat, hit.text, None, hit.latency_ms,
                                   (clock.monotonic() - t0) * 1000, hit.tokens_in, hit.tokens_out, hit.cost_usd,
                                   cache_hit=True, attempts=0, trace=hit.trace))

    sem = asyncio.Semaphore(concurrency)
    cache_failures: list[str] = []

    async def one(i: int) -> None:
        trial, req = trials[i], trials[i].request
        async with sem:
            if budget is not None and not budget.admit():
                finish(i, TargetCallResult(req.case_id, req.repeat, None, "budget exhausted", None, 0.0, None, None,
                                           None, cache_hit=False, attempts=0, error_kind="budget"))
                return
            t0 = clock.monotonic()
            trace, measured_ms, attempt_log, failure = await runner.play(trial)
            served_ms = (clock.monotonic() - t0) * 1000
        attempts = sum(1 for e in attempt_log if e["call"] not in ("setup", "teardown", "creating the target"))
        summary = _summary(trace, measured_ms)
        if budget is not None:
            budget.spend(summary["cost_usd"] if failure is None else (summary["cost_usd"] or 0.0))
        if failure is None:
            try:
                trace_text(trace)
            except TraceError as exc:
                failure = _Failed("malformed", str(exc))
        if failure is not None:
            finish(i, TargetCallResult(req.case_id, req.repeat, None, redact(failure.message), None, served_ms,
                                       summary["tokens_in"], summary["tokens_out"], summary["cost_usd"],
                                       cache_hit=False, attempts=attempts, attempt_log=attempt_log,
                                       error_kind=failure.kind, infra_error=failure.infra,
                                       trace=_storable(trace)))
            return
        if cache is not None:
            try:
                cache.put(keys[i], CachedResponse(text=summary["text"], tokens_in=summary["tokens_in"],
                                                  tokens_out=summary["tokens_out"], cost_usd=summary["cost_usd"],
                                                  latency_ms=summary["latency_ms"], model=target.label, trace=trace))
            except (OSError, ValueError) as exc:
                cache_failures.append(redact(f"{type(exc).__name__}: {exc}"))
        finish(i, TargetCallResult(req.case_id, req.repeat, summary["text"], None, summary["latency_ms"], served_ms,
                                   summary["tokens_in"], summary["tokens_out"], summary["cost_usd"], cache_hit=False,
                                   attempts=attempts, attempt_log=attempt_log, trace=trace))

    try:
        async with asyncio.TaskGroup() as tg:
            for i in misses:
                tg.create_task(one(i))
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from None
    finally:
        if cache_failures:
            log.warning("response cache: %d writes failed (first: %s); those trials were kept, not cached",
                        len(cache_failures), cache_failures[0])
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def _storable(trace: dict) -> dict | None:
    """The partial trace of a failed trial when it can be stored (it helps to see how far it got)."""
    try:
        trace_text(trace)
    except TraceError:
        return None
    return trace
