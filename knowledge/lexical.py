"""The lexical side of hybrid retrieval: BM25 (langchain's ``BM25Retriever`` on ``rank_bm25``).

Dense vectors find paraphrases ("get my money back" → refunds) but blur rare,
exact words: "overnight", "penalty", a product's own name. BM25 scores exact
words by how rare they are in the corpus, so the two fail on different
questions and their fusion (``retrieve``) is better than either.

What is stored is the token list of every chunk, in vector order, as JSON
(``bm25.json`` next to ``index.faiss``; signed with the rest of the index by
``index_store``, never pickled). The BM25 statistics are recomputed from the
tokens when the index is loaded, which takes milliseconds for thousands of
chunks; ingestion reuses the tokens of unchanged chunks.

Customers misspell ("refnud", "chelsae", "wher"): ``correct`` replaces a query word
the corpus has never seen by a corpus word with the same first letter that is one
edit away (a letter swapped with its neighbour, or, from five letters on, one letter
changed, added or dropped; the commonest such word wins), else by the closest one
``difflib`` finds (similarity at least ``TYPO_CUTOFF``), so BM25 and the coverage see
"refund"; a misspelt function word ("wher" → "where") is dropped like the word itself.

``coverage`` is the share of a question's information (idf-weighted words) that a
chunk contains. Words the corpus has never seen weigh the most, so a question
about something the knowledge base does not cover ("do you sell sunglasses?")
scores low even when its other words match; it is one of the two inputs of the
"I don't know" decision.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import defaultdict
from typing import Any, Dict, List, Sequence

import numpy as np

#: Bump when ``tokenize`` changes: stored tokens of another version are recomputed.
TOKENIZER_VERSION = 1

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
#: Least ``difflib`` similarity for a misspelt word to be read as a corpus word.
TYPO_CUTOFF = 0.85
#: Words shorter than this are never corrected (too many near neighbours).
TYPO_MIN_LENGTH = 4
#: From this length on, one changed, added or dropped letter is a typo too (below it,
#: only two swapped neighbours: "lnog"; "fast" and "fist" are both words).
TYPO_EDIT_LENGTH = 5
#: English function words: frequent in questions, useless for telling passages apart.
STOPWORDS = frozenset("""
a about am an and any are as at be been but by can could did do does doing for from get got
had has have how i i'm if in into is it it's its just me my of on or our please so than that
the their them then there these they this those to too u up us was we were what whats when
where which who why will with would you your yours ya yall y'all im ive i've id i'd
ur yo lol ngl bruh wtf smh tryna gimme pls plz kinda nah ok okay yeah hey hi hello thanks thx
guys em
""".split())

#: Function words long enough that a one-edit misspelling of them is not another word.
_LONG_STOPWORDS = tuple(w for w in STOPWORDS if len(w) >= TYPO_EDIT_LENGTH and w.isalpha())


def _stem(word: str) -> str:
    """A light suffix cut so "returns"/"returned"/"returning" meet "return"."""
    for suffix, keep in (("ies", 3), ("ing", 4), ("ed", 4), ("es", 4), ("s", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def one_edit(typed: str, word: str, swaps_only: bool = False) -> bool:
    """Whether ``word`` is ``typed`` with two neighbouring letters swapped or (unless
    ``swaps_only``) one letter changed, added or dropped."""
    if len(typed) == len(word):
        diffs = [i for i, (x, y) in enumerate(zip(typed, word)) if x != y]
        if len(diffs) == 2 and diffs[1] == diffs[0] + 1:
            first, second = diffs
            return typed[first] == word[second] and typed[second] == word[first]
        return len(diffs) == 1 and not swaps_only
    if swaps_only or abs(len(typed) - len(word)) != 1:
        return False
    short, long = sorted((typed, word), key=len)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def tokenize(text: str) -> List[str]:
    """Lower-case words without function words, lightly stemmed (also used for queries)."""
    words = (w.replace("’", "'") for w in _WORD.findall(text.lower()))
    return [_stem(w.split("'")[0]) for w in words
            if w not in STOPWORDS and w.split("'")[0] not in STOPWORDS]


class LexicalIndex:
    """BM25 over the chunks of one index, in vector order."""

    def __init__(self, tokens: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75
                 ) -> None:
        from langchain_community.retrievers import BM25Retriever
        from langchain_core.documents import Document
        from rank_bm25 import BM25Okapi

        self.tokens = [list(t) for t in tokens]
        self.k1, self.b = k1, b
        # rank_bm25 divides by the corpus size; an empty corpus gets one empty document.
        corpus = self.tokens or [[]]
        vectorizer = BM25Okapi(corpus, k1=k1, b=b)
        # langchain's retriever holds the vectorizer (and serves ``invoke`` for callers who
        # want documents); scores for fusion come straight from the vectorizer.
        self.retriever = BM25Retriever(
            vectorizer=vectorizer, docs=[Document(page_content=" ".join(t)) for t in corpus],
            preprocess_func=tokenize)
        # Coverage weighs words by a never-negative idf, log(1 + (N - n + 0.5) / (n + 0.5))
        # (BM25Okapi's own can be negative or zero in a small corpus).
        self._documents: Dict[str, int] = defaultdict(int)
        for frequencies in vectorizer.doc_freqs:
            for word in frequencies:
                self._documents[word] += 1
        self._size = len(self.tokens)
        self._by_initial: Dict[str, List[str]] = defaultdict(list)
        for word in sorted(vectorizer.idf):
            self._by_initial[word[:1]].append(word)

    @property
    def vectorizer(self) -> Any:
        return self.retriever.vectorizer

    def __len__(self) -> int:
        return len(self.tokens)

    def correct(self, query_tokens: Sequence[str]) -> List[str]:
        """The query's words, each unknown one replaced by its closest corpus word if any
        (and dropped when it is a misspelt function word)."""
        known = self.vectorizer.idf
        fixed = []
        for token in query_tokens:
            if token not in known and len(token) >= TYPO_MIN_LENGTH and not token.isdigit():
                if any(one_edit(token, word) for word in _LONG_STOPWORDS):
                    continue
                token = self._nearest(token)
            fixed.append(token)
        return fixed

    def _nearest(self, token: str) -> str:
        """The corpus word ``token`` was probably meant to be, or ``token`` itself."""
        candidates = self._by_initial.get(token[:1], [])
        swaps_only = len(token) < TYPO_EDIT_LENGTH
        edits = [w for w in candidates if one_edit(token, w, swaps_only=swaps_only)]
        if edits:
            return max(edits, key=lambda w: (self._documents.get(w, 0), w))
        near = difflib.get_close_matches(token, candidates, n=1, cutoff=TYPO_CUTOFF)
        return near[0] if near else token

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every chunk for the (tokenized) query."""
        if not self.tokens:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self.vectorizer.get_scores(list(query_tokens)), dtype=np.float32)

    def idf(self, token: str) -> float:
        """The token's weight for coverage; a token no chunk contains weighs the most."""
        n = self._documents.get(token, 0)
        return math.log(1.0 + (self._size - n + 0.5) / (n + 0.5))

    def coverage(self, query_tokens: Sequence[str], position: int) -> float:
        """Share (0-1) of the query's idf weight whose words occur in chunk ``position``."""
        unique = list(dict.fromkeys(query_tokens))
        if not unique or not self.tokens:
            return 0.0
        present = self.vectorizer.doc_freqs[position]
        weights = [self.idf(t) for t in unique]
        total = sum(weights)
        found = sum(w for t, w in zip(unique, weights) if t in present)
        return found / total if total > 0 else 0.0

    # ------------------------------------------------------------------ storage
    def to_json(self) -> Dict[str, Any]:
        return {"tokenizer": TOKENIZER_VERSION, "k1": self.k1, "b": self.b,
                "tokens": self.tokens}

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "LexicalIndex":
        return cls(data.get("tokens", []), k1=float(data.get("k1", 1.5)),
                   b=float(data.get("b", 0.75)))
