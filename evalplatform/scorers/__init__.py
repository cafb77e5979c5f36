"""Scorers, cheapest first: assertions, formats, references, safety patterns (judges live in evalplatform.judges)."""

from evalplatform.scorers.base import SCORER_REGISTRY, ScorerBase, When, register
from evalplatform.scorers.specs import SCORER_TYPES, ScorerSpec

__all__ = ["SCORER_REGISTRY", "SCORER_TYPES", "ScorerBase", "ScorerSpec", "When", "register"]
