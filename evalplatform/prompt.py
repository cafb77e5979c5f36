"""Prompt templates: `{{ field }}` placeholders filled from a case's fields, nothing executable."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from evalplatform.errors import InputError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_BRACES = re.compile(r"\{\{|\}\}")


def template_fields(template: str, path: str | Path = "<prompt>") -> list[str]:
    """Names used by the template; a stray or malformed `{{ ... }}` is an error, not literal text."""
    names = _PLACEHOLDER.findall(template)
    leftover = _BRACES.findall(_PLACEHOLDER.sub("", template))
    if leftover:
        raise InputError(path, None, "malformed placeholder: use {{ field_name }} with a plain field name")
    return list(dict.fromkeys(names))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def render(template: str, fields: dict[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: _text(fields[m.group(1)]), template)


def build_messages(system_prompt: str | None, user_text: str) -> list[dict]:
    messages = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": user_text})
    return messages
