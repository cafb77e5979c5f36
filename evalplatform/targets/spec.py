"""A suite's `target:` as config: a litellm model (models.target.Target) or a Python callable (PythonTarget)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from evalplatform.models.target import Target

_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_EXC_NAME = re.compile(r"^[A-Za-z_][\w.]*$")


class PythonTarget(BaseModel):
    """Your own pipeline or agent as the target: `package.module:function` (sync or async), or a class.

    A class is instantiated once per trial (case and repeat) and its optional `setup(case)` and
    `teardown()` run around the trial, so no state is shared between trials. The module is imported
    from the project root or the suite's folder.
    """

    model_config = ConfigDict(extra="forbid")

    python: str = Field(description='import path "package.module:function" (or a class with __call__), '
                                    "importable from the project root or the suite's folder")
    version: str | None = Field(None, min_length=1, max_length=200,
                                description="code version for the response cache and provenance; default: the "
                                            "sha256 of the module file (set it when the code lives in several files)")
    model: str | None = Field(None, min_length=1, description="the model (or release) the pipeline runs with, "
                                                              "passed as case.model; --model overrides it")
    system_prompt: str | None = Field(None, description="first message of case.messages")
    seed: int | None = Field(None, description="passed as case.seed (plus the repeat index)")
    params: dict[str, Any] = Field(default_factory=dict, description="passed as case.params (JSON values)")
    timeout_s: float = Field(60.0, gt=0.0, allow_inf_nan=False,
                             description="per-attempt timeout; a sync function runs in a thread, which is abandoned "
                                         "when it runs over (the trial records an error)")
    max_attempts: int = Field(3, ge=1, le=10, description="attempts per call when it raises a `retry_on` exception")
    retry_on: list[str] = Field(default_factory=list, description="exception class names (e.g. ConnectionError, "
                                                                  "httpx.ReadTimeout) worth another attempt")
    backoff_base_s: float = Field(0.5, ge=0.0)
    backoff_max_s: float = Field(20.0, ge=0.0)
    max_infra_error_share: float = Field(
        0.5, ge=0.0, le=1.0, allow_inf_nan=False,
        description="Largest share of trials that may fail for infrastructure reasons (a connection, DNS or TLS "
                    "failure, a 429 or 5xx raised inside the pipeline) before the run is an infrastructure failure "
                    "(exit 3). Exceptions of the pipeline itself and timeouts are its errors and never count.")

    @field_validator("python")
    @classmethod
    def _import_path(cls, v: str) -> str:
        if not _IMPORT_PATH.match(v):
            raise ValueError('must be "package.module:name" (dotted module, a colon, one attribute name)')
        return v

    @field_validator("retry_on")
    @classmethod
    def _exception_names(cls, v: list[str]) -> list[str]:
        bad = [n for n in v if not _EXC_NAME.match(n)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an exception class name")
        return v

    @field_validator("params")
    @classmethod
    def _params_json(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(v, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be JSON values ({exc})") from None
        return v

    @model_validator(mode="after")
    def _backoff_order(self) -> "PythonTarget":
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_max_s must be >= backoff_base_s")
        return self

    @property
    def label(self) -> str:
        return f"python:{self.python}"

    def params_for_record(self) -> dict[str, Any]:
        """What the run record and the cache key say about the call's settings."""
        out: dict[str, Any] = {"params": self.params, "model": self.model}
        if self.seed is not None:
            out["seed"] = self.seed
        return out


# Tags of the two shapes; never field names, so an error's location can drop them (suite._first_error).
MODEL_TAG, PYTHON_TAG = "litellm model", "python callable"
TARGET_TAGS = frozenset({MODEL_TAG, PYTHON_TAG})


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return PYTHON_TAG if "python" in value else MODEL_TAG
    return PYTHON_TAG if isinstance(value, PythonTarget) else MODEL_TAG


AnyTarget = Annotated[
    Union[Annotated[Target, Tag(MODEL_TAG)], Annotated[PythonTarget, Tag(PYTHON_TAG)]],
    Discriminator(_kind),
]


def is_python(target: Any) -> bool:
    return isinstance(target, PythonTarget)
