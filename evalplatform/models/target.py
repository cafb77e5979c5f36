"""The pinned model under test: a litellm model string plus the sampling and retry settings of its calls."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Keys that extra_params may not set: either they have their own field (so they are validated and
# land in the cache key once), or they belong to the call machinery rather than to sampling. Any
# key ending in "retries" is refused too: retries are ours (one bounded loop, every attempt recorded),
# never the SDK's or litellm's.
RESERVED_PARAMS = frozenset({
    "model", "messages", "api_base", "base_url", "api_key", "timeout", "request_timeout",
    "caching", "cache", "stream", "mock_response",
    "temperature", "top_p", "seed", "max_tokens",
})


def _reserved(key: str) -> bool:
    return key in RESERVED_PARAMS or key.endswith("retries")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Target(BaseModel):
    """What to call and how. `api_key_env` names an environment variable; the key itself never enters config."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description='litellm model string, e.g. "local/support-v1", "openai/gpt-4o-mini"')
    api_base: str | None = Field(None, description="base URL of an OpenAI-compatible endpoint (vLLM, Ollama, a proxy)")
    api_key_env: str | None = Field(None, description="NAME of the environment variable that holds the API key")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = None
    max_tokens: int = Field(512, ge=1)
    system_prompt: str | None = None
    timeout_s: float = Field(60.0, gt=0.0, description="per-attempt timeout")
    max_attempts: int = Field(4, ge=1, le=10)
    backoff_base_s: float = Field(0.5, ge=0.0)
    backoff_max_s: float = Field(20.0, ge=0.0)
    extra_params: dict[str, Any] = Field(default_factory=dict, description="provider-specific sampling params (top_k, ...)")
    # Excluded from dumps, so suite hashes, provenance and cache keys are the same whichever path is taken.
    transport: Literal["auto", "litellm", "openai"] = Field(
        "auto", exclude=True,
        description="How calls are sent. auto (default): `openai/...` models go straight to the OpenAI-compatible "
                    "endpoint over one pooled HTTP client (OpenAI's o-series and gpt-5 models stay on litellm, "
                    "which rewrites their parameters), everything else through litellm. openai: this endpoint "
                    "speaks the OpenAI chat-completions protocol (vLLM, Ollama's /v1, LM Studio, a proxy); the part "
                    "of `model` after the first '/' is sent as the model name. litellm: always through litellm.")
    max_infra_error_share: float = Field(
        0.5, ge=0.0, le=1.0, allow_inf_nan=False,
        description="Largest share of a run's calls that may fail for infrastructure reasons (connection refused, "
                    "DNS or TLS failure, timeout, 401/403/404, 429 or 5xx after retries) before the run is an "
                    "infrastructure failure (exit 3, run marked failed, no quality verdict) instead of being scored. "
                    "A target that every call failed to connect to fails the run whatever this is. Malformed or "
                    "unencodable replies are the model's errors and never count. Applies to the target under "
                    "test (not to judges).")

    @field_validator("model")
    @classmethod
    def _model_has_no_spaces(cls, v: str) -> str:
        if v != v.strip() or any(c.isspace() for c in v):
            raise ValueError("model string must not contain whitespace")
        return v

    @field_validator("api_key_env")
    @classmethod
    def _env_name_not_key(cls, v: str | None) -> str | None:
        # A pasted key (sk-..., with dashes) fails this pattern, so it is rejected before it can be stored.
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("must be the NAME of an environment variable (like OPENAI_API_KEY), never the key itself")
        return v

    @field_validator("extra_params")
    @classmethod
    def _extra_params_safe(cls, v: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(k for k in v if _reserved(k))
        if clash:
            raise ValueError(f"key(s) {', '.join(clash)} cannot be set here (use the target's own fields)")
        try:
            json.dumps(v, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be JSON-serialisable ({exc})") from None
        return v

    @model_validator(mode="after")
    def _backoff_order(self) -> "Target":
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_max_s must be >= backoff_base_s")
        if self.transport == "openai" and self.model.startswith("local/"):
            raise ValueError("transport openai needs an HTTP endpoint; local/ models are in-process (use auto)")
        return self

    def params(self) -> dict[str, Any]:
        """Sampling params sent to the model; they are also part of the response cache key."""
        p: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.top_p is not None:
            p["top_p"] = self.top_p
        if self.seed is not None:
            p["seed"] = self.seed
        p.update(self.extra_params)
        return p

    def messages(self, messages: list[dict]) -> list[dict]:
        """The messages as sent: the target's system prompt first, unless the request already starts with one."""
        out = [dict(m) for m in messages]
        if self.system_prompt and not (out and out[0].get("role") == "system"):
            out.insert(0, {"role": "system", "content": self.system_prompt})
        return out

    def api_key(self) -> str | None:
        """The key read from the environment at call time (None when no env var is configured or it is unset)."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None
