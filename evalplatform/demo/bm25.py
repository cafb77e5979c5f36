"""Okapi BM25 over tokenized documents, plus the tokenizer the demo assistant uses for queries and articles."""

from __future__ import annotations

import math
import re
from collections import Counter

_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be by can could do does for from get has have how i if in into is it its me my "
    "of on or our so than that the their them then there this to under up us was we what when where "
    "which who will with would you your nimbus please tell much many".split()
)


def stem(word: str) -> str:
    """A deliberately tiny suffix stripper: enough to match 'refundable'/'refunds'/'refund' and 'expires'/'expire'."""
    for suffix, repl in (("able", ""), ("ies", "y"), ("ing", ""), ("ed", ""), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + repl
    return word


def tokenize(text: str) -> list[str]:
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class BM25:
    """Scores documents (token lists) against a query; k1 and b are the usual Robertson defaults."""

    def __init__(self, docs: list[list[str]], k1: float = 1.5, b: float = 0.75):
        self.docs = docs
        self.k1, self.b = k1, b
        self.tf = [Counter(d) for d in docs]
        self.avgdl = sum(len(d) for d in docs) / max(len(docs), 1)
        df = Counter(t for d in docs for t in set(d))
        n = len(docs)
        # The "+1" inside the log keeps IDF positive for terms present in most documents.
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def score(self, query: list[str], i: int) -> float:
        tf, dl = self.tf[i], len(self.docs[i])
        total = 0.0
        for t in set(query):
            f = tf.get(t, 0)
            if f:
                total += self.idf[t] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * dl / self.avgdl))
        return total

    def rank(self, query: list[str]) -> list[tuple[int, float]]:
        """(document index, score) for every document with a positive score, best first, ties by index."""
        scored = [(i, self.score(query, i)) for i in range(len(self.docs))]
        return sorted((s for s in scored if s[1] > 0), key=lambda s: (-s[1], s[0]))
