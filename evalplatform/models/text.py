"""Model text that can be stored: a lone surrogate ("\\ud800") is valid JSON but cannot be encoded as UTF-8."""

from __future__ import annotations


def unicode_problem(text: str) -> str | None:
    """Why `text` cannot be hashed, cached or stored (the first lone surrogate and where it is), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ascii(text[exc.start:exc.end])[1:-1]
        return f"not valid Unicode (lone surrogate {bad} at character {exc.start})"
    return None


def escape_unencodable(text: str) -> str:
    """`text` with what UTF-8 cannot encode written as backslash escapes: error text is shown, never dropped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
