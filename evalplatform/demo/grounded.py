"""Answers from the help center: BM25 picks the article, query-term overlap picks its sentences."""

from __future__ import annotations

from functools import lru_cache

from evalplatform.demo.bm25 import BM25, tokenize
from evalplatform.demo.knowledge import Article, KnowledgeBase
from evalplatform.demo.turn import Turn

NO_INFO = "I don't have information about that in the Nimbus help center."
# Below these the match is a coincidence of common words, and saying "I don't know" is the honest reply.
MIN_ARTICLE_SCORE = 2.0
MIN_SENTENCE_SCORE = 1.5
MAX_SENTENCES = 2


@lru_cache(maxsize=4)
def index(kb: KnowledgeBase) -> BM25:
    # The title counts twice: it is the article's best summary of what it answers.
    return BM25([tokenize(f"{a.title} {a.title} {a.body}") for a in kb.articles])


def retrieve(kb: KnowledgeBase, question: str, k: int = 3) -> list[tuple[Article, float]]:
    ranked = index(kb).rank(tokenize(question))[:k]
    return [(kb.articles[i], s) for i, s in ranked]


def select_sentences(kb: KnowledgeBase, question: str, context: list[str]) -> list[str]:
    """The context sentences sharing the most (IDF-weighted) query terms, in their original order."""
    idf = index(kb).idf
    q = set(tokenize(question))
    scored = [(sum(idf.get(t, 0.0) for t in q & set(tokenize(s))), i, s) for i, s in enumerate(context)]
    best = max((sc for sc, _, _ in scored), default=0.0)
    if best < MIN_SENTENCE_SCORE:
        return []
    keep = sorted((x for x in scored if x[0] >= 0.5 * best), key=lambda x: (-x[0], x[1]))[:MAX_SENTENCES]
    return [s for _, _, s in sorted(keep, key=lambda x: x[1])]


def answer_text(turn: Turn) -> str | None:
    """The grounded answer's sentences, or None when the help center does not cover the question."""
    hits = retrieve(turn.kb, turn.text, k=1)
    if not hits or hits[0][1] < MIN_ARTICLE_SCORE:
        return None
    article = hits[0][0]
    context = list(article.sentences[: turn.behaviour.context_sentences])
    chosen = select_sentences(turn.kb, turn.text, context)
    return " ".join(chosen) if chosen else None


def reply(turn: Turn) -> str:
    text = answer_text(turn)
    if text is None:
        return NO_INFO
    return turn.pick(("", "Here is what the help center says: ", "Good question! ")) + text
