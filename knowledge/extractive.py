"""The extractive answer: the best passage, quoted and cited.

Used whenever a generated reply cannot be trusted or does not arrive: the guard
rejected it, the backend timed out or failed, or the configured backend is
``extractive``. From the best-ranked passage (after injection cleaning) it quotes
the run of sentences that answers the question best, up to
``grounding.extractive_max_chars``, and cites it as [n]. A question that asks two
things ("how much is express and how long does it take?") is split into its parts
and the run that answers most of them wins. In a catalogue row the product is
already known, so its fields are scored against what is asked about it, and a
field whose cue words (``answers.field_cues``: "how much" → price) the question
uses is preferred:

    From Returns Policy — The return window: "You can return items within 30 days
    of delivery. …" [1]

Nothing is paraphrased, so nothing can be invented.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

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
#: Score added to a catalogue field whose cue words the question uses.
CUE_BONUS = 0.5

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(£$€-])")
_WORD = re.compile(r"[a-z0-9]+")
#: A line that starts a new block even without a blank line before it.
_ITEM_START = re.compile(r"^(?:[-*•|]|\d+[.)]\s|[A-Z][\w /&-]{0,40}:\s)")
_PARAGRAPH_END = "\x00"
_ASKING = (r"(?:how|what|what's|whats|when|where|which|who|why|is|are|do|does|did|can|could|will|"
           r"would|should|if)\b")
_PART_SPLIT = re.compile(rf"\?|;|\s&\s|(?:,|,?\s+and)\s+(?={_ASKING})", re.IGNORECASE)
_ASKS = re.compile(rf"\b{_ASKING}", re.IGNORECASE)


def _blocks(text: str) -> List[str]:
    """Paragraphs, list items and table rows; a paragraph wrapped over lines is one block."""
    blocks: List[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        for line in paragraph.splitlines():
            stripped = line.strip()
            if not stripped:
                continue
            if blocks and not _ITEM_START.match(stripped) and not blocks[-1].startswith("|") \
                    and blocks[-1] is not _PARAGRAPH_END:
                blocks[-1] = f"{blocks[-1]} {stripped}"
            else:
                blocks.append(stripped)
        blocks.append(_PARAGRAPH_END)
    return [b for b in blocks if b is not _PARAGRAPH_END]


def sentences(text: str) -> List[str]:
    """Sentences, list items and table rows of a passage body, in order."""
    parts: List[str] = []
    for block in _blocks(text):
        block = re.sub(r"^\d+[.)]\s+", "", block.strip().lstrip("-*• ").strip())
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


def question_parts(question: str) -> List[str]:
    """The separate things a question asks ("how much is X and how long does it take?")."""
    pieces = [p.strip(" ,") for p in _PART_SPLIT.split(question) if p and p.strip(" ,")]
    pieces = [p for p in pieces if _words(p)]
    return pieces if len(pieces) > 1 else [question]


def score_parts(question: str, parts: Sequence[str], embed_query: Optional[EmbedOne] = None,
                embed_documents: Optional[EmbedMany] = None) -> np.ndarray:
    """How well each sentence answers the question: cosine similarity plus word overlap."""
    return score_matrix([question], parts, embed_query, embed_documents)[0]


def score_matrix(asks: Sequence[str], parts: Sequence[str],
                 embed_query: Optional[EmbedOne] = None,
                 embed_documents: Optional[EmbedMany] = None) -> np.ndarray:
    """[ask, sentence] scores: cosine similarity plus word overlap (sentences embedded once)."""
    lexical = np.asarray([_lexical_scores(a, parts) for a in asks], dtype=np.float32)
    if embed_query is None or embed_documents is None or not parts:
        return lexical
    m = np.asarray(embed_documents(list(parts)), dtype=np.float32)
    q = np.asarray([embed_query(a) for a in asks], dtype=np.float32)
    return q @ m.T + LEXICAL_WEIGHT * lexical


def _cued(question: str, field: str, cues: Dict[str, List[str]]) -> bool:
    """Whether ``field`` ("Price: 245.00") is a column whose cue words the question uses."""
    label = field.split(":", 1)[0].strip().lower().replace(" ", "_")
    lowered = question.lower()
    return any(re.search(rf"\b{re.escape(cue.lower())}\b", lowered)
               for cue in cues.get(label, []))


def _without_title(question: str, title: str) -> str:
    words = {w.lower() for w in _WORD.findall(title.lower())}
    words |= {w[:-1] for w in words if w.endswith("s")}
    kept = [w for w in re.findall(r"\S+", question)
            if re.sub(r"[^a-z0-9]", "", w.lower()) not in words
            and re.sub(r"[^a-z0-9]", "", w.lower()).rstrip("s") not in words]
    return " ".join(kept) or question


def best_window(parts: Sequence[str], scores: Any, max_chars: int) -> List[str]:
    """The run of consecutive sentences (within ``max_chars``) that answers best: for one
    ask, whose two best sentences score highest; for several asks (rows of ``scores``),
    whose best sentence per ask sum highest. The best sentence alone when it is longer
    than ``max_chars``."""
    if not len(parts):
        return []
    matrix = np.atleast_2d(np.asarray(scores, dtype=np.float32))
    overall = matrix.max(axis=0)
    best_value, best_span = None, (int(np.argmax(overall)), int(np.argmax(overall)) + 1)
    for start in range(len(parts)):
        size, end = 0, start
        while end < len(parts) and (end == start or size + len(parts[end]) + 1 <= max_chars):
            size += len(parts[end]) + 1
            end += 1
        if len(matrix) > 1:
            value = float(matrix[:, start:end].max(axis=1).sum())
        else:
            top = sorted((float(x) for x in overall[start:end]), reverse=True)[:2]
            value = top[0] + (top[1] if len(top) > 1 else top[0]) * 0.5
        if best_value is None or value > best_value + 1e-9:
            best_value, best_span = value, (start, end)
    quote = list(parts[best_span[0]:best_span[1]])
    if len(quote) == 1 and len(quote[0]) > max_chars:
        quote = [quote[0][:max_chars].rsplit(" ", 1)[0] + " …"]
    return quote


def best_fields(fields: Sequence[str], scores: Any, max_chars: int,
                most: int = 3, margin: float = 0.25) -> List[str]:
    """A catalogue row: its fields closest to the question, in row order. ``scores`` has a
    row per thing asked ("what sizes … and do they work with my phone?"): the best field of
    each is taken first, then fields within ``margin`` of the best overall, up to ``most``."""
    matrix = np.atleast_2d(np.asarray(scores, dtype=np.float32))
    overall = matrix.max(axis=0)
    firsts = list(dict.fromkeys(int(np.argmax(row)) for row in matrix))
    firsts.sort(key=lambda i: -overall[i])
    order = firsts + [int(i) for i in np.argsort(-overall) if int(i) not in firsts]
    chosen: List[int] = []
    size = 0
    for i in order[:max(most, len(firsts))]:
        if chosen and (size + len(fields[i]) > max_chars
                       or (i not in firsts and overall[i] < overall[order[0]] - margin)):
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
                      consider: int = 1, template: str = 'From {source}: "{quote}" [{n}]',
                      field_cues: Optional[Dict[str, List[str]]] = None) -> Tuple[str, int]:
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
    asks = question_parts(question)
    flat = [part for _, _, parts in candidates for part in parts]
    flat_scores = score_matrix(asks, flat, embed_query, embed_documents)
    best: Optional[Tuple[float, int, Any, List[str], Any]] = None
    offset = 0
    for number, passage, parts in candidates:
        scores = flat_scores[:, offset:offset + len(parts)]
        offset += len(parts)
        value = float(np.max(scores)) + PASSAGE_WEIGHT * passage.score
        if best is None or value > best[0]:
            best = (value, number, passage, parts, scores)
    assert best is not None  # candidates is not empty
    _, number, passage, parts, scores = best
    if passage.metadata.get("format") == "csv":
        # In a catalogue row the product is already known: score its fields against what
        # is asked about it ("how much are the Calvin Klein boots" → "how much are the").
        # "the faux leather moto jacket, does it run small?": the part that only describes
        # the product found the row; what is asked about it is in the parts that ask.
        asking = [a for a in asks if _ASKS.search(a)] or asks
        asked = [_without_title(a, passage.title) for a in asking]
        field_scores = score_matrix(asked, parts, embed_query, embed_documents)
        field_scores = field_scores + CUE_BONUS * np.asarray(
            [[_cued(a, part, field_cues or {}) for part in parts] for a in asking],
            dtype=np.float32)
        text = "; ".join(best_fields(parts, field_scores, max_chars))
    else:
        text = " ".join(best_window(parts, scores, max_chars))
    return template.format(source=passage_label(passage), quote=text, n=number), number
