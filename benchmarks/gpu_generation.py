"""Generation speed of the in-process transformers backend (knowledge.generate), actions env.

    python -m benchmarks.gpu_generation [--model bundled:SmolLM2-135M-Instruct | PATH | HUB_ID]
        [--device auto|cuda|cuda:N|cpu] [--dtype auto|bfloat16|float16|float32]
        [--max-new-tokens 128] [--concurrency 8] [--repeats 3] [--out FILE]

Loads the model exactly as the action server does (``TransformersGenerator``: on the GPU
in bfloat16 with ``device_map="auto"`` when one is visible, else on the CPU in float32)
and sends it real assistant prompts (the prompt template of knowledge/ with three
passages from data/knowledge and a customer question; about 500 tokens with SmolLM2's
tokenizer). Every measured generation is forced to ``--max-new-tokens`` tokens
(``min_new_tokens``) so the runs are comparable. Reports, median over ``--repeats``:

  time to first token     one request, streamed (``TextIteratorStreamer``): call → first text
  single-stream tokens/s  one request: new tokens / wall time (prefill included), and the
                          decode rate (tokens after the first / time after the first)
  aggregate tokens/s      ``--concurrency`` requests at once, in two ways:
                          batched: one batched ``generate`` call (what the in-process
                          backend can do for concurrent requests);
                          threads: that many threads calling ``generate``, serialised by
                          the backend's per-process lock (what the action server does
                          today; for real concurrency use the OpenAI-compatible backend)

The figures are for whatever device the model runs on, and the JSON (default
benchmarks/results/gpu_generation.json) records which. On a machine without a GPU the
script still runs on the CPU and says so: those are CPU figures, not GPU figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.report import log, publish  # noqa: E402
from knowledge.config import KnowledgeConfig  # noqa: E402
from knowledge.generate import TransformersGenerator  # noqa: E402
from knowledge.prompt import PromptBuilder  # noqa: E402
from knowledge.retrieve import Passage  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gpu_generation.json"

PASSAGES = [
    ("Returns Policy", "The return window", "https://shop.threadline.example/help/returns",
     "You can return items within 30 days of delivery. The 30 days start on the delivery date "
     "shown in the carrier's tracking, and the return has to be started (you have a return "
     "number) within those 30 days. The window is the same for every membership level: Guest, "
     "Bronze, Silver and Gold."),
    ("Refunds Policy", "How long refunds take", "https://shop.threadline.example/help/refunds",
     "We issue the refund as soon as the returned item is received at our warehouse and "
     "checked, usually within 2 business days of delivery to us. It then takes 5-7 business "
     "days to show up on a credit or debit card, 3-5 business days for PayPal."),
    ("Hiking Boots", "", "https://shop.threadline.example/p/TL-HIKE-01",
     "Price: 139.99\nSizes: US 6-13, whole and half sizes; regular and wide widths\n"
     "Materials: Waterproof nubuck leather and mesh upper, breathable membrane, rubber lug "
     "outsole\nWarranty: 2-year warranty on sole bonding and seams"),
]
QUESTIONS = [
    "How long do I have to return my hiking boots?",
    "When will I see my refund on my card?",
    "Do the hiking boots come in wide sizes?",
    "How much are the hiking boots?",
    "What is the warranty on the hiking boots?",
    "I paid with PayPal, how long until I get my money back?",
    "Is the return window different for Gold members?",
    "Are the hiking boots waterproof?",
]


def prompts(config: KnowledgeConfig, count: int) -> List[List[Dict[str, str]]]:
    builder = PromptBuilder(config.prompt)
    passages = [Passage(f"{t} — {s}\n{body}" if s else f"{t}\n{body}",
                        {"title": t, "section": s, "url": u,
                         "heading": f"{t} — {s}" if s else t}, 0.8)
                for t, s, u, body in PASSAGES]
    return [builder.build(QUESTIONS[i % len(QUESTIONS)], passages).messages
            for i in range(count)]


def time_to_first_token(generator: TransformersGenerator, messages: Any, tokens: int) -> float:
    started = time.perf_counter()
    first: Optional[float] = None
    for piece in generator.stream(messages, max_new_tokens=tokens, min_new_tokens=tokens):
        if first is None and piece:
            first = time.perf_counter() - started
    return first if first is not None else time.perf_counter() - started


def run(args: argparse.Namespace) -> Dict[str, Any]:
    config = KnowledgeConfig.load(args.config, overrides={"generation": {
        "backend": "transformers", "max_new_tokens": args.max_new_tokens, "timeout_s": 3600,
        "transformers": {"model": args.model, "device": args.device, "dtype": args.dtype}}})
    generator = TransformersGenerator(config.generation, config.model_cache_dir,
                                      args.threads_cpu or config.torch_threads)
    log(f"loading {args.model} (device {args.device}, dtype {args.dtype})")
    generator.load()
    import torch

    device = str(getattr(generator.model, "device", generator.device))
    on_gpu = device.startswith("cuda")
    info: Dict[str, Any] = {
        "model": args.model, "device": device, "dtype": str(generator.model.dtype),
        "load_s": round(generator.load_seconds, 2),
        "parameters": sum(p.numel() for p in generator.model.parameters()),
        "gpu": torch.cuda.get_device_name(0) if on_gpu else None,
        "torch_threads": torch.get_num_threads(),
    }
    if not on_gpu:
        log("no GPU in use: these are CPU figures, not GPU figures")
    tokens = args.max_new_tokens
    batch = prompts(config, max(args.concurrency, 1))
    prompt_tokens = [len(generator._encode([m])["input_ids"][0]) for m in batch]
    info["prompt_tokens_mean"] = round(statistics.mean(prompt_tokens), 1)

    log("warm-up")
    generator.generate(batch[0], max_new_tokens=min(8, tokens))

    ttft, single, decode = [], [], []
    for repeat in range(args.repeats):
        ttft.append(time_to_first_token(generator, batch[0], tokens))
        started = time.perf_counter()
        result = generator.generate_batch([batch[0]], max_new_tokens=tokens,
                                          min_new_tokens=tokens)[0]
        seconds = time.perf_counter() - started
        single.append(result.completion_tokens / seconds)
        decode.append((result.completion_tokens - 1) / max(1e-9, seconds - ttft[-1]))
        log(f"[single {repeat + 1}/{args.repeats}] first token {ttft[-1] * 1000:.0f} ms, "
            f"{single[-1]:.1f} tokens/s")

    batched, threaded = [], []
    for repeat in range(args.repeats):
        started = time.perf_counter()
        results = generator.generate_batch(batch, max_new_tokens=tokens, min_new_tokens=tokens)
        seconds = time.perf_counter() - started
        batched.append(sum(r.completion_tokens for r in results) / seconds)
        log(f"[{args.concurrency} batched {repeat + 1}/{args.repeats}] "
            f"{batched[-1]:.1f} tokens/s aggregate")
    if args.threads:
        for repeat in range(args.repeats):
            counts: List[int] = []
            lock = threading.Lock()

            def one(messages: Any, lock: threading.Lock = lock,
                    counts: List[int] = counts) -> None:
                result = generator.generate_batch([messages], max_new_tokens=tokens,
                                                  min_new_tokens=tokens)[0]
                with lock:
                    counts.append(result.completion_tokens)

            workers = [threading.Thread(target=one, args=(m,)) for m in batch]
            started = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            threaded.append(sum(counts) / (time.perf_counter() - started))
            log(f"[{args.concurrency} threads {repeat + 1}/{args.repeats}] "
                f"{threaded[-1]:.1f} tokens/s aggregate")

    def median(values: Sequence[float]) -> Optional[float]:
        return round(statistics.median(values), 2) if values else None

    return {
        **info,
        "max_new_tokens": tokens,
        "concurrency": args.concurrency,
        "repeats": args.repeats,
        "time_to_first_token_ms": median([t * 1000 for t in ttft]),
        "single_stream_tokens_per_s": median(single),
        "single_stream_decode_tokens_per_s": median(decode),
        "aggregate_tokens_per_s_batched": median(batched),
        "aggregate_tokens_per_s_threads": median(threaded),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "loadavg": os.getloadavg()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def table(result: Dict[str, Any]) -> str:
    where = result["gpu"] or f"CPU ({result['torch_threads']} threads)"
    return "\n".join([
        f"{result['model']} on {where}, {result['dtype']}, "
        f"{result['parameters'] / 1e6:.1f} M parameters, prompt ≈ {result['prompt_tokens_mean']} "
        f"tokens, {result['max_new_tokens']} new tokens, median of {result['repeats']}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| model load | {result['load_s']} s |",
        f"| time to first token | {result['time_to_first_token_ms']} ms |",
        f"| single stream | {result['single_stream_tokens_per_s']} tokens/s "
        f"(decode {result['single_stream_decode_tokens_per_s']} tokens/s) |",
        f"| {result['concurrency']} concurrent, batched | "
        f"{result['aggregate_tokens_per_s_batched']} tokens/s aggregate |",
        f"| {result['concurrency']} concurrent, threads | "
        f"{result['aggregate_tokens_per_s_threads']} tokens/s aggregate |",
    ])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="bundled:SmolLM2-135M-Instruct")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto",
                        choices=["auto", "bfloat16", "float16", "float32"])
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-threads", dest="threads", action="store_false",
                        help="skip the serialised-threads measurement")
    parser.add_argument("--cpu-threads", dest="threads_cpu", type=int,
                        help="torch CPU threads (default: torch_threads of knowledge.yml)")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    result = run(args)
    publish(result, table(result), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
