"""Rubrics: one criterion each, Markdown with YAML front matter (criterion, version) and optional checks."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalplatform.errors import InputError
from evalplatform.provenance import sha256_text
from evalplatform.textio import load_yaml

# "- FAIL if: /regex/ — why" or "- FAIL if: @builtin — why": machine-checkable hints that a
# rubric-following local judge applies; an LLM judge reads them as part of the rubric text.
CHECK_LINE = re.compile(r"^\s*-\s*FAIL if:\s*(?P<spec>/.+?/|@\w+)\s*[—-]+\s*(?P<why>.+?)\s*$", re.MULTILINE)


class RubricMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    criterion: str = Field(min_length=1)
    version: int | str = Field(description="Bump when the rubric's meaning changes; part of the judge identity.")
    title: str | None = None


class Rubric(BaseModel):
    """A rubric as the judge sees it; `sha256` covers the whole file text."""

    criterion: str
    version: str
    text: str
    sha256: str
    source: str

    @property
    def checks(self) -> list[tuple[str, str]]:
        return [(m["spec"], m["why"]) for m in CHECK_LINE.finditer(self.text)]


def parse_rubric(raw: str, source: str = "<inline rubric>", criterion: str | None = None) -> Rubric:
    """Parse rubric text; front matter is required in files, optional inline (then `criterion` is used)."""
    body = raw
    meta: dict = {}
    if raw.startswith("---"):
        parts = raw.split("---", 2)
        if len(parts) < 3:
            raise InputError(source, "front matter", "unterminated YAML front matter", "close it with a line '---'")
        # Line numbers in the front matter are the file's: it starts on the first line.
        meta = (load_yaml(source, parts[1]) if parts[1].strip() else None) or {}
        body = parts[2]
    if not isinstance(meta, dict):
        raise InputError(source, "front matter", "must be a mapping (criterion, version)")
    meta.setdefault("criterion", criterion)
    meta.setdefault("version", 1)
    try:
        m = RubricMeta.model_validate(meta)
    except ValidationError as err:
        e = err.errors()[0]
        raise InputError(source, ".".join(map(str, e["loc"])) or "front matter", e["msg"],
                         "front matter needs criterion and version") from None
    if criterion is not None and m.criterion != criterion:
        raise InputError(source, "criterion", f"rubric is for {m.criterion!r}, the scorer's criterion is {criterion!r}",
                         "use the rubric of this criterion")
    body = body.strip()
    if not body:
        raise InputError(source, None, "rubric text is empty", "describe when a response passes and when it fails")
    for spec, _ in [(mm["spec"], mm["why"]) for mm in CHECK_LINE.finditer(body)]:
        if spec.startswith("/"):
            try:
                re.compile(spec[1:-1])
            except re.error as exc:
                raise InputError(source, "checks", f"invalid regular expression {spec}: {exc}") from None
    return Rubric(criterion=m.criterion, version=str(m.version), text=body, sha256=sha256_text(raw), source=source)


def load_rubric(path: Path, criterion: str | None = None) -> Rubric:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, None, "rubric file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read rubric: {exc}") from None
    return parse_rubric(raw, str(path), criterion)
