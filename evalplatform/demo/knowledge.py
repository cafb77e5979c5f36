"""The bundled Nimbus help center: articles (Markdown with YAML front matter), their facts, and customer accounts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from evalplatform.textio import load_yaml

KB_DIR = Path(__file__).resolve().parent / "kb"

# A sentence ends at . ! or ? followed by whitespace and a capital or digit ("$8.00" never splits).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


@dataclass(frozen=True, eq=False)
class Article:
    id: str
    title: str
    body: str
    sentences: tuple[str, ...]
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class KnowledgeBase:
    articles: tuple[Article, ...]
    # Structured facts from the articles' front matter: what the calculators compute with, so
    # prices and day counts live next to the prose that states them (a test keeps them in sync).
    facts: dict[str, Any]
    accounts: tuple[dict[str, Any], ...]

    def article(self, article_id: str) -> Article:
        return next(a for a in self.articles if a.id == article_id)


def _read_article(path: Path) -> Article:
    _, front, body = path.read_text(encoding="utf-8").split("---\n", 2)
    meta = load_yaml(path, front) if front.strip() else {}
    body = " ".join(body.split())
    return Article(
        id=meta["id"], title=meta["title"], body=body,
        sentences=tuple(split_sentences(body)), facts=meta.get("facts") or {},
    )


@lru_cache(maxsize=4)
def load(kb_dir: Path = KB_DIR) -> KnowledgeBase:
    articles = tuple(_read_article(p) for p in sorted(kb_dir.glob("*.md")))
    facts: dict[str, Any] = {}
    for a in articles:
        facts.update(a.facts)
    accounts = tuple(json.loads((kb_dir / "accounts.json").read_text(encoding="utf-8")))
    return KnowledgeBase(articles=articles, facts=facts, accounts=accounts)
