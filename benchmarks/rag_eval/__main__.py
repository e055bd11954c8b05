"""Retrieval and answer benchmark of the product knowledge (knowledge/), actions env.

    python -m benchmarks.rag_eval [--questions FILE] [--index DIR] [--ingest PATH ...]
                                  [--backend extractive|transformers|openai] [--answer-limit N]

Each line of the question file is ``{"id", "question", "gold": [...], "answer_contains":
[...], "kind"}``; ``gold`` names documents as the index's ``doc_id`` does (a path relative
to the ingested folder, ``products.csv#<id>`` for a catalogue row); an empty ``gold``
marks a question the knowledge base cannot answer.

Retrieval (every question with a gold label; top ``--k`` chunks, default 10):
  recall@1 / recall@5   share of questions with a gold document among the first 1 / 5 chunks
  full recall@5         share of all gold documents found in the first 5 chunks
  MRR                   mean of 1 / rank of the first gold chunk (0 when not in the top k)
Threshold: share of answerable questions wrongly below ``retrieval.score_threshold`` and
share of unanswerable questions correctly below it (adversarial ones are refused first).
Answers (``--answer-limit`` questions spread evenly over the file, all by default): how
many replies are generated and pass the grounding guard, extractive fallbacks (and why),
"I don't know" replies, refusals, and the share of answerable questions whose reply
contains every ``answer_contains`` string. Time: query embedding, FAISS search, and
generation per reply (p50 / mean). Prints a table; writes JSON (default
benchmarks/results/rag_eval.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.report import log, publish  # noqa: E402
from knowledge.assistant import KnowledgeAssistant  # noqa: E402
from knowledge.config import KnowledgeConfig  # noqa: E402
from knowledge.ingest import Ingestor  # noqa: E402
from knowledge.retrieve import Retriever  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_QUESTIONS = HERE / "questions.jsonl"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "rag_eval.json"


def read_questions(path: Path) -> List[Dict[str, Any]]:
    questions = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                item = json.loads(line)
                item.setdefault("id", f"line{number}")
                item.setdefault("gold", [])
                item.setdefault("answer_contains", [])
                item.setdefault("kind", "answerable" if item["gold"] else "unanswerable")
                questions.append(item)
    return questions


def gold_rank(passages: Sequence[Any], gold: Sequence[str]) -> Optional[int]:
    for rank, passage in enumerate(passages, start=1):
        if passage.doc_id in gold or passage.source in gold:
            return rank
    return None


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[index]


def spread(items: List[Dict[str, Any]], limit: Optional[int]) -> List[Dict[str, Any]]:
    """``limit`` items spread evenly over the list (all when no limit)."""
    if not limit or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def evaluate_retrieval(retriever: Retriever, questions: List[Dict[str, Any]], k: int,
                       mmr: bool) -> Dict[str, Any]:
    rows = []
    for number, item in enumerate(questions, start=1):
        result = retriever.search(item["question"], k=k, mmr=mmr)
        rank = gold_rank(result.passages, item["gold"]) if item["gold"] else None
        found5 = {g for g in item["gold"] if gold_rank(result.passages[:5], [g])}
        rows.append({
            "id": item["id"], "kind": item["kind"], "answerable": bool(item["gold"]),
            "rank": rank, "best_score": round(result.best_score, 4),
            "below_threshold": not result.answerable,
            "gold_found_at_5": len(found5), "gold_total": len(item["gold"]),
            "top": [p.doc_id for p in result.passages[:5]],
            "embed_ms": result.embed_s * 1000, "search_ms": result.search_s * 1000,
        })
        log(f"[retrieval {number}/{len(questions)}] {item['id']} rank={rank} "
            f"best={result.best_score:.3f}")
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"] and r["kind"] != "adversarial"]
    n = max(1, len(answerable))
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "recall_at_1": sum(1 for r in answerable if r["rank"] == 1) / n,
        "recall_at_5": sum(1 for r in answerable if r["rank"] and r["rank"] <= 5) / n,
        "full_recall_at_5": (sum(r["gold_found_at_5"] for r in answerable)
                             / max(1, sum(r["gold_total"] for r in answerable))),
        "mrr": sum(1 / r["rank"] for r in answerable if r["rank"]) / n,
        "k": k,
        "mmr": mmr,
        "threshold": retriever.settings.score_threshold,
        "answerable_below_threshold": sum(r["below_threshold"] for r in answerable) / n,
        "unanswerable_questions": len(unanswerable),
        "unanswerable_below_threshold": (sum(r["below_threshold"] for r in unanswerable)
                                         / max(1, len(unanswerable))),
        "embed_ms_p50": pct([r["embed_ms"] for r in rows], 50),
        "search_ms_p50": pct([r["search_ms"] for r in rows], 50),
        "search_ms_p95": pct([r["search_ms"] for r in rows], 95),
        "rows": rows,
    }


def evaluate_answers(assistant: KnowledgeAssistant, questions: List[Dict[str, Any]]
                     ) -> Dict[str, Any]:
    rows = []
    for number, item in enumerate(questions, start=1):
        started = time.perf_counter()
        answer = assistant.answer(item["question"])
        seconds = time.perf_counter() - started
        expected = item["answer_contains"]
        contains = bool(expected) and all(s.lower() in answer.text.lower() for s in expected)
        rows.append({
            "id": item["id"], "kind": item["kind"], "answerable": bool(item["gold"]),
            "reply_kind": answer.kind, "fallback_reason": answer.fallback_reason,
            "generated": answer.generation is not None,
            "guard_ok": answer.grounding.ok if answer.grounding else None,
            "guard_problems": answer.grounding.problems if answer.grounding else [],
            "contains_expected": contains,
            "text": answer.text,
            "generated_text": answer.generation.text if answer.generation else None,
            "prompt_tokens": answer.generation.prompt_tokens if answer.generation else 0,
            "completion_tokens": answer.generation.completion_tokens if answer.generation else 0,
            "generate_s": answer.timings.get("generate_s", 0.0),
            "seconds": seconds,
        })
        log(f"[answers {number}/{len(questions)}] {item['id']} {answer.kind} "
            f"({seconds:.1f} s){' ' + answer.fallback_reason if answer.fallback_reason else ''}")
    kinds = Counter(r["reply_kind"] for r in rows)
    attempted = [r for r in rows if r["generated"] or r["fallback_reason"].startswith(
        ("timeout", "backend error"))]
    generated = [r for r in rows if r["generated"]]
    answered = [r for r in rows if r["reply_kind"] in ("generated", "extractive")]
    answerable = [r for r in rows if r["answerable"]]
    gen_times = [r["generate_s"] for r in rows if r["generate_s"] > 0]
    tokens = sum(r["completion_tokens"] for r in generated)
    reasons = Counter(r["fallback_reason"].split(":")[0] for r in rows
                      if r["reply_kind"] == "extractive")
    return {
        "replies": len(rows),
        "kinds": dict(kinds),
        "generation_attempts": len(attempted),
        "guard_pass_rate": (sum(1 for r in generated if r["guard_ok"]) / len(generated)
                            if generated else None),
        "extractive_fallback_rate": (kinds.get("extractive", 0) / len(answered)
                                     if answered else None),
        "fallback_reasons": dict(reasons),
        "answer_contains_rate": (sum(r["contains_expected"] for r in answerable)
                                 / len(answerable) if answerable else None),
        "generate_s_p50": pct(gen_times, 50),
        "generate_s_mean": statistics.mean(gen_times) if gen_times else 0.0,
        "tokens_per_s": tokens / sum(r["generate_s"] for r in generated) if generated and
        sum(r["generate_s"] for r in generated) else None,
        "reply_s_p50": pct([r["seconds"] for r in rows], 50),
        "rows": rows,
    }


def table(result: Dict[str, Any]) -> str:
    r, a = result["retrieval"], result.get("answers")
    lines = [
        f"questions: {r['questions']} ({r['answerable']} with gold sources), index "
        f"{result['index']['path']} ({result['index']['chunks']} chunks, "
        f"{result['index']['type']}), k={r['k']}, mmr={r['mmr']}",
        "",
        "| metric | value | target |",
        "|---|---|---|",
        f"| recall@1 | {r['recall_at_1']:.3f} | |",
        f"| recall@5 | {r['recall_at_5']:.3f} | >= 0.90 |",
        f"| full recall@5 (all gold documents) | {r['full_recall_at_5']:.3f} | |",
        f"| MRR@{r['k']} | {r['mrr']:.3f} | >= 0.75 |",
        f"| answerable below threshold {r['threshold']} | "
        f"{r['answerable_below_threshold']:.3f} | |",
        f"| unanswerable below threshold ({r['unanswerable_questions']}) | "
        f"{r['unanswerable_below_threshold']:.3f} | |",
        f"| query embedding p50 | {r['embed_ms_p50']:.1f} ms | |",
        f"| FAISS search p50 / p95 | {r['search_ms_p50']:.3f} / {r['search_ms_p95']:.3f} ms | |",
    ]
    if a:
        def fmt(value: Optional[float]) -> str:
            return "n/a" if value is None else f"{value:.3f}"
        lines += [
            f"| replies ({result['backend']}) | {a['replies']}: {a['kinds']} | |",
            f"| generated replies passing the guard | {fmt(a['guard_pass_rate'])} | |",
            f"| extractive fallback rate (of answers) | {fmt(a['extractive_fallback_rate'])} "
            f"{a['fallback_reasons']} | |",
            f"| replies containing the expected facts | {fmt(a['answer_contains_rate'])} | |",
            f"| generation p50 / mean | {a['generate_s_p50']:.2f} / {a['generate_s_mean']:.2f} s"
            + (f", {a['tokens_per_s']:.1f} tokens/s" if a['tokens_per_s'] else "") + " | |",
            f"| whole reply p50 | {a['reply_s_p50']:.2f} s | |",
        ]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--index", type=Path, help="index folder (default: knowledge.yml)")
    parser.add_argument("--config", type=Path, help="settings file (default: knowledge.yml)")
    parser.add_argument("--ingest", type=Path, nargs="+",
                        help="build/update the index from these paths first")
    parser.add_argument("--k", type=int, default=10, help="chunks retrieved per question")
    parser.add_argument("--mmr", action="store_true", help="maximal marginal relevance")
    parser.add_argument("--backend", choices=["extractive", "transformers", "openai", "none"],
                        help="generation backend for the answers (default: the config's); "
                        "'none' skips the answer phase")
    parser.add_argument("--answer-limit", type=int, default=0,
                        help="answer only this many questions, spread over the file (0: all)")
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--timeout", type=float, help="generation timeout in seconds")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads (default: torch_threads of knowledge.yml)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    overrides: Dict[str, Any] = {}
    generation: Dict[str, Any] = {}
    if args.backend and args.backend != "none":
        generation["backend"] = args.backend
    if args.max_new_tokens:
        generation["max_new_tokens"] = args.max_new_tokens
    if args.timeout:
        generation["timeout_s"] = args.timeout
    if generation:
        overrides["generation"] = generation
    if args.index:
        overrides["index"] = {"path": str(args.index.resolve())}
    if args.threads:
        overrides["torch_threads"] = args.threads
    config = KnowledgeConfig.load(args.config, overrides=overrides)
    started = time.time()
    load0 = os.getloadavg()

    if args.ingest:
        log(f"ingesting {', '.join(map(str, args.ingest))} into {config.index_path}")
        report = Ingestor(config).run(args.ingest)
        log(report.summary())

    questions = read_questions(args.questions)
    log(f"{len(questions)} questions from {args.questions}")
    retriever = Retriever.from_config(config)
    retrieval = evaluate_retrieval(retriever, questions, args.k, args.mmr)
    result: Dict[str, Any] = {
        "questions_file": str(args.questions),
        "index": {"path": str(config.index_path), "chunks": int(retriever.index.ntotal),
                  "type": retriever.stored.manifest.get("index_type"),
                  "encoder": config.embeddings.model},
        "backend": config.generation.backend,
        "retrieval": retrieval,
    }
    if args.backend != "none":
        assistant = KnowledgeAssistant(config, retriever=retriever)
        if config.generation.backend == "transformers":
            log("loading the language model")
            assistant.generator.load()  # type: ignore[union-attr]
            result["model_load_s"] = assistant.generator.load_seconds  # type: ignore[union-attr]
        subset = spread(questions, args.answer_limit)
        result["answers"] = evaluate_answers(assistant, subset)
        result["generation"] = {
            "backend": config.generation.backend,
            "model": (config.generation.transformers.model
                      if config.generation.backend == "transformers"
                      else config.generation.openai.model
                      if config.generation.backend == "openai" else None),
            "max_new_tokens": config.generation.max_new_tokens,
            "timeout_s": config.generation.timeout_s,
        }
    result["machine"] = {
        "platform": platform.platform(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "torch_threads": config.torch_threads,
        "loadavg_start": load0, "loadavg_end": os.getloadavg(),
    }
    result["seconds"] = time.time() - started
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    publish(result, table(result), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
