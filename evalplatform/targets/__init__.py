"""Targets: a litellm model string or your own Python pipeline or agent, behind one dispatch point."""

from evalplatform.targets.spec import AnyTarget, PythonTarget, is_python
from evalplatform.targets.types import CaseInput, Step, TargetResult, ToolCall

__all__ = ["AnyTarget", "CaseInput", "PythonTarget", "Step", "TargetResult", "ToolCall", "is_python"]
