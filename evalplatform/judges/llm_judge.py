"""The LLM judge scorer (`type: llm_judge`): one rubric, one binary verdict per output, reasoning first.

Calls go through the same machinery as target calls (bounded concurrency, retries, response cache);
temperature defaults to 0 and a seed is sent. Every explanation starts with the judge identity, so a
stored result says which judge (model, rubric version, prompt sha256) produced it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Literal

import polars as pl
from pydantic import Field, PrivateAttr, model_validator

from evalplatform.conversation import judge_inputs
from evalplatform.errors import InputError
from evalplatform.judges import local_judges  # noqa: F401  (serves local/judge-rubric and local/judge-lenient)
from evalplatform.judges.calibration_set import CalibrationSet, load_calibration_set
from evalplatform.judges.identity import JudgeIdentity
from evalplatform.judges.metrics import GateFloors
from evalplatform.judges.prompt import Example, judge_messages, prompt_sha256, system_message
from evalplatform.judges.rubric import Rubric, load_rubric, parse_rubric
from evalplatform.judges.verdict import ReplyError, parse_verdict
from evalplatform.models.calls import CallRequest, run_calls_sync
from evalplatform.models.target import Target
from evalplatform.scorers.base import ScorerBase, ScoringContext, register


@dataclass
class Judgment:
    """One judged item: a verdict with its reasoning, or an error (never both); and what the call cost."""

    verdict: str | None
    reasoning: str | None
    error: str | None
    called: bool = False           # the model answered (or failed) this request; False on a cache hit
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None


def explain(identity: str, j: Judgment) -> str:
    body = j.reasoning if j.verdict is not None else f"error: {j.error}"
    return f"[judge {identity}] {body}"


class JudgeScorerBase(ScorerBase):
    """What every judge scorer shares: where its labels live, which case field is the input, its floors."""

    input_field: str = Field("question", description="Case field shown to the judge as the user's input.")
    calibration: str | None = Field(
        None, description="Calibration set (JSONL), relative to the suite; default ../calibration/<criterion>.jsonl")
    floors: GateFloors = Field(default_factory=GateFloors, description="What the calibration must show to gate.")
    advisory: bool = Field(False, description="Calibrated and reported, but never relied on to gate: the "
                                              "judge_allowed_to_gate check does not require it to clear the floors.")

    _root: Path | None = PrivateAttr(default=None)

    def columns_needed(self) -> list[str]:
        return [self.input_field]

    def field_needed(self, field: str, single_turn: pl.Expr) -> pl.Expr:
        # On a conversation the judge is shown the transcript instead of the input field.
        return single_turn if field == self.input_field else pl.lit(True)

    def check_files(self, root: Path, suite_path: Path, field: str) -> None:
        from evalplatform.paths import inside_project

        self._root = root
        if self.calibration is not None:
            inside_project(root, self.calibration, suite_path, f"{field}.calibration")
        path = self.calibration_path()
        if self.calibration is not None and not path.is_file():
            raise InputError(suite_path, f"{field}.calibration", f"calibration set {self.calibration!r} not found")

    def base_dir(self) -> Path:
        return self._root or Path.cwd()

    def calibration_path(self) -> Path:
        rel = self.calibration or f"../calibration/{self.criterion}.jsonl"
        return (self.base_dir() / rel).resolve()

    def calibration_set(self) -> CalibrationSet:
        return load_calibration_set(self.calibration_path(), self.criterion)

    def state_dir(self) -> Path:
        from evalplatform.project import find_project

        return find_project(self.base_dir()).state_dir

    @property
    def judge_name(self) -> str:
        raise NotImplementedError

    def identity(self) -> JudgeIdentity:
        raise NotImplementedError


@register
class LLMJudge(JudgeScorerBase):
    """An LLM grades each output against a rubric file (or inline text): PASS scores 1, FAIL 0, error null."""

    type: Literal["llm_judge"] = "llm_judge"

    judge: Target = Field(description="The pinned judge model; temperature 0 by default; set `seed` where the provider supports it.")
    rubric: str | None = Field(None, description="Rubric file (Markdown with front matter), relative to the suite.")
    rubric_text: str | None = Field(None, description="Inline rubric, instead of a file.")
    few_shot: int = Field(0, ge=0, le=16, description="Labelled critiques from the calibration set shown as examples.")
    concurrency: int = Field(8, ge=1, le=256)
    cache: bool = Field(True, description="Reuse judge replies from the response cache (key includes the prompt); "
                                          "a run with the cache off (the nightly tier) always asks afresh.")
    frontier: bool = Field(False, description="The suite's pinned frontier judge: cost tier frontier_judge, which "
                                              "only the tiers that list it (by default the nightly tier) run.")

    @property
    def tier_cost(self) -> str:  # type: ignore[override]
        return "frontier_judge" if self.frontier else "llm_judge"

    @model_validator(mode="after")
    def _one_rubric(self):
        if (self.rubric is None) == (self.rubric_text is None):
            raise ValueError("set exactly one of `rubric` (a file) or `rubric_text`")
        return self

    def check_files(self, root: Path, suite_path: Path, field: str) -> None:
        super().check_files(root, suite_path, field)
        if self.rubric is not None:
            from evalplatform.paths import inside_project

            inside_project(root, self.rubric, suite_path, f"{field}.rubric")
        if self.rubric is not None and not (root / self.rubric).is_file():
            raise InputError(suite_path, f"{field}.rubric", f"rubric file {self.rubric!r} not found next to the suite")
        self.__dict__.pop("loaded_rubric", None)
        self.__dict__.pop("system", None)
        _ = self.system  # validate the rubric (and few-shot source) at load time

    @cached_property
    def loaded_rubric(self) -> Rubric:
        if self.rubric is not None:
            return load_rubric(self.base_dir() / self.rubric, self.criterion)
        return parse_rubric(self.rubric_text or "", f"inline rubric of scorer {self.id}", self.criterion)

    def examples(self) -> list[Example]:
        """Balanced, deterministic few-shot examples; they are left out when this judge is calibrated."""
        if not self.few_shot:
            return []
        items = sorted(self.calibration_set().items, key=lambda i: hashlib.sha256(i.id.encode()).hexdigest())
        n_fail = self.few_shot // 2
        picked = [i for i in items if i.label == "FAIL"][:n_fail] + [i for i in items if i.label == "PASS"][
            : self.few_shot - n_fail]
        return [Example(i.input, i.output, i.label, i.critique) for i in sorted(picked, key=lambda i: i.id)]

    def example_ids(self) -> set[str]:
        if not self.few_shot:
            return set()
        texts = {(e.input, e.output) for e in self.examples()}
        return {i.id for i in self.calibration_set().items if (i.input, i.output) in texts}

    @cached_property
    def system(self) -> str:
        return system_message(self.loaded_rubric, self.examples())

    @property
    def judge_name(self) -> str:
        return f"{self.criterion}:{self.judge.model}"

    def identity(self) -> JudgeIdentity:
        return JudgeIdentity(kind="llm", criterion=self.criterion, model=self.judge.model,
                             rubric_version=self.loaded_rubric.version, prompt_sha256=prompt_sha256(self.system))

    def judge_texts(self, inputs: list[str], outputs: list[str], *, repeat: int | list[int] = 0,
                    cache_dir: Path | None = None, budget=None) -> list[Judgment]:
        """Judge (input, output) pairs. Repeat r (one for all, or one per pair) asks with seed + r under a cache key
        of its own: the self-consistency check asks again, and each repeat of a run is judged afresh."""
        from evalplatform.models.cache import ResponseCache

        repeats = repeat if isinstance(repeat, list) else [repeat] * len(inputs)
        requests = [CallRequest(case_id=str(i), repeat=int(r), messages=judge_messages(self.system, a, b))
                    for i, (a, b, r) in enumerate(zip(inputs, outputs, repeats, strict=True))]
        cache = ResponseCache(cache_dir) if cache_dir is not None else None
        results = run_calls_sync(self.judge, requests, concurrency=self.concurrency, cache=cache, budget=budget)
        out = []
        for r in results:
            usage = dict(called=not r.cache_hit and r.attempts > 0, tokens_in=r.tokens_in, tokens_out=r.tokens_out,
                         cost_usd=r.cost_usd, latency_ms=r.latency_ms)
            if r.error is not None:
                out.append(Judgment(None, None, f"judge call failed: {r.error}", **usage))
                continue
            try:
                v = parse_verdict(r.text)
            except ReplyError as exc:
                out.append(Judgment(None, None, str(exc), **usage))
                continue
            out.append(Judgment(v.verdict, v.reasoning, None, **usage))
        return out

    def cache_dir(self) -> Path | None:
        return self.state_dir() / "cache" if self.cache else None

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        return self.score_in_run(frame, None)

    def score_in_run(self, frame: pl.DataFrame, context: ScoringContext | None = None) -> pl.DataFrame:
        """One verdict per row, repeat r of a case judged with its own seed; with the run's cache (none: fresh
        samples) and budget; each row carries its call's usage (results.SCORER_USAGE)."""
        inputs = judge_inputs(frame, self.input_field)
        repeats = frame["repeat"].fill_null(0).to_list() if "repeat" in frame.columns else 0
        cache_dir = self.cache_dir() if context is None else (context.cache_dir if self.cache else None)
        judgments = self.judge_texts(inputs, frame["output"].to_list(), repeat=repeats, cache_dir=cache_dir,
                                     budget=context.budget if context is not None else None)
        key = self.identity().key
        score = [None if j.verdict is None else float(j.verdict == "PASS") for j in judgments]
        return frame.with_columns(
            pl.Series("score", score, dtype=pl.Float64),
            pl.Series("explanation", [explain(key, j) for j in judgments], dtype=pl.Utf8),
            pl.Series("scorer_calls", [int(j.called) for j in judgments], dtype=pl.Int32),
            # Like the target's columns: a cache hit keeps the tokens and cost its answer first took.
            pl.Series("scorer_tokens_in", [j.tokens_in for j in judgments], dtype=pl.Int64),
            pl.Series("scorer_tokens_out", [j.tokens_out for j in judgments], dtype=pl.Int64),
            pl.Series("scorer_cost_usd", [j.cost_usd for j in judgments], dtype=pl.Float64),
            pl.Series("scorer_latency_ms", [j.latency_ms for j in judgments], dtype=pl.Float64),
        )
