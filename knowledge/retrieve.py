"""Retrieval: hybrid (dense + BM25) search, the "I don't know" decision, MMR, the product filter.

The verified index (``index_store``) is wrapped in langchain's ``FAISS`` vector
store (built directly from the JSON docstore, never through ``load_local``) and
in BM25 (``lexical``, langchain's ``BM25Retriever`` on ``rank_bm25``). Dense
scores are cosine similarities (normalised vectors, inner-product index).

* ``hybrid`` (default): the ``candidates`` best chunks of each side are fused by
  reciprocal-rank fusion, ``sum(weight / (rrf_k + rank))``; with ``hybrid: false``
  the ranking is the dense one alone. Then ``k`` passages by fused rank, or by
  maximal marginal relevance among the ``fetch_k`` best fused candidates when ``mmr``
  is on (relevance: the fused score; redundancy: cosine similarity between passages).
* the "I don't know" decision: a passage's ``confidence`` is its cosine similarity
  plus ``coverage_weight`` times the share of the question's (idf-weighted) words it
  contains; when the best-ranked passage's confidence is below ``score_threshold``, ``answerable``
  is False and the assistant says it does not know instead of guessing. Both numbers
  are tuned on the dev split of the customer questions (benchmarks/rag_eval).
* ``product``: a product the NLU found (``hiking boots``, or an id such as
  ``TL-HIKE-01``) restricts the search to chunks about that product (its catalogue
  row, its review section, and every chunk that names it, e.g. the size guide's
  wide-fit section). When nothing about the product clears the threshold the
  search is repeated without the filter, so a policy question asked while a
  product is being discussed is still answered.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
from langchain_core.documents import Document

from knowledge.chunking import HEADING_SEPARATOR
from knowledge.config import KnowledgeConfig, RetrievalSettings
from knowledge.embeddings import get_embeddings
from knowledge.index_store import (
    IndexIntegrityError,
    StoredIndex,
    load_index,
    resolve_key,
    tune_for_search,
)
from knowledge.lexical import LexicalIndex, tokenize

#: Words that refer back to something said before ("is it waterproof?").
ANAPHORA = re.compile(r"\b(it|its|it's|they|them|their|this|that|these|those|one|ones)\b",
                      re.IGNORECASE)
#: Exact filtered search (every vector scored) up to this many chunks.
EXACT_FILTER_LIMIT = 20_000


@dataclass
class Passage:
    """One retrieved chunk."""

    text: str
    metadata: Dict[str, Any]
    score: float  # cosine similarity to the question
    lexical: float = 0.0  # share of the question's idf weight the chunk contains
    fused: float = 0.0  # reciprocal-rank fusion score (the ranking)
    confidence: float = 0.0  # what the "I don't know" threshold compares

    @property
    def title(self) -> str:
        return str(self.metadata.get("title") or self.metadata.get("source") or "")

    @property
    def section(self) -> str:
        return str(self.metadata.get("section") or "")

    @property
    def url(self) -> str:
        return str(self.metadata.get("url") or "")

    @property
    def source(self) -> str:
        return str(self.metadata.get("source") or "")

    @property
    def doc_id(self) -> str:
        return str(self.metadata.get("doc_id") or self.source)

    @property
    def heading(self) -> str:
        return str(self.metadata.get("heading") or self.title)

    @property
    def body(self) -> str:
        """The chunk without its heading line."""
        head = self.metadata.get("heading")
        if head and self.text.startswith(head + "\n"):
            return self.text[len(head) + 1:]
        return self.text

    def citation(self) -> Dict[str, Any]:
        """What the widget gets for this source."""
        title = self.title + (HEADING_SEPARATOR + self.section if self.section else "")
        data = {"title": title, "url": self.url, "source": self.doc_id}
        if self.metadata.get("product_id"):
            data["product_id"] = self.metadata["product_id"]
        return data


@dataclass
class Retrieval:
    """The passages for one question and whether they are good enough to answer from."""

    query: str
    passages: List[Passage]
    threshold: float
    product_id: Optional[str] = None
    filtered: bool = False
    embed_s: float = 0.0
    search_s: float = 0.0
    notes: List[str] = field(default_factory=list)

    @property
    def best_score(self) -> float:
        return max((p.score for p in self.passages), default=-1.0)

    @property
    def confidence(self) -> float:
        """The first (best-ranked) passage's confidence."""
        return self.passages[0].confidence if self.passages else -1.0

    @property
    def answerable(self) -> bool:
        return bool(self.passages) and self.confidence >= self.threshold


