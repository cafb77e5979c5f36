"""The union of all scorer specs, discriminated by `type`, as used in suite files."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from evalplatform.scorers import formats, safety, text, trajectory, turns  # noqa: F401  (registers the types)
from evalplatform.judges import llm_judge, trained  # noqa: F401,E402  (registers llm_judge, trained_judge)
from evalplatform.scorers.base import SCORER_REGISTRY

SCORER_TYPES = tuple(SCORER_REGISTRY)
ScorerSpec = Annotated[Union[tuple(SCORER_REGISTRY.values())], Field(discriminator="type")]
