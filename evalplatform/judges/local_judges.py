"""Offline demo judges served as local/judge-rubric (follows the rubric's checks) and local/judge-lenient (always PASS).

judge-rubric is a deterministic heuristic: it reads the `- FAIL if:` checks from the rubric in the
system message and applies them to the fenced response. It is good, not perfect, which is what a
calibration must show. judge-lenient is deliberately useless: on a set that is mostly PASS its raw
agreement looks fine, but it never catches a failure, so the gate must refuse it.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from evalplatform.judges.rubric import CHECK_LINE
from evalplatform.models.local_provider import register_app

_BLOCK = r"<<<{tag}-(?P<n>[0-9a-f]+)\n(?P<body>.*?)\n{tag}-(?P=n)>>>"
_NUMBER = re.compile(r"\$?\d[\d,]*(?:\.\d+)?%?")


def _block(text: str, tag: str) -> str | None:
    m = re.search(_BLOCK.format(tag=tag), text, re.DOTALL)
    return m["body"] if m else None


def _norm_number(tok: str) -> str:
    tok = tok.replace(",", "").rstrip("%").lstrip("$").rstrip(".")
    try:
        return f"{float(tok):g}"
    except ValueError:
        return tok


@lru_cache(maxsize=1)
def _kb_numbers() -> frozenset[str]:
    from evalplatform.demo.knowledge import load

    kb = load()
    text = " ".join(a.body for a in kb.articles)
    return frozenset(_norm_number(t) for t in _NUMBER.findall(text))


def _ungrounded_numbers(response: str, user_input: str) -> list[str]:
    """Amounts, durations and counts in the response that neither the help center nor the question states."""
    allowed = _kb_numbers() | {_norm_number(t) for t in _NUMBER.findall(user_input)}
    # Dates and times are checked by other criteria; masked digits (***-0187) are not claims.
    cleaned = re.sub(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}|\*+-?\d+|NC-\d+|ending in \d+", " ", response)
    return [t for t in _NUMBER.findall(cleaned) if _norm_number(t) not in allowed]


_WORD = re.compile(r"[a-z][a-z0-9-]{3,}")
_COMMON = frozenset("that this with your have from they their there what when will also each only about into "
                    "more than then them these those been were does after before every".split())


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _COMMON}


@lru_cache(maxsize=1)
def _kb_sentences() -> tuple[frozenset[str], ...]:
    from evalplatform.demo.knowledge import load

    return tuple(frozenset(_content_words(s)) for a in load().articles for s in a.sentences)


def _unsupported_sentences(response: str, user_input: str) -> list[str]:
    """Sentences whose content words mostly appear in no single help-center sentence (nor the question)."""
    from evalplatform.demo.knowledge import split_sentences

    asked = _content_words(user_input)
    out = []
    for sentence in split_sentences(response):
        words = _content_words(sentence) - asked
        if len(words) < 3:  # greetings and short connectives carry no claim
            continue
        best = max(len(words & kb) for kb in _kb_sentences())
        if best / len(words) < 0.6:
            out.append(repr(sentence[:60]))
    return out


BUILTINS = {"ungrounded_numbers": _ungrounded_numbers, "unsupported_sentences": _unsupported_sentences}


def _user_text(messages: list[dict]) -> str:
    return next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")


def _system_text(messages: list[dict]) -> str:
    return next((str(m.get("content") or "") for m in messages if m.get("role") == "system"), "")


def _reply(reasoning: str, verdict: str) -> str:
    return json.dumps({"reasoning": reasoning, "verdict": verdict})


def rubric_judge(messages: list[dict], params: dict) -> str:
    """Apply each `- FAIL if:` check of the rubric to the response; PASS when none fires."""
    user = _user_text(messages)
    response, user_input = _block(user, "RESPONSE"), _block(user, "INPUT") or ""
    if response is None:
        return _reply("The message holds no fenced response to grade.", "FAIL")
    problems = []
    for m in CHECK_LINE.finditer(_system_text(messages)):
        spec, why = m["spec"], m["why"]
        if spec.startswith("@"):
            fn = BUILTINS.get(spec[1:])
            hits = fn(response, user_input) if fn else []
            if hits:
                problems.append(f"{why} ({', '.join(hits[:3])})")
        elif re.search(spec[1:-1], response):
            problems.append(why)
    if problems:
        return _reply("The rubric's checks find: " + "; ".join(problems) + ".", "FAIL")
    return _reply("None of the rubric's failure conditions applies to the response.", "PASS")


def lenient_judge(messages: list[dict], params: dict) -> str:
    return _reply("The response looks fine.", "PASS")


APPS = {"judge-rubric": rubric_judge, "judge-lenient": lenient_judge}


def register() -> list[str]:
    for name, fn in APPS.items():
        register_app(name, fn)
    return list(APPS)


register()