class Retriever:
    """Search over one verified index with one encoder."""

    def __init__(self, stored: StoredIndex, embeddings: Any, settings: RetrievalSettings) -> None:
        from langchain_community.docstore.in_memory import InMemoryDocstore
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy

        self.settings = settings
        self.embeddings = embeddings
        self.stored = stored
        self.index = stored.index
        docs: Dict[str, Document] = {}
        ids: Dict[int, str] = {}
        self._position: Dict[str, int] = {}
        self.product_names: Dict[str, str] = {}  # id -> name
        for position, record in enumerate(stored.chunks):
            docs[record["id"]] = Document(page_content=record["text"], metadata=record["metadata"])
            ids[position] = record["id"]
            self._position[record["id"]] = position
            meta = record["metadata"]
            if meta.get("catalogue") and meta.get("product_id"):
                self.product_names[str(meta["product_id"])] = str(meta.get("title") or "")
        self.lexical = LexicalIndex.from_json(stored.lexical)
        self.vectorstore = FAISS(
            embedding_function=embeddings, index=self.index, docstore=InMemoryDocstore(docs),
            index_to_docstore_id=ids, distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )
        self._by_name = {name.lower(): pid for pid, name in self.product_names.items() if name}
        self._by_tokens = sorted(((tuple(tokenize(name)), pid) for name, pid in
                                  self._by_name.items() if tokenize(name)),
                                 key=lambda item: -len(item[0]))

    @classmethod
    def from_config(cls, config: KnowledgeConfig, index_path: Optional[Path] = None,
                    embeddings: Any = None) -> "Retriever":
        """Load and verify the configured index (``IndexNotFound``/``IndexIntegrityError``)."""
        path = Path(index_path) if index_path else config.index_path
        stored = load_index(path, resolve_key(config.index))
        built_with = stored.manifest.get("embedding", {}).get("model")
        if built_with and built_with != config.embeddings.model:
            raise IndexIntegrityError(
                f"the index at {path} was built with the encoder {built_with!r} but the settings "
                f"name {config.embeddings.model!r}; rebuild it with `python -m knowledge ingest`")
        tune_for_search(stored.index, config.index)
        return cls(stored, embeddings or get_embeddings(config.embeddings, config.torch_threads),
                   config.retrieval)

    # ------------------------------------------------------------------ products
    def resolve_product(self, product: Optional[str]) -> Optional[str]:
        """The catalogue id for a product entity ("hiking boots", "TL-HIKE-01"), or None."""
        if not product:
            return None
        value = " ".join(str(product).split()).lower()
        if value.upper() in self.product_names:
            return value.upper()
        if value in self._by_name:
            return self._by_name[value]
        singular = {re.sub(r"s\b", "", k): v for k, v in self._by_name.items()}
        key = re.sub(r"s\b", "", value)
        if key in singular:
            return singular[key]
        matches = [pid for name, pid in self._by_name.items() if value in name]
        return matches[0] if len(matches) == 1 else None

    def product_name(self, product_id: Optional[str]) -> str:
        return self.product_names.get(product_id or "", "")

    def names_in(self, text: str) -> List[str]:
        """Catalogue product ids named in ``text`` (longest names first)."""
        found = []
        lowered = f" {text.lower()} "
        for name in sorted(self._by_name, key=len, reverse=True):
            if re.search(r"\b" + re.escape(name) + r"\b", lowered):
                found.append(self._by_name[name])
                lowered = lowered.replace(name, " ")
        return found

    def names_in_words(self, words: List[str]) -> List[str]:
        """Catalogue product ids whose name's words occur in a row in ``words`` (the
        question's tokens after typo correction: "chelsae boots" → Chelsea Boots)."""
        found = []
        for name_words, pid in self._by_tokens:
            size = len(name_words)
            if any(tuple(words[i:i + size]) == name_words for i in range(len(words) - size + 1)):
                found.append(pid)
        return found

    @staticmethod
    def _product_filter(product_id: str) -> Callable[[Dict[str, Any]], bool]:
        def keep(metadata: Dict[str, Any]) -> bool:
            return metadata.get("product_id") == product_id or product_id in (
                metadata.get("products") or [])
        return keep

    # ------------------------------------------------------------------ search
    def expand(self, question: str) -> str:
        """``question`` with the knowledge base's words for the customer's words it uses
        (``retrieval.synonyms``: "subscription" → "membership"), for both rankings."""
        lowered = question.lower()
        extra = [words for said, words in self.settings.synonyms.items()
                 if re.search(rf"\b{re.escape(said.lower())}\b", lowered)
                 and words.lower() not in lowered]
        return f"{question} ({', '.join(extra)})" if extra else question

    def embed(self, text: str) -> np.ndarray:
        return np.asarray(self.embeddings.embed_query(text), dtype=np.float32)

    def search(self, question: str, *, k: Optional[int] = None, product: Optional[str] = None,
               mmr: Optional[bool] = None, threshold: Optional[float] = None) -> Retrieval:
        """The ``k`` best passages for ``question`` (filtered to ``product`` when given)."""
        started = time.perf_counter()
        question = self.expand(question)
        vector = self.embed(question)
        embed_s = time.perf_counter() - started
        result = self.search_by_vector(vector, question, k=k, product=product, mmr=mmr,
                                       threshold=threshold)
        result.embed_s = embed_s
        return result

    def search_by_vector(self, vector: np.ndarray, question: str = "", *, k: Optional[int] = None,
                         product: Optional[str] = None, mmr: Optional[bool] = None,
                         threshold: Optional[float] = None) -> Retrieval:
        settings = self.settings
        k = k or settings.k
        mmr = settings.mmr if mmr is None else mmr
        threshold = settings.score_threshold if threshold is None else threshold
        product_id = self.resolve_product(product) if settings.product_filter else None
        result = Retrieval(query=question, passages=[], threshold=threshold,
                           product_id=product_id)
        if product and settings.product_filter and not product_id:
            result.notes.append(f"product {product!r} is not in the catalogue: no filter")
        words = self.lexical.correct(tokenize(question))
        boost = set(self.names_in(question)) | set(self.names_in_words(words))
        if product_id:
            boost.add(product_id)
        started = time.perf_counter()
        if self.index.ntotal:
            if product_id:
                result.passages = self._search(vector, words, k, mmr,
                                               self._product_filter(product_id), boost)
                result.filtered = True
                if not result.answerable:
                    result.notes.append("nothing about the product cleared the threshold: "
                                        "searched without the filter")
                    result.passages = self._search(vector, words, k, mmr, None, boost)
                    result.filtered = False
            else:
                result.passages = self._search(vector, words, k, mmr, None, boost)
        result.search_s = time.perf_counter() - started
        return result

    def _dense(self, vector: np.ndarray, count: int,
               keep: Optional[Callable[[Dict[str, Any]], bool]], boost: set) -> List[int]:
        """Positions of the ``count`` most similar chunks (product rows boosted), best first."""
        total = int(self.index.ntotal)
        fetch_k = max(self.settings.fetch_k, count)
        if keep is not None:
            fetch_k = total if total <= EXACT_FILTER_LIMIT else max(fetch_k, 50 * count)
        found = self.vectorstore.similarity_search_with_score_by_vector(
            vector.tolist(), k=min(count, total), filter=keep, fetch_k=min(fetch_k, total))
        bonus = self.settings.product_boost if boost else 0.0

        def rank(item: Any) -> float:
            doc, score = item
            own_row = doc.metadata.get("catalogue") and doc.metadata.get("product_id") in boost
            return float(score) + (bonus if own_row else 0.0)

        return [self._position[doc.metadata["id"]] for doc, _ in sorted(found, key=rank,
                                                                         reverse=True)]

    def _lexical(self, words: List[str], count: int,
                 keep: Optional[Callable[[Dict[str, Any]], bool]]) -> List[int]:
        """Positions of the ``count`` best BM25 chunks with a score above zero, best first."""
        scores = self.lexical.scores(words)
        order = np.argsort(-scores, kind="stable")
        chosen: List[int] = []
        for position in order:
            if scores[position] <= 0 or len(chosen) == count:
                break
            if keep is None or keep(self.stored.chunks[int(position)]["metadata"]):
                chosen.append(int(position))
        return chosen

    def _search(self, vector: np.ndarray, words: List[str], k: int, mmr: bool,
                keep: Optional[Callable[[Dict[str, Any]], bool]],
                boost: Optional[set] = None) -> List[Passage]:
        settings = self.settings
        boost = boost or set()
        count = max(settings.candidates, settings.fetch_k if mmr else k)
        dense = self._dense(vector, count, keep, boost)
        fused: Dict[int, float] = {}
        for rank, position in enumerate(dense, start=1):
            fused[position] = settings.dense_weight / (settings.rrf_k + rank)
        if settings.hybrid:
            for rank, position in enumerate(self._lexical(words, count, keep), start=1):
                fused[position] = fused.get(position, 0.0) + (
                    settings.lexical_weight / (settings.rrf_k + rank))
        if settings.hybrid and settings.product_boost and boost:
            # The catalogue row of a product the question names is the authoritative source:
            # it leads the fused ranking whenever either ranking found it.
            for position in fused:
                meta = self.stored.chunks[position]["metadata"]
                if meta.get("catalogue") and meta.get("product_id") in boost:
                    fused[position] += settings.dense_weight + settings.lexical_weight
        order = sorted(fused, key=lambda pos: fused[pos], reverse=True)
        if mmr:
            order = self._mmr(order[:settings.fetch_k], fused, k)
        return [self._passage(p, vector, words, fused[p]) for p in order[:k]]

    def _mmr(self, pool: List[int], fused: Dict[int, float], k: int) -> List[int]:
        """Maximal marginal relevance over ``pool``: relevance is the fused score (scaled to
        the best one), redundancy the cosine similarity to the passages already picked."""
        if not pool:
            return []
        vectors = np.stack([self.index.reconstruct(p) for p in pool])
        top = max(fused[p] for p in pool) or 1.0
        relevance = np.asarray([fused[p] / top for p in pool])
        lam = self.settings.mmr_lambda
        picked: List[int] = []
        while len(picked) < min(k, len(pool)):
            redundancy = (np.max(vectors @ vectors[picked].T, axis=1) if picked
                          else np.zeros(len(pool)))
            value = lam * relevance - (1 - lam) * redundancy
            value[picked] = -np.inf
            picked.append(int(np.argmax(value)))
        return [pool[i] for i in picked]

    def _passage(self, position: int, vector: np.ndarray, words: List[str],
                 fused: float) -> Passage:
        record = self.stored.chunks[position]
        score = float(np.dot(vector, self.index.reconstruct(position)))
        coverage = self.lexical.coverage(words, position)
        return Passage(record["text"], record["metadata"], score, lexical=coverage, fused=fused,
                       confidence=score + self.settings.coverage_weight * coverage)


def contextualise(question: str, product_name: str) -> str:
    """``question`` with the product appended when it only refers to it ("is it waterproof?")."""
    if product_name and ANAPHORA.search(question) and product_name.lower() not in question.lower():
        return f"{question.rstrip()} ({product_name})"
    return question


_cache: Dict[Any, Retriever] = {}
_cache_lock = threading.Lock()


def get_retriever(config: KnowledgeConfig, index_path: Optional[Path] = None) -> Retriever:
    """The process-wide retriever for an index, reloaded when the index is rebuilt."""
    path = Path(index_path) if index_path else config.index_path
    manifest = path / "manifest.sig"
    stamp = manifest.stat().st_mtime_ns if manifest.exists() else None
    key = (str(path), config.embeddings.model, config.retrieval.model_dump_json(),
           config.index.model_dump_json())
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and getattr(cached, "_stamp", None) == stamp:
            return cached
        retriever = Retriever.from_config(config, path)
        retriever._stamp = stamp  # type: ignore[attr-defined]
        _cache[key] = retriever
        return retriever
