"""Calibration sets: human binary labels per criterion with a written critique, one JSON object per line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalplatform.errors import InputError
from evalplatform.provenance import canonical_json, sha256_text
from evalplatform.textio import loads_json


class CalibrationItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    criterion: str = Field(min_length=1)
    input: str
    output: str
    label: Literal["PASS", "FAIL"]
    critique: str = Field(min_length=1, description="Why the reviewer gave this label; used as few-shot material.")


@dataclass(frozen=True)
class CalibrationSet:
    criterion: str
    path: Path
    items: tuple[CalibrationItem, ...]
    version: str   # sha256 of the canonical content: the Dagster data version

    @property
    def n_fail(self) -> int:
        return sum(i.label == "FAIL" for i in self.items)

    @property
    def n_pass(self) -> int:
        return len(self.items) - self.n_fail


def load_calibration_set(path: Path | str, criterion: str | None = None) -> CalibrationSet:
    """Read and validate a calibration file; any problem is one InputError naming file, line and field."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(path, None, "calibration set not found",
                         "label items in datasets/calibration/<criterion>.jsonl") from None
    except UnicodeDecodeError:
        raise InputError(path, None, "not UTF-8", "save the file as UTF-8") from None
    items: list[CalibrationItem] = []
    seen: dict[str, int] = {}
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = loads_json(line)
        except ValueError as exc:
            raise InputError(path, f"line {no}", f"invalid JSON ({getattr(exc, 'msg', exc)})") from None
        if not isinstance(obj, dict):
            raise InputError(path, f"line {no}", "each line must be a JSON object")
        try:
            item = CalibrationItem.model_validate(obj)
        except ValidationError as err:
            e = err.errors()[0]
            field = ".".join(map(str, e["loc"])) or "item"
            msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
            raise InputError(path, f"line {no}: {field}", msg,
                             "fields: id, criterion, input, output, label (PASS|FAIL), critique") from None
        if item.id in seen:
            raise InputError(path, f"line {no}: id", f"duplicate id {item.id!r} (first on line {seen[item.id]})")
        seen[item.id] = no
        want = criterion or (items[0].criterion if items else item.criterion)
        if item.criterion != want:
            raise InputError(path, f"line {no}: criterion", f"{item.criterion!r} in a set for {want!r}",
                             "keep one criterion per file")
        items.append(item)
    if not items:
        raise InputError(path, None, "calibration set is empty")
    version = sha256_text(canonical_json([i.model_dump() for i in items]))
    return CalibrationSet(criterion=items[0].criterion, path=path, items=tuple(items), version=version)
