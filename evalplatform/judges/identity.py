"""Judge identity: what a calibration is bound to. Any change (model, rubric, prompt, training data) makes it new."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class JudgeIdentity(BaseModel):
    """`key` is recorded on every judged result and on every calibration; equal keys mean the same judge."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["llm", "trained"]
    criterion: str
    model: str              # pinned litellm model string, or "trained/tfidf-logreg"
    rubric_version: str     # rubric front-matter version ("-" for trained judges)
    prompt_sha256: str      # sha256 of the judge prompt (LLM) or of training data + hyperparameters (trained)

    @property
    def key(self) -> str:
        return f"{self.model}|{self.criterion}@v{self.rubric_version}|sha256:{self.prompt_sha256[:16]}"
