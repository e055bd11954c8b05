"""FAISS at scale: which index type for 100,000 chunks, and how fast ingestion is (actions env).

    python -m benchmarks.faiss_scale [--chunks 100000] [--sample 1500] [--types flat hnsw ivf]
                                     [--queries 300] [--k 5] [--threads N] [--out FILE]

1. Ingestion rate. ``--sample`` synthetic catalogue rows and policy pages (templated text,
   seeded) are written to a temporary folder and ingested with the real pipeline
   (``knowledge.ingest.Ingestor``: load, split, embed with the bundled MiniLM on the CPU,
   build, sign, save). Reported: chunks per second end to end and for embedding alone.
2. A 100,000-chunk index. Embedding 100,000 chunks on a 2-core CPU takes over an hour, so
   the vectors are synthesised from the real MiniLM vectors of step 1: each is a random
   mix of two real chunk vectors plus Gaussian noise, L2-normalised. That keeps the
   clustered geometry of real embeddings (which is what HNSW and IVF recall depend on;
   uniform random vectors would be a misleading worst case). ``--embed-all`` embeds all
   ``--chunks`` texts for real instead.
3. Search. Queries are the real question embeddings of benchmarks/rag_eval/questions.jsonl
   plus noisy variants, one query per call (how the assistant searches). For each index
   type: build seconds, size, p50/p95 latency of ``index.search`` and of the full
   langchain ``FAISS.similarity_search_with_score_by_vector`` call the retriever makes
   (docstore lookups included), and recall@k against the exact flat index.

Prints a table and writes JSON (default benchmarks/results/faiss_scale.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.report import log, publish  # noqa: E402
from knowledge.config import KnowledgeConfig  # noqa: E402
from knowledge.embeddings import get_embeddings  # noqa: E402
from knowledge.index_store import (  # noqa: E402
    all_vectors,
    build_faiss_index,
    load_index,
    resolve_key,
)
from knowledge.ingest import Ingestor  # noqa: E402

QUESTIONS = ROOT / "benchmarks" / "rag_eval" / "questions.jsonl"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "faiss_scale.json"

ADJECTIVES = ["Alpine", "Harbour", "Coastal", "Urban", "Classic", "Summit", "Meadow", "Granite",
              "Cedar", "Northern", "Everyday", "Heritage", "Trail", "City", "Prairie", "Canyon"]
MATERIALS = ["wool", "cotton", "linen", "nubuck", "suede", "denim", "merino", "cashmere",
             "nylon", "fleece", "leather", "canvas", "recycled polyester", "down"]
CATEGORIES = ["boots", "jacket", "jeans", "shirt", "sweater", "parka", "hoodie", "scarf",
              "gloves", "belt", "socks", "cardigan", "trench coat", "chinos", "beanie"]
CARE = ["Machine wash cold, line dry.", "Hand wash cold and dry flat.", "Dry clean only.",
        "Wipe clean with a damp cloth.", "Brush when dry; use a protector spray.",
        "Tumble dry low to restore the loft."]
TOPICS = ["returns", "refunds", "exchanges", "shipping", "warranty", "gift cards", "promo codes",
          "membership", "store pickup", "account security", "price adjustments", "repairs"]


def synthetic_corpus(folder: Path, rows: int, pages: int, seed: int) -> None:
    """A catalogue CSV of ``rows`` products and ``pages`` Markdown policy pages."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["product_id,name,category,price,sizes,materials,care,stock,description"]
    for i in range(rows):
        name = (f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS).title()} "
                f"{rng.choice(CATEGORIES).title()}")
        category = name.split()[-1].lower()
        price = f"{rng.randint(15, 400)}.{rng.choice(['00', '50', '99'])}"
        description = (f"A {rng.choice(['relaxed', 'slim', 'regular', 'tailored'])} {category} in "
                       f"{rng.choice(MATERIALS)} that is warm to about {rng.randint(-25, 10)}°C, "
                       f"with {rng.randint(2, 6)} pockets and a {rng.randint(1, 3)}-year warranty. "
                       f"Runs {rng.choice(['true to size', 'half a size small', 'large'])}.")
        lines.append(f'SYN-{i:06d},{name},{category},{price},"S, M, L, XL",'
                     f'{rng.choice(MATERIALS)},"{rng.choice(CARE)}",{rng.randint(0, 90)},'
                     f'"{description}"')
    (folder / "catalogue.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for p in range(pages):
        topic = rng.choice(TOPICS)
        sections = []
        for s in range(rng.randint(3, 6)):
            sentences = [
                f"{topic.capitalize()} requests are handled within {rng.randint(1, 14)} "
                f"business days of the request.",
                f"Customers in region {rng.randint(1, 99)} pay ${rng.randint(2, 40)}.99 for "
                f"this service, and Gold members pay nothing.",
                f"Items must be unworn and returned within {rng.choice([14, 30, 45, 60])} days "
                f"with the tags attached.",
                f"Contact the team at desk {rng.randint(100, 999)} if the order number starts "
                f"with ORD-{rng.randint(10000, 99999)}.",
            ]
            rng.shuffle(sentences)
            sections.append(f"## Section {s + 1}: {topic} rule {rng.randint(1, 500)}\n\n"
                            + " ".join(sentences) + "\n")
        (folder / f"policy-{p:04d}.md").write_text(
            f"# {topic.title()} policy {p}\nURL: https://shop.example/help/{p}\n\n"
            + "\n".join(sections), encoding="utf-8")


def synthesise(base: np.ndarray, count: int, seed: int, noise: float = 0.015) -> np.ndarray:
    """``count`` vectors near the manifold of ``base``: mixes of two rows plus noise
    (``noise`` per dimension: about 0.3 in norm for 384 dimensions, against unit vectors)."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, base.shape[1]), dtype=np.float32)
    for start in range(0, count, 20_000):
        n = min(20_000, count - start)
        a = base[rng.integers(0, len(base), n)]
        b = base[rng.integers(0, len(base), n)]
        w = rng.uniform(0.55, 1.0, (n, 1)).astype(np.float32)
        mix = w * a + (1 - w) * b + rng.normal(0, noise, (n, base.shape[1])).astype(np.float32)
        out[start:start + n] = mix / np.linalg.norm(mix, axis=1, keepdims=True)
    return out


def queries(embeddings: Any, count: int, seed: int) -> np.ndarray:
    texts = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines()
             if line.strip()]
    real = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    rng = np.random.default_rng(seed)
    extra = real[rng.integers(0, len(real), max(0, count - len(real)))]
    extra = extra + rng.normal(0, 0.015, extra.shape).astype(np.float32)
    both = np.vstack([real, extra])[:count]
    return both / np.linalg.norm(both, axis=1, keepdims=True)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if len(values) else 0.0


def time_search(search: Any, qs: np.ndarray, warmup: int = 20) -> List[float]:
    for q in qs[:warmup]:
        search(q)
    times = []
    for q in qs:
        started = time.perf_counter()
        search(q)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=1500,
                        help="catalogue rows embedded for real (plus sample/15 policy pages)")
    parser.add_argument("--types", nargs="+", default=["flat", "hnsw", "ivf"])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[32, 64, 128, 256],
                        help="HNSW efSearch values to measure")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64],
                        help="IVF nprobe values to measure")
    parser.add_argument("--threads", type=int, help="torch and FAISS (OpenMP) threads")
    parser.add_argument("--embed-all", action="store_true",
                        help="embed all --chunks synthetic texts for real (slow)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    import faiss

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    load0 = os.getloadavg()
    result: Dict[str, Any] = {"chunks": args.chunks, "k": args.k, "threads": args.threads,
                              "faiss": faiss.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        config = KnowledgeConfig.load(overrides={
            "index": {"path": str(tmp_path / "index"), "key_file": str(tmp_path / "key"),
                      "type": "flat"},
            **({"torch_threads": args.threads} if args.threads else {})})
        embeddings = get_embeddings(config.embeddings, config.torch_threads)
        embeddings.embed_documents(["warm-up"])

        # 1. ingestion rate, real pipeline
        pages = max(1, args.sample // 15)
        log(f"[1/3] ingesting {args.sample} synthetic catalogue rows and {pages} policy pages")
        synthetic_corpus(tmp_path / "corpus", args.sample, pages, args.seed)
        report = Ingestor(config, embeddings=embeddings, progress=True).run([tmp_path / "corpus"])
        log(report.summary())
        result["ingestion"] = {
            "files": len(report.files), "documents": report.documents, "chunks": report.chunks,
            "seconds": round(report.seconds, 2), "embed_seconds": round(report.embed_seconds, 2),
            "chunks_per_s": round(report.chunks / report.seconds, 1),
            "embed_chunks_per_s": round(report.chunks / report.embed_seconds, 1),
            "device": config.embeddings.device, "encoder": config.embeddings.model,
        }
        stored = load_index(config.index_path, resolve_key(config.index))
        base = all_vectors(stored.index)

        # 2. the large vector set
        if args.embed_all:
            log(f"[2/3] embedding {args.chunks} chunks for real")
            texts = [stored.chunks[i % len(stored.chunks)]["text"] + f" #{i}"
                     for i in range(args.chunks)]
            vectors = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
            result["vectors"] = "embedded"
        else:
            log(f"[2/3] synthesising {args.chunks} vectors from {len(base)} real MiniLM vectors")
            vectors = synthesise(base, args.chunks, args.seed)
            result["vectors"] = f"synthesised from {len(base)} real MiniLM chunk vectors"
        qs = queries(embeddings, args.queries, args.seed)

    # 3. search per index type
    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy
    from langchain_core.documents import Document

    docstore = InMemoryDocstore({str(i): Document(page_content=f"chunk {i}", metadata={"n": i})
                                 for i in range(len(vectors))})
    ids = {i: str(i) for i in range(len(vectors))}
    settings = KnowledgeConfig().index
    exact: Optional[np.ndarray] = None
    exact_scores: Optional[np.ndarray] = None
    rows = []
    for kind in args.types:
        log(f"[3/3] {kind}: building over {len(vectors)} vectors")
        started = time.perf_counter()
        index = build_faiss_index(vectors, kind, settings)
        build_s = time.perf_counter() - started
        size_mb = len(faiss.serialize_index(index)) / 1e6
        log(f"      built in {build_s:.1f} s")
        store = FAISS(embedding_function=embeddings, index=index, docstore=docstore,
                      index_to_docstore_id=ids,
                      distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)
        knobs: List[Optional[int]] = [None]
        if kind == "hnsw":
            knobs = list(args.ef_search)
        elif kind == "ivf":
            knobs = list(args.nprobe)
        for knob in knobs:
            if kind == "hnsw":
                index.hnsw.efSearch = knob
            elif kind == "ivf":
                index.nprobe = knob
            raw = time_search(lambda q, index=index: index.search(q[None, :], args.k), qs)
            wrapped = time_search(
                lambda q, store=store: store.similarity_search_with_score_by_vector(
                    q.tolist(), k=args.k), qs)
            scores, found = index.search(qs, args.k)
            if kind == "flat":
                exact, exact_scores = found, scores
            recall = near = None
            if exact is not None and exact_scores is not None:
                recall = float(np.mean([len(set(a) & set(b)) / args.k
                                        for a, b in zip(found, exact)]))
                # Share of returned chunks at least as similar as the exact k-th one (minus
                # 0.01): near-ties count as found, as they would for the assistant.
                near = float(np.mean(scores >= exact_scores[:, -1:] - 0.01))
            label = kind + (f" efSearch={knob}" if kind == "hnsw" else
                            f" nprobe={knob}" if kind == "ivf" else "")
            row = {"type": kind, "label": label, "param": knob, "build_s": round(build_s, 2),
                   "size_mb": round(size_mb, 1),
                   "search_ms_p50": round(percentile(raw, 50), 3),
                   "search_ms_p95": round(percentile(raw, 95), 3),
                   "langchain_ms_p50": round(percentile(wrapped, 50), 3),
                   "langchain_ms_p95": round(percentile(wrapped, 95), 3),
                   f"recall_at_{args.k}_vs_flat": None if recall is None else round(recall, 4),
                   "near_recall": None if near is None else round(near, 4)}
            if kind == "hnsw":
                row["M"] = settings.hnsw_m
            if kind == "ivf":
                row["nlist"] = int(index.nlist)
            rows.append(row)
            log(f"      {label}: p50 {row['search_ms_p50']} ms, p95 {row['search_ms_p95']} ms, "
                f"recall {row[f'recall_at_{args.k}_vs_flat']}")
        del store, index
    result["search"] = rows
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                         "loadavg_start": load0, "loadavg_end": os.getloadavg()}
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    ing = result["ingestion"]
    lines = [
        f"ingestion (real pipeline, bundled MiniLM on the CPU, {args.threads or 'default'} "
        f"threads): {ing['chunks']} chunks from {ing['files']} files in {ing['seconds']} s = "
        f"{ing['chunks_per_s']} chunks/s end to end, {ing['embed_chunks_per_s']} chunks/s "
        "embedding alone",
        f"search: {len(vectors)} vectors ({result['vectors']}), {len(qs)} single queries, "
        f"k={args.k}",
        "",
        f"| index | build s | size MB | FAISS p50 / p95 ms | langchain call p50 / p95 ms | "
        f"recall@{args.k} vs flat | near-tie recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['label']} | {row['build_s']} | {row['size_mb']} | "
                     f"{row['search_ms_p50']} / {row['search_ms_p95']} | "
                     f"{row['langchain_ms_p50']} / {row['langchain_ms_p95']} | "
                     f"{row[f'recall_at_{args.k}_vs_flat']} | {row['near_recall']} |")
    publish(result, "\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
