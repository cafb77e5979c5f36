"""Scrub secrets (API keys, bearer tokens) from text before it is stored, shown or logged."""

from __future__ import annotations

import logging
import os
import re
from typing import Iterable

from evalplatform.models.text import escape_unencodable

MASK = "[REDACTED]"

# Environment variables whose values are treated as secrets wherever they appear.
_SECRET_ENV = re.compile(r"(API_?KEY|(^|_)KEY$|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
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
    # Any URL userinfo, whole: https://user:secret@host and https://TOKEN@host -> https://[REDACTED]@host.
    # Userinfo ends at the first "/", "?" or "#", so an "@" in a path or query is left alone.
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://)[^/?#\s@]+@", re.IGNORECASE), r"\1" + MASK + "@"),
)


# Keys read for model calls in this process (an api_key_env may have any name): masked everywhere after.
_remembered: set[str] = set()


def is_secret_env(name: str) -> bool:
    """Whether an environment variable's value is treated as a secret (API keys, tokens, passwords...)."""
    return bool(_SECRET_ENV.search(name))


def remember_secret(value: str | None) -> None:
    """Mask `value` in everything redacted from now on (logs of third-party clients included)."""
    if value and len(value) >= _MIN_SECRET_LEN:
        _remembered.add(value)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with known secret values, secret-looking env var values, sk-... keys, bearer tokens and
    `api_key=...`-style assignments replaced by [REDACTED]; lone surrogates (from a provider's error
    body) escaped, so the text can always be stored and printed."""
    if not text:
        return text
    values = {s for s in secrets if s} | _remembered
    values.update(v for k, v in os.environ.items() if is_secret_env(k) and v)
    # Longest first, so a secret that contains another is masked whole.
    for value in sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return escape_unencodable(text)


class RedactingFilter(logging.Filter):
    """Passes every record through `redact` (message and traceback) before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call is the caller's problem; never lose the record
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = RedactingFilter()


def redact_logs(prefixes: Iterable[str]) -> None:
    """Install the filter on every logger named by or under `prefixes`: the OpenAI SDK and httpx log request
    URLs (with their userinfo) at DEBUG/INFO, litellm logs whole requests. A filter on a logger only sees
    that logger's own records, so each existing child gets one too."""
    prefixes = tuple(prefixes)
    names = set(prefixes) | {n for n in logging.root.manager.loggerDict if n.startswith(prefixes)}
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
