"""Sentiment benchmark: which analyser reads customer-service messages best?

    python -m benchmarks.sentiment_eval [--eval CSV] [--analysers vader lora-shipped ...]

Scores each analyser on a labelled `text,label` CSV (default: the team-written evaluation
set beside this file, never used for training) and prints accuracy, macro-F1, training
seconds and p50 latency per message; writes benchmarks/results/sentiment_eval.json and a
confusion-matrix PNG per analyser. LoRA analysers are trained here with the same recipe as
the shipped one (`nlu.sentiment_analysers.train_lora`), on:
  lora-shipped   data/sentiment/train.csv (what set-up trains and the product ships)
  lora-tweeteval TweetEval tweets (../shared, research data: benchmark only, never shipped)
  lora-both      both of the above
Each is served as config.yml serves it (`cpu_runtime: onnx-int8`, the default);
`NAME-float32` and `NAME-torch` serve the same trained model (trained once) with
`cpu_runtime` onnx and torch.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sklearn.metrics import accuracy_score, confusion_matrix, f1_score  # noqa: E402

from nlu.sentiment_analysers import (  # noqa: E402
    LABELS, SENTIMENT_LORA, LoRAAnalyser, SentimentAnalyser, VaderAnalyser, read_labelled_csv,
    train_lora,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SHARED = ROOT.parent / "shared" / "benchmarks" / "tweeteval_sentiment"
TRAINING_SETS: Dict[str, List[Path]] = {
    "lora-shipped": [ROOT / "data" / "sentiment" / "train.csv"],
    "lora-tweeteval": [SHARED / "train_from_official_test.csv"],
    "lora-both": [ROOT / "data" / "sentiment" / "train.csv", SHARED / "train_from_official_test.csv"],
}
#: Suffixes of an analyser served with another `cpu_runtime` than the shipped one: the same
#: trained model, its graph run by ONNX Runtime in float32, or run by torch.
RUNTIMES = {"-float32": "onnx", "-torch": "torch"}
ANALYSERS = ["vader", *TRAINING_SETS,
             *(name + suffix for suffix in RUNTIMES for name in TRAINING_SETS)]


def build(name: str, work: Path, epochs: int) -> tuple[SentimentAnalyser, float]:
    """The analyser and the seconds it took to train (0 for VADER; for one served with
    another runtime, the training of the model it serves, done once for all)."""
    if name == "vader":
        return VaderAnalyser(), 0.0
    for suffix, runtime in RUNTIMES.items():
        if name.endswith(suffix):
            trained = name[:-len(suffix)]
            seconds = 0.0 if (work / trained).exists() else build(trained, work, epochs)[1]
            return LoRAAnalyser(work / trained, device="cpu", cpu_runtime=runtime), seconds
    sources = TRAINING_SETS[name]
    combined = work / f"{name}.csv"
    with open(combined, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for source in sources:
            texts, labels = read_labelled_csv(source)
            writer.writerows(zip(texts, labels))
    started = time.perf_counter()
    train_lora(combined, work / name, replace(SENTIMENT_LORA, epochs=epochs))
    return LoRAAnalyser(work / name, device="cpu"), time.perf_counter() - started


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def latency_ms(analyser: SentimentAnalyser, texts: Sequence[str]) -> float:
    """Median wall time of one single-message call (what the Rasa component pays per turn)."""
    for text in texts[:10]:
        analyser.analyse([text])
    timings = []
    for text in texts[:300]:
        started = time.perf_counter()
        analyser.analyse([text])
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def plot_confusion(name: str, matrix, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.2, 3.8))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(3), LABELS)
    axes.set_yticks(range(3), LABELS)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for i in range(3):
        for j in range(3):
            axes.text(j, i, int(matrix[i][j]), ha="center", va="center")
    axes.set_title(name)
    figure.tight_layout()
    path = out / f"sentiment_confusion_{name}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=HERE / "eval.csv", help="labelled text,label CSV")
    parser.add_argument("--analysers", nargs="+", default=["vader", *TRAINING_SETS],
                        choices=ANALYSERS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--epochs", type=int, default=SENTIMENT_LORA.epochs,
                        help="LoRA training epochs (default: the shipped analyser's recipe; "
                             "fewer for the 12k-tweet sets on a busy CPU)")
    args = parser.parse_args(argv)
    texts, gold = read_labelled_csv(args.eval)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="sentiment-eval-") as work:
        for name in args.analysers:
            print(f"[sentiment_eval] {name}: preparing", flush=True)
            analyser, train_seconds = build(name, Path(work), args.epochs)
            predicted = [s.label for s in analyser.analyse(texts)]
            matrix = confusion_matrix(gold, predicted, labels=list(LABELS))
            results.append({
                "analyser": name,
                "accuracy": round(accuracy_score(gold, predicted), 4),
                "macro_f1": round(f1_score(gold, predicted, labels=list(LABELS), average="macro"), 4),
                "train_seconds": round(train_seconds, 1),
                "epochs": args.epochs if name != "vader" else None,
                "p50_ms": round(latency_ms(analyser, texts), 2),
                "confusion_matrix": matrix.tolist(),
                "plot": plot_confusion(name, matrix, args.out).name,
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "threads": torch_threads(),
            })
    # Analysers not run this time keep their earlier figures (same eval file only), so the
    # slow TweetEval ones can be measured separately.
    out_file = args.out / "sentiment_eval.json"
    if out_file.exists():
        earlier = json.loads(out_file.read_text())
        if earlier.get("eval_file") == str(args.eval):
            ran = {r["analyser"] for r in results}
            results = [r for r in earlier["results"] if r["analyser"] not in ran] + results
    print(f"\n{'analyser':<16}{'accuracy':>10}{'macro-F1':>10}{'train s':>10}{'p50 ms':>9}  measured")
    for r in results:
        print(f"{r['analyser']:<16}{r['accuracy']:>10.3f}{r['macro_f1']:>10.3f}"
              f"{r['train_seconds']:>10.0f}{r['p50_ms']:>9.2f}  {r.get('measured_at', '?')}")
    report = {
        "eval_file": str(args.eval), "eval_size": len(texts),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "results": results,
    }
    out_file.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
