"""Format scorers: the output parses as JSON, satisfies a JSON Schema, or validates as a pydantic model."""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import Field, PrivateAttr, ValidationError, model_validator

from evalplatform.errors import InputError
from evalplatform.scorers.base import ScorerBase, register

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_json(text: str) -> Any:
    """Parse the output as JSON, accepting one fenced ```json block around it. Raises ValueError."""
    candidate = text.strip()
    m = _FENCE.search(candidate)
    if m:
        candidate = m.group(1).strip()
    return json.loads(candidate)


def _per_row(frame: pl.DataFrame, check) -> pl.DataFrame:
    scores, whys = [], []
    for row in frame.iter_rows(named=True):
        why = check(row)
        scores.append(0.0 if why else 1.0)
        whys.append(why)
    return frame.with_columns(
        pl.Series("score", scores, dtype=pl.Float64), pl.Series("explanation", whys, dtype=pl.Utf8)
    )


@register
class JsonParses(ScorerBase):
    """Passes when the output is valid JSON (optionally inside one ```json fence)."""

    type: Literal["json_parses"] = "json_parses"

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        def check(row):
            try:
                extract_json(row["output"])
            except ValueError as exc:
                return f"not JSON: {exc}"
            return None

        return _per_row(frame, check)


@register
class JsonSchema(ScorerBase):
    """Passes when the output is JSON valid against a schema (inline, a file, or a case field)."""

    type: Literal["json_schema"] = "json_schema"
    schema_: dict | None = Field(default=None, alias="schema")
    schema_file: str | None = None
    schema_from_column: str | None = None
    _resolved: dict | None = PrivateAttr(default=None)

    model_config = {"populate_by_name": True, "extra": "forbid"}

    @model_validator(mode="after")
    def _one_source(self):
        n = sum(x is not None for x in (self.schema_, self.schema_file, self.schema_from_column))
        if n != 1:
            raise ValueError("set exactly one of `schema`, `schema_file` or `schema_from_column`")
        if self.schema_ is not None:
            _check_schema(self.schema_)
            self._resolved = self.schema_
        return self

    def columns_needed(self) -> list[str]:
        return [self.schema_from_column] if self.schema_from_column else []

    def check_files(self, root: Path, suite_path: Path, field: str) -> None:
        if self.schema_file:
            from evalplatform.paths import inside_project

            p = inside_project(root, self.schema_file, suite_path, f"{field}.schema_file")
            try:
                doc = json.loads(p.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise InputError(suite_path, f"{field}.schema_file", f"{self.schema_file!r} not found") from None
            except (ValueError, UnicodeDecodeError) as exc:
                raise InputError(p, None, f"not valid JSON: {exc}") from None
            try:
                _check_schema(doc)
            except ValueError as exc:
                raise InputError(p, None, str(exc)) from None
            self._resolved = doc

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        import jsonschema

        cache: dict[str, Any] = {}

        def validator_for(schema: Any):
            key = json.dumps(schema, sort_keys=True)
            if key not in cache:
                cache[key] = jsonschema.Draft202012Validator(schema)
            return cache[key]

        def check(row):
            schema = self._resolved
            if self.schema_from_column:
                schema = row[self.schema_from_column]
                if isinstance(schema, str):
                    schema = json.loads(schema)
            try:
                doc = extract_json(row["output"])
            except ValueError as exc:
                return f"not JSON: {exc}"
            err = next(iter(validator_for(schema).iter_errors(doc)), None)
            if err is not None:
                where = "/".join(str(p) for p in err.absolute_path) or "(root)"
                return f"schema violation at {where}: {err.message}"
            return None

        return _per_row(frame, check)


def _check_schema(schema: Any) -> None:
    import jsonschema

    if not isinstance(schema, dict):
        raise ValueError("a JSON Schema must be an object")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}") from None


@register
class PydanticModel(ScorerBase):
    """Passes when the output's JSON validates as `model` ("module:Class", importable from the suite folder)."""

    type: Literal["pydantic_model"] = "pydantic_model"
    model: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    _cls: Any = PrivateAttr(default=None)

    def check_files(self, root: Path, suite_path: Path, field: str) -> None:
        module_name, _, cls_name = self.model.partition(":")
        sys.path.insert(0, str(root.resolve()))
        try:
            module = importlib.import_module(module_name)
            cls = getattr(module, cls_name)
        except (ImportError, AttributeError) as exc:
            raise InputError(suite_path, f"{field}.model", f"cannot import {self.model!r}: {exc}") from None
        finally:
            sys.path.pop(0)
        if not (isinstance(cls, type) and hasattr(cls, "model_validate")):
            raise InputError(suite_path, f"{field}.model", f"{self.model!r} is not a pydantic model")
        self._cls = cls

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        def check(row):
            try:
                self._cls.model_validate(extract_json(row["output"]))
            except ValueError as exc:
                if isinstance(exc, ValidationError):
                    e = exc.errors()[0]
                    return f"invalid at {'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"
                return f"not JSON: {exc}"
            return None

        return _per_row(frame, check)
