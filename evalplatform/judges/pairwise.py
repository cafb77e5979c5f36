"""Pairwise judging (candidate vs baseline): both orders are asked; a verdict that flips with the order is a tie.

The flip rate is reported as position bias: a judge that prefers whichever response comes first
(or second) is measuring position, not quality.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evalplatform.judges.prompt import pairwise_messages, pairwise_system_message
from evalplatform.judges.rubric import Rubric
from evalplatform.judges.verdict import ReplyError, parse_preference
from evalplatform.models.calls import CallRequest, run_calls_sync
from evalplatform.models.target import Target


@dataclass
class PairwiseResult:
    winner: str | None          # candidate | baseline | tie | None (error)
    consistent: bool | None     # both orders agreed; None when a reply was an error
    first_order: str | None     # the winner asked with the candidate shown as A
    second_order: str | None    # ... with the baseline shown as A
    error: str | None = None


def _who(winner_letter: str, candidate_is_a: bool) -> str:
    return "candidate" if (winner_letter == "A") == candidate_is_a else "baseline"


def compare(judge: Target, rubric: Rubric, inputs: list[str], candidates: list[str], baselines: list[str], *,
            concurrency: int = 8, cache_dir: Path | None = None) -> tuple[list[PairwiseResult], dict]:
    """Judge each (input, candidate, baseline) in both orders; returns per-item results and a summary."""
    from evalplatform.models.cache import ResponseCache

    system = pairwise_system_message(rubric)
    requests = []
    for i, (q, c, b) in enumerate(zip(inputs, candidates, baselines, strict=True)):
        requests.append(CallRequest(f"{i}:cb", 0, pairwise_messages(system, q, c, b)))
        requests.append(CallRequest(f"{i}:bc", 0, pairwise_messages(system, q, b, c)))
    cache = ResponseCache(cache_dir) if cache_dir is not None else None
    replies = run_calls_sync(judge, requests, concurrency=concurrency, cache=cache)
    results = []
    for first, second in zip(replies[0::2], replies[1::2]):
        try:
            if first.error or second.error:
                raise ReplyError(f"judge call failed: {first.error or second.error}")
            w1 = _who(parse_preference(first.text).winner, candidate_is_a=True)
            w2 = _who(parse_preference(second.text).winner, candidate_is_a=False)
        except ReplyError as exc:
            results.append(PairwiseResult(None, None, None, None, str(exc)))
            continue
        results.append(PairwiseResult(w1 if w1 == w2 else "tie", w1 == w2, w1, w2))
    valid = [r for r in results if r.error is None]
    flips = sum(not r.consistent for r in valid)
    summary = {
        "n": len(results), "n_error": len(results) - len(valid),
        "candidate_wins": sum(r.winner == "candidate" for r in valid),
        "baseline_wins": sum(r.winner == "baseline" for r in valid),
        "ties": flips,
        "position_bias_rate": flips / len(valid) if valid else None,
        # Of the flips, how many favoured the response shown first: 1.0 is pure primacy bias.
        "first_position_share": (sum(r.first_order == "candidate" for r in valid if not r.consistent) / flips
                                 if flips else None),
    }
    return results, summary
