"""Importers of other tools' result files (Promptfoo, DeepEval, Inspect AI, JUnit, plain tables) into the canonical table."""

from evalplatform.importers._common import DEFAULT_MAX_BYTES, OUTCOME_ALIASES
from evalplatform.importers.api import (
    ImportIncompleteWarning,
    ImportResult,
    detect_format,
    import_results,
    load_results,
)
from evalplatform.importers.registry import FORMATS, Format, register

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "Format",
    "ImportIncompleteWarning",
    "ImportResult",
    "OUTCOME_ALIASES",
    "detect_format",
    "import_results",
    "load_results",
    "register",
]
