"""The extractive answer: the best passage, quoted and cited.

Used whenever a generated reply cannot be trusted or does not arrive: the guard
rejected it, the backend timed out or failed, or the configured backend is
``extractive``. From the best-ranked passage (after injection cleaning) it quotes
the sentence that is closest to the question, with its neighbours up to
``grounding.extractive_max_chars``, and cites it as [n]:

    From Returns Policy — The return window: "You can return items within 30 days
    of delivery. …" [1]

Nothing is paraphrased, so nothing can be invented.
"""

from __future__ import annotations

import re
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from knowledge.injection import REDACTED
from knowledge.prompt import passage_label
from knowledge.retrieve import Passage

EmbedMany = Callable[[List[str]], List[List[float]]]
EmbedOne = Callable[[str], List[float]]

#: Weight of the word overlap next to the cosine similarity when sentences are scored.
LEXICAL_WEIGHT = 0.3
#: Weight of the passage's retrieval score when sentences of different passages compete.
PASSAGE_WEIGHT = 0.5

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(£$€-])")
_WORD = re.compile(r"[a-z0-9]+")


def sentences(text: str) -> List[str]:
    """Sentences, list items and table rows of a passage body, in order."""
    parts: List[str] = []
    for block in re.split(r"\n+", text):
        block = block.strip().lstrip("-*• ").strip()
        if block.startswith("|"):
            block = " | ".join(c.strip() for c in block.strip("| ").split("|"))
        if not block or block == REDACTED or set(block) <= {"|", "-", " ", ":"}:
            continue
        parts.extend(p.strip() for p in _SENTENCE_END.split(block) if p.strip())
    return parts


def _words(text: str) -> set:
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w
            for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOP}


_STOP = {"the", "and", "for", "are", "you", "your", "can", "how", "what", "does", "with", "this",
         "that", "have", "will", "any", "our", "from", "not", "get", "its", "it's", "they",
         "them", "there", "when", "which", "who", "why", "into", "about", "much", "many", "did"}


def _lexical_scores(question: str, parts: Sequence[str]) -> List[float]:
    asked = _words(question)
    return [len(asked & _words(p)) / (1 + len(asked)) for p in parts]


def score_parts(question: str, parts: Sequence[str], embed_query: Optional[EmbedOne] = None,
                embed_documents: Optional[EmbedMany] = None) -> np.ndarray:
    """How well each sentence answers the question: cosine similarity plus word overlap."""
    lexical = np.asarray(_lexical_scores(question, parts), dtype=np.float32)
    if embed_query is None or embed_documents is None or not parts:
        return lexical
    q = np.asarray(embed_query(question), dtype=np.float32)
    m = np.asarray(embed_documents(list(parts)), dtype=np.float32)
    return m @ q + LEXICAL_WEIGHT * lexical


def _without_title(question: str, title: str) -> str:
    words = {w.lower() for w in _WORD.findall(title.lower())}
    words |= {w[:-1] for w in words if w.endswith("s")}
    kept = [w for w in re.findall(r"\S+", question)
            if re.sub(r"[^a-z0-9]", "", w.lower()) not in words
            and re.sub(r"[^a-z0-9]", "", w.lower()).rstrip("s") not in words]
    return " ".join(kept) or question


def best_window(parts: Sequence[str], scores: Sequence[float], max_chars: int) -> List[str]:
    """The run of consecutive sentences (within ``max_chars``) whose two best sentences
    score highest; the best sentence alone when it is longer than ``max_chars``."""
    if not len(parts):
        return []
    best_value, best_span = None, (int(np.argmax(scores)), int(np.argmax(scores)) + 1)
    for start in range(len(parts)):
        size, end = 0, start
        while end < len(parts) and (end == start or size + len(parts[end]) + 1 <= max_chars):
            size += len(parts[end]) + 1
            end += 1
        top = sorted((float(x) for x in scores[start:end]), reverse=True)[:2]
        value = top[0] + (top[1] if len(top) > 1 else top[0]) * 0.5
        if best_value is None or value > best_value + 1e-9:
            best_value, best_span = value, (start, end)
    quote = list(parts[best_span[0]:best_span[1]])
    if len(quote) == 1 and len(quote[0]) > max_chars:
        quote = [quote[0][:max_chars].rsplit(" ", 1)[0] + " …"]
    return quote


def best_fields(fields: Sequence[str], scores: Sequence[float], max_chars: int,
                most: int = 3, margin: float = 0.12) -> List[str]:
    """A catalogue row: its fields closest to the question (up to ``most``), in row order."""
    order = [int(i) for i in np.argsort(-np.asarray(scores))]
    chosen: List[int] = []
    size = 0
    for i in order[:most]:
        if chosen and (size + len(fields[i]) > max_chars or scores[i] < scores[order[0]] - margin):
            continue
        chosen.append(i)
        size += len(fields[i]) + 2
    quote = [fields[i] for i in sorted(chosen)]
    if len(quote) == 1 and len(quote[0]) > max_chars:
        quote = [quote[0][:max_chars].rsplit(" ", 1)[0] + " …"]
    return quote


def extractive_answer(question: str, passages: Sequence[Passage], cleaned: Sequence[str],
                      max_chars: int, embed_query: Optional[EmbedOne] = None,
                      embed_documents: Optional[EmbedMany] = None,
                      consider: int = 1, template: str = 'From {source}: "{quote}" [{n}]'
                      ) -> Tuple[str, int]:
    """(reply text, 1-based number of the passage quoted).

    By default the best-ranked passage is quoted. With ``consider`` > 1 the sentences of
    the first ``consider`` passages compete (sentence score plus ``PASSAGE_WEIGHT`` times
    the passage's retrieval score); on the benchmark questions that did not help (0.53 →
    0.50 of replies containing the expected facts), so it is off. A quote never mixes
    passages.
    """
    candidates = []
    for number, (passage, body) in enumerate(zip(passages, cleaned), start=1):
        parts = sentences(body)
        if parts:
            candidates.append((number, passage, parts))
        if len(candidates) == consider:
            break
    if not candidates:
        raise ValueError("no passage has text to quote")
    flat = [part for _, _, parts in candidates for part in parts]
    flat_scores = score_parts(question, flat, embed_query, embed_documents)
    best = None
    offset = 0
    for number, passage, parts in candidates:
        scores = flat_scores[offset:offset + len(parts)]
        offset += len(parts)
        value = float(np.max(scores)) + PASSAGE_WEIGHT * passage.score
        if best is None or value > best[0]:
            best = (value, number, passage, parts, scores)
    _, number, passage, parts, scores = best
    if passage.metadata.get("format") == "csv":
        # In a catalogue row the product is already known: score its fields against what
        # is asked about it ("how much are the Calvin Klein boots" → "how much are the").
        asked = _without_title(question, passage.title)
        scores = score_parts(asked, parts, embed_query, embed_documents)
        text = "; ".join(best_fields(parts, scores, max_chars))
    else:
        text = " ".join(best_window(parts, scores, max_chars))
    return template.format(source=passage_label(passage), quote=text, n=number), number
