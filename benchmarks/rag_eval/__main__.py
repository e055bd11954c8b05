"""Retrieval and answer benchmark of the product knowledge (knowledge/), actions env.

    python -m benchmarks.rag_eval [--questions FILE ...] [--modes dense hybrid] [--tune [FILE]]
                                  [--index DIR] [--ingest PATH ...] [--threads 1]
                                  [--backend extractive|transformers|openai|none]

Runs every question file (default: the 116 questions of ``questions.jsonl`` and the
customer-phrased ``customer_dev.jsonl`` / ``customer_test.jsonl``) through each mode in
one run and prints them side by side: ``dense`` is the previous retrieval (FAISS alone,
cosine threshold 0.43), ``hybrid`` what knowledge.yml configures (BM25 + FAISS fused).

Each line of a question file is ``{"id", "question", "gold": [...], "answer_contains":
[...], "kind"}``; ``gold`` names documents as the index's ``doc_id`` does (a path relative
to the ingested folder, ``products.csv#<id>`` for a catalogue row); an empty ``gold``
marks a question the knowledge base cannot answer.

Retrieval (every question with a gold label; top ``--k`` chunks, default 10):
  recall@1 / recall@5   share of questions with a gold document among the first 1 / 5 chunks
  MRR                   mean of 1 / rank of the first gold chunk (0 when not in the top k)
  retrieval p50         query embedding + search per question (``--threads 1``: one CPU thread)
Answers (``--backend``, extractive by default): answer correctness (every
``answer_contains`` string in the reply), false "I don't know" (answerable questions
refused), false answers (unanswerable questions answered; adversarial ones are refused
before retrieval). The threshold curve (answerable refused vs unanswerable answered for
every threshold) goes into the JSON, and into a PNG when a Python with matplotlib is
given (``--plot-python``, default ``$CSBOT_RASA_PYTHON``: the Rasa env has it).
``--tune`` searches coverage_weight x threshold on the dev split (never on test) and
reports the best setting for knowledge.yml. Writes JSON (default
benchmarks/results/rag_eval.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
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
DEFAULT_QUESTIONS = [HERE / "questions.jsonl", HERE / "customer_dev.jsonl",
                     HERE / "customer_test.jsonl"]
DEFAULT_TUNE = HERE / "customer_dev.jsonl"
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
        top = result.passages[0] if result.passages else None
        rows.append({
            "id": item["id"], "kind": item["kind"], "answerable": bool(item["gold"]),
            "rank": rank, "best_score": round(result.best_score, 4),
            "confidence": round(result.confidence, 4),
            "top_cosine": round(top.score, 4) if top else -1.0,
            "top_coverage": round(top.lexical, 4) if top else 0.0,
            "below_threshold": not result.answerable,
            "gold_found_at_5": len(found5), "gold_total": len(item["gold"]),
            "top": [p.doc_id for p in result.passages[:5]],
            "embed_ms": result.embed_s * 1000, "search_ms": result.search_s * 1000,
        })
        log(f"[retrieval {number}/{len(questions)}] {item['id']} rank={rank} "
            f"confidence={result.confidence:.3f}")
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = unanswerable_rows(rows)
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
        "retrieval_ms_p50": pct([r["embed_ms"] + r["search_ms"] for r in rows], 50),
        "curve": threshold_curve(rows, retriever.settings.coverage_weight),
        "rows": rows,
    }


def unanswerable_rows(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Questions the knowledge base cannot answer (adversarial ones are refused first)."""
    return [r for r in rows if not r["answerable"] and r["kind"] != "adversarial"]


