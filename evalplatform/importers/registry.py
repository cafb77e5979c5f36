"""The registry of result-file formats: name -> how to recognise a file and how to load it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from evalplatform.importers._common import Parsed


@dataclass(frozen=True)
class Options:
    """Per-call settings every loader receives."""

    max_bytes: int
    mapping: dict[str, str] | None = None


@dataclass(frozen=True)
class Format:
    name: str
    # Lower-case name endings this format is written with (".results.json" style suffixes included).
    extensions: tuple[str, ...]
    # Looks at the first bytes of a file (BOM stripped) with that extension; True when it is this format.
    sniff: Callable[[bytes], bool]
    load: Callable[[Path, Options], Parsed]
    description: str = ""
    # Generic table formats accept anything with their extension, so auto-detection tries them last.
    fallback: bool = False


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    if fmt.name in FORMATS:
        raise ValueError(f"import format {fmt.name!r} registered twice")
    FORMATS[fmt.name] = fmt
    return fmt
