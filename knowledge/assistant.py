"""The answer pipeline: question → retrieval → prompt → generation → guard → reply.

``KnowledgeAssistant.answer`` never raises for a customer's question; every path
ends in one of four kinds of ``Answer``:

``generated``   the model's reply, which passed the grounding guard, with citations
``extractive``  the best passage quoted and cited, because the guard rejected the
                reply, the backend was slow, down or failed, or the backend is
                ``extractive`` (``fallback_reason`` says which); or a filled-in
                comparison of a number in the question with a limit in a passage
                (``comparisons``, ``fallback_reason`` "comparison: <rule>")
``unknown``     nothing in the knowledge base clears the score threshold, or the model
                said it does not know: "I don't know that one", with the offer of a colleague
``refusal``     the message (alone, or with the customer's previous turn) tried to
                re-program the assistant or asked for its instructions: an in-role
                reply, no retrieval, no model

The customer-facing words (the "I don't know" reply, the refusals, how a quote and a
comparison are worded) are the ``answers`` settings of knowledge.yml, not constants here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from knowledge.comparisons import applicable, compare
from knowledge.config import KnowledgeConfig
from knowledge.extractive import extractive_answer
from knowledge.generate import (
    Generation,
    GenerationError,
    GenerationTimeout,
    Generator,
    get_generator,
)
from knowledge.grounding import GroundingReport, check
from knowledge.injection import conversation_attack
from knowledge.prompt import PromptBuilder, passage_label
from knowledge.retrieve import Passage, Retrieval, Retriever, contextualise, get_retriever

logger = logging.getLogger(__name__)

_DEFAULT = object()


@dataclass
class Answer:
    """A reply for the customer and how it came about."""

    text: str
    kind: str  # generated | extractive | unknown | refusal
    sources: List[Dict[str, Any]] = field(default_factory=list)
    passages: List[Passage] = field(default_factory=list)
    retrieval: Optional[Retrieval] = None
    grounding: Optional[GroundingReport] = None
    generation: Optional[Generation] = None
    fallback_reason: str = ""
    timings: Dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "text": self.text,
            "kind": self.kind,
            "sources": self.sources,
            "fallback_reason": self.fallback_reason,
            "best_score": round(self.retrieval.best_score, 4) if self.retrieval else None,
            "grounding": (
                {"ok": self.grounding.ok, "problems": self.grounding.problems}
                if self.grounding else None),
            "generated_text": self.generation.text if self.generation else None,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "passages": [
                {"n": i, "score": round(p.score, 4), "source": p.doc_id, "heading": p.heading}
                for i, p in enumerate(self.passages, start=1)
            ],
        }


class KnowledgeAssistant:
    """Retriever, prompt builder, generator and guard for one configuration."""

    def __init__(self, config: Optional[KnowledgeConfig] = None,
                 retriever: Optional[Retriever] = None, generator: Any = _DEFAULT,
                 index_path: Optional[Path] = None) -> None:
        self.config = config or KnowledgeConfig.load()
        self._retriever = retriever
        self._index_path = index_path
        self.generator: Optional[Generator] = (
            get_generator(self.config) if generator is _DEFAULT else generator)
        self.prompts = PromptBuilder(self.config.prompt)

    @property
    def retriever(self) -> Retriever:
        """The retriever given, else the process-wide one for the configured index (loaded and
        verified on first use, reloaded when ``python -m knowledge ingest`` rebuilds it)."""
        if self._retriever is not None:
            return self._retriever
        return get_retriever(self.config, self._index_path)

    # ------------------------------------------------------------------ the pipeline
    def answer(self, question: str, *, product: Optional[str] = None,
               product_from: str = "entity", history: Sequence[Tuple[str, str]] = (),
               k: Optional[int] = None, mmr: Optional[bool] = None) -> Answer:
        """Answer ``question``; ``product`` came from an entity (filter) or the slot (context)."""
        started = time.perf_counter()
        texts = self.config.answers
        question = " ".join(str(question or "").split())
        attack = conversation_attack(question, history)
        if attack:
            refusal = texts.refusal_prompt_leak if attack == "prompt_leak" else \
                texts.refusal_injection
            return Answer(text=refusal, kind="refusal", fallback_reason=attack,
                          timings={"total_s": time.perf_counter() - started})
        if not question:
            return Answer(text=texts.unknown, kind="unknown", fallback_reason="empty question")

        retriever = self.retriever
        compared = self._comparison(question, k)
        if compared is not None:
            return self._done(compared, started)
        query, filter_product = question, product
        if product:
            # "is it waterproof?" about a known product: search for the product too. A product
            # remembered from earlier (the slot) only matters when the question refers back to
            # it; one the NLU found in this message always filters.
            name = retriever.product_name(retriever.resolve_product(product)) or str(product)
            query = contextualise(question, name)
            if product_from != "entity" and query == question:
                filter_product = None
        retrieval = retriever.search(query, product=filter_product, k=k, mmr=mmr)
        timings = {"embed_s": retrieval.embed_s, "search_s": retrieval.search_s,
                   "generate_s": 0.0}
        if not retrieval.answerable:
            return self._done(Answer(text=texts.unknown, kind="unknown", retrieval=retrieval,
                                     fallback_reason="below the score threshold",
                                     timings=timings), started)

        passages = retrieval.passages
        prompt = self.prompts.build(question, passages, history)
        answer = Answer(text="", kind="", passages=list(passages), retrieval=retrieval,
                        timings=timings)
        if self.generator is None:
            return self._done(self._extractive(question, answer, prompt.passages,
                                               "extractive backend"), started)
        gen_started = time.perf_counter()
        try:
            generation = self.generator.generate(
                prompt.messages, timeout_s=self.config.generation.timeout_s)
        except GenerationTimeout as exc:
            timings["generate_s"] = time.perf_counter() - gen_started
            logger.warning("generation timed out: %s", exc)
            return self._done(self._extractive(question, answer, prompt.passages,
                                               f"timeout: {exc}"), started)
        except GenerationError as exc:
            timings["generate_s"] = time.perf_counter() - gen_started
            logger.warning("generation failed: %s", exc)
            return self._done(self._extractive(question, answer, prompt.passages,
                                               f"backend error: {exc}"), started)
        timings["generate_s"] = time.perf_counter() - gen_started
        answer.generation = generation

        seen = [f"{p.heading}\n{body}" for p, body in zip(passages, prompt.passages)]
        report = check(generation.text, seen, system_prompt=prompt.system,
                       product_names=retriever.product_names.values(), question=question,
                       min_support=self.config.grounding.min_support, removed=prompt.removed,
                       extra_product_words=self.config.grounding.product_words)
        answer.grounding = report
        if not self.config.grounding.enabled:  # the injection checks stay on
            report = GroundingReport(ok=not report.injection, problems=report.injection,
                                     citations=report.citations, declined=report.declined,
                                     injection=report.injection)
        if report.ok and report.declined and not report.citations:
            answer.text, answer.kind = texts.unknown, "unknown"
            answer.fallback_reason = "the model said it does not know"
            return self._done(answer, started)
        if not report.ok:
            return self._done(self._extractive(
                question, answer, prompt.passages,
                "grounding: " + "; ".join(report.problems[:3])), started)
        text = generation.text
        cited = sorted({n for n in report.citations if 1 <= n <= len(passages)})
        if not cited:
            cited = [1]
            text = text.rstrip() + " [1]"
        answer.text, answer.kind = text, "generated"
        answer.sources = [dict(passages[n - 1].citation(), n=n) for n in cited]
        return self._done(answer, started)

    def _comparison(self, question: str, k: Optional[int]) -> Optional[Answer]:
        """A filled-in comparison when the question gives a number a rule checks, else None."""
        texts = self.config.answers
        found = applicable(question, texts)
        if found is None:
            return None
        rule, value = found
        retrieval = self.retriever.search(rule.search, k=k)
        bodies = [self.prompts.clean_passage(p)[0] for p in retrieval.passages]
        result = compare(rule, value, bodies, texts)
        if result is None:
            return None
        passage = retrieval.passages[result.passage_number - 1]
        text = texts.comparison.format(answer=result.text, n=1, source=passage_label(passage),
                                       quote=result.quote)
        return Answer(text=text, kind="extractive", sources=[dict(passage.citation(), n=1)],
                      passages=[passage], retrieval=retrieval,
                      fallback_reason=f"comparison: {result.rule}",
                      timings={"embed_s": retrieval.embed_s, "search_s": retrieval.search_s,
                               "generate_s": 0.0})

    def _extractive(self, question: str, answer: Answer, cleaned: Sequence[str],
                    reason: str) -> Answer:
        embeddings = self.retriever.embeddings
        text, number = extractive_answer(
            question, answer.passages, cleaned, self.config.grounding.extractive_max_chars,
            embed_query=embeddings.embed_query, embed_documents=embeddings.embed_documents,
            template=self.config.answers.quote, field_cues=self.config.answers.field_cues)
        answer.text, answer.kind, answer.fallback_reason = text, "extractive", reason
        answer.sources = [dict(answer.passages[number - 1].citation(), n=number)]
        return answer

    @staticmethod
    def _done(answer: Answer, started: float) -> Answer:
        answer.timings["total_s"] = time.perf_counter() - started
        return answer