def threshold_curve(rows: List[Dict[str, Any]], coverage_weight: float
                    ) -> List[Dict[str, float]]:
    """[{threshold, answerable_refused, unanswerable_answered}] for every useful threshold,
    the confidence being cosine + ``coverage_weight`` x coverage of the first passage."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = unanswerable_rows(rows)
    if not answerable or not unanswerable:
        return []
    scores = {r["id"]: r["top_cosine"] + coverage_weight * r["top_coverage"] for r in rows}
    cuts = sorted({round(v, 4) for v in scores.values()} | {-1.0, 3.0})
    return [{"threshold": t,
             "answerable_refused": sum(scores[r["id"]] < t for r in answerable) / len(answerable),
             "unanswerable_answered": (sum(scores[r["id"]] >= t for r in unanswerable)
                                       / len(unanswerable))} for t in cuts]


def tune(rows: List[Dict[str, Any]], weights: Sequence[float]) -> Dict[str, Any]:
    """The coverage weight and threshold with the fewest wrong decisions on ``rows``
    (answerable questions refused plus unanswerable ones answered: every customer counts
    the same); ties go to the lower sum of the two shares."""
    n_answerable = sum(1 for r in rows if r["answerable"])
    n_unanswerable = len(unanswerable_rows(rows))
    best: Optional[Dict[str, Any]] = None
    for weight in weights:
        for point in threshold_curve(rows, weight):
            refused, answered = point["answerable_refused"], point["unanswerable_answered"]
            cost = (round(refused * n_answerable + answered * n_unanswerable), refused + answered)
            if best is None or cost < best["cost"]:
                best = dict(point, coverage_weight=weight, cost=cost)
    if best is None:
        return {}
    best.pop("cost")
    return best


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
        "false_unknown_rate": (sum(r["reply_kind"] == "unknown" for r in answerable)
                               / len(answerable) if answerable else None),
        "unanswerable_answered_rate": (
            sum(r["reply_kind"] in ("generated", "extractive") for r in unanswerable_rows(rows))
            / len(unanswerable_rows(rows)) if unanswerable_rows(rows) else None),
        "generate_s_p50": pct(gen_times, 50),
        "generate_s_mean": statistics.mean(gen_times) if gen_times else 0.0,
        "tokens_per_s": tokens / sum(r["generate_s"] for r in generated) if generated and
        sum(r["generate_s"] for r in generated) else None,
        "reply_s_p50": pct([r["seconds"] for r in rows], 50),
        "rows": rows,
    }


MODES: Dict[str, Dict[str, Any]] = {
    # The previous shipped retrieval: FAISS alone, cosine threshold 0.43.
    "dense": {"hybrid": False, "coverage_weight": 0.0, "score_threshold": 0.43},
    # What knowledge.yml configures (hybrid by default).
    "hybrid": {},
}
METRICS = [  # (label, section, key, format)
    ("recall@1", "retrieval", "recall_at_1", "{:.3f}"),
    ("recall@5", "retrieval", "recall_at_5", "{:.3f}"),
    ("MRR@10", "retrieval", "mrr", "{:.3f}"),
    ("answer correctness (gold fact in reply)", "answers", "answer_contains_rate", "{:.3f}"),
    ('false "I don\'t know" (answerable)', "answers", "false_unknown_rate", "{:.3f}"),
    ("false answers (unanswerable answered)", "answers", "unanswerable_answered_rate",
     "{:.3f}"),
    ("retrieval p50 per question (embedding + search)", "retrieval", "retrieval_ms_p50",
     "{:.1f} ms"),
]


def table(result: Dict[str, Any]) -> str:
    modes = list(result["modes"])
    lines = [f"index {result['index']['path']} ({result['index']['chunks']} chunks, "
             f"{result['index']['type']}), answers by the {result['backend']} backend, "
             f"torch threads {result['machine']['torch_threads']}", ""]
    for name, by_mode in result["sets"].items():
        first = by_mode[modes[0]]["retrieval"]
        lines += [f"{name}: {first['questions']} questions ({first['answerable']} answerable, "
                  f"{first['unanswerable_questions']} unanswerable)", "",
                  "| metric | " + " | ".join(modes) + " |",
                  "|---|" + "---|" * len(modes)]
        for label, section, key, fmt in METRICS:
            cells = []
            for mode in modes:
                value = (by_mode[mode].get(section) or {}).get(key)
                cells.append("n/a" if value is None else fmt.format(value))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    for mode in modes:
        settings = result["modes"][mode]
        lines.append(f"{mode}: hybrid={settings['hybrid']}, coverage_weight="
                     f"{settings['coverage_weight']}, threshold={settings['score_threshold']}")
    if result.get("tuned"):
        tuned = result["tuned"]
        lines.append(f"tuned on {tuned['on']}: coverage_weight={tuned['coverage_weight']}, "
                     f"threshold={tuned['threshold']} (answerable refused "
                     f"{tuned['answerable_refused']:.3f}, unanswerable answered "
                     f"{tuned['unanswerable_answered']:.3f} there)")
    return "\n".join(lines)


def plot(out: Path, python: Optional[str]) -> Optional[Path]:
    """The threshold curves as a PNG, drawn by plot.py with a Python that has matplotlib
    (the Rasa env's: ``$CSBOT_RASA_PYTHON``); None when there is none."""
    if not python:
        log("no Python with matplotlib given (--plot-python or $CSBOT_RASA_PYTHON): no PNG")
        return None
    png = out.with_name(out.stem + "_threshold.png")
    done = subprocess.run([python, str(HERE / "plot.py"), str(out), str(png)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        log(f"plot.py failed: {done.stderr.strip()[-400:]}")
        return None
    return png


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, nargs="+", default=DEFAULT_QUESTIONS)
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=list(MODES))
    parser.add_argument("--index", type=Path, help="index folder (default: knowledge.yml)")
    parser.add_argument("--config", type=Path, help="settings file (default: knowledge.yml)")
    parser.add_argument("--ingest", type=Path, nargs="+",
                        help="build/update the index from these paths first")
    parser.add_argument("--k", type=int, default=10, help="chunks retrieved per question")
    parser.add_argument("--mmr", action="store_true", help="maximal marginal relevance")
    parser.add_argument("--backend", choices=["extractive", "transformers", "openai", "none"],
                        default="extractive", help="generation backend for the answers; "
                        "'none' skips the answer phase")
    parser.add_argument("--answer-limit", type=int, default=0,
                        help="answer only this many questions, spread over the file (0: all)")
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--timeout", type=float, help="generation timeout in seconds")
    parser.add_argument("--threads", type=int,
                        help="torch and FAISS CPU threads (default: torch_threads of "
                        "knowledge.yml)")
    parser.add_argument("--tune", type=Path, nargs="?", const=DEFAULT_TUNE,
                        help="also search coverage_weight x threshold on this question file "
                        "(default: the dev split) and report the best setting")
    parser.add_argument("--plot-python", default=os.environ.get("CSBOT_RASA_PYTHON"),
                        help="a Python with matplotlib for the threshold PNG")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    overrides: Dict[str, Any] = {}
    generation: Dict[str, Any] = {}
    if args.backend != "none":
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
    if config.torch_threads:
        import faiss

        faiss.omp_set_num_threads(config.torch_threads)
    started = time.time()
    load0 = os.getloadavg()

    if args.ingest:
        log(f"ingesting {', '.join(map(str, args.ingest))} into {config.index_path}")
        report = Ingestor(config).run(args.ingest)
        log(report.summary())

    base = Retriever.from_config(config)
    result: Dict[str, Any] = {
        "index": {"path": str(config.index_path), "chunks": int(base.index.ntotal),
                  "type": base.stored.manifest.get("index_type"),
                  "encoder": config.embeddings.model},
        "backend": config.generation.backend,
        "modes": {}, "sets": {},
    }
    args.questions = [q.resolve() for q in args.questions]
    args.tune = args.tune.resolve() if args.tune else None
    files = list(args.questions) + ([args.tune] if args.tune and args.tune not in
                                    args.questions else [])
    for mode in args.modes:
        mode_config = config.with_overrides({"retrieval": MODES[mode]})
        result["modes"][mode] = mode_config.retrieval.model_dump()
        retriever = Retriever(base.stored, base.embeddings, mode_config.retrieval)
        assistant = None
        if args.backend != "none":
            assistant = KnowledgeAssistant(mode_config, retriever=retriever)
            if mode_config.generation.backend == "transformers":
                log("loading the language model")
                assistant.generator.load()  # type: ignore[union-attr]
        for file in files:
            questions = read_questions(file)
            log(f"{mode}: {len(questions)} questions from {file}")
            entry: Dict[str, Any] = {"questions_file": str(file),
                                     "retrieval": evaluate_retrieval(retriever, questions,
                                                                     args.k, args.mmr)}
            if assistant is not None and file in args.questions:
                entry["answers"] = evaluate_answers(assistant, spread(questions,
                                                                      args.answer_limit))
            if args.tune and file == args.tune and mode == "hybrid":
                weights = [round(0.1 * i, 1) for i in range(0, 11)]
                result["tuned"] = dict(tune(entry["retrieval"]["rows"], weights), on=str(file))
            if file in args.questions:
                result["sets"][file.stem] = dict(result["sets"].get(file.stem, {}),
                                                 **{mode: entry})
    result["machine"] = {
        "platform": platform.platform(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "torch_threads": config.torch_threads,
        "loadavg_start": load0, "loadavg_end": os.getloadavg(),
    }
    result["seconds"] = time.time() - started
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    publish(result, table(result), args.out)
    png = plot(args.out, args.plot_python)
    if png:
        log(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
