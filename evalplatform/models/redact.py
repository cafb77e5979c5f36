"""Scrub secrets (API keys, bearer tokens) from text before it is stored, shown or logged."""

from __future__ import annotations

import os
import re
from typing import Iterable

from evalplatform.models.text import escape_unencodable

MASK = "[REDACTED]"

# Environment variables whose values are treated as secrets wherever they appear.
_SECRET_ENV = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
# Shorter values are too likely to occur by chance in ordinary text to be masked blindly.
_MIN_SECRET_LEN = 6

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), MASK),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{4,}", re.IGNORECASE), r"\1 " + MASK),
    (re.compile(
        r"""\b(api[_-]?key|apikey|x-api-key|access[_-]?token|auth[_-]?token|token|secret|password|key)\b"""
        r"""(["']?\s*[:=]\s*["']?)(?!\[REDACTED\])[^\s"',;&)}\]]+""",
        re.IGNORECASE,
    ), r"\1\2" + MASK),
    # Credentials in a URL's userinfo: https://user:secret@host -> https://user:[REDACTED]@host
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^/\s:@]+):[^/\s@]+@", re.IGNORECASE), r"\1:" + MASK + "@"),
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with known secret values, secret-looking env var values, sk-... keys, bearer tokens and
    `api_key=...`-style assignments replaced by [REDACTED]; lone surrogates (from a provider's error
    body) escaped, so the text can always be stored and printed."""
    if not text:
        return text
    values = {s for s in secrets if s}
    values.update(v for k, v in os.environ.items() if _SECRET_ENV.search(k) and v)
    # Longest first, so a secret that contains another is masked whole.
    for value in sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return escape_unencodable(text)
