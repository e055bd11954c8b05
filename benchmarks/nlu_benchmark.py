"""NLU benchmark: our LoRA intent classifier against Rasa's stock DIET pipeline.

Each pipeline (a Rasa config in `benchmarks/configs/`) is trained with Rasa's own API in a
process of its own (`benchmarks.train_nlu`, timed and memory-measured from here), loaded
with `Agent.load` and asked about every test message through `agent.parse_message`, i.e.
the whole NLU graph a deployed bot runs. Results go to `benchmarks/results/<name>.json`
(all pipelines) and `<name>.<pipeline>.json` (one each, reusable with `--reuse-results`).

    python -m benchmarks.nlu_benchmark --train /work/shared/benchmarks/banking77/train.csv \
        --pipelines lora diet --name banking77
    python -m benchmarks.nlu_benchmark --train DATA.json#train --test DATA.json#val \
        --oos DATA.json#oos_val --pipelines lora --name clinc150

Data formats: Rasa YAML NLU files, CSV with a `text,category` header, and JSON objects of
splits whose items are `[text, intent]` (CLINC150's `data_*.json`), addressed `PATH#split`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import itertools
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "benchmarks" / "configs"
DEFAULT_RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
DEFAULT_WORK_DIR = REPO_ROOT / "benchmarks" / "work"
PIPELINES = ("lora", "diet")
FALLBACK_INTENT = "nlu_fallback"
WARMUP_MESSAGES = 20
LATENCY_MESSAGES = 500
# Components whose `epochs` --epochs-override replaces (smoke runs only).
EPOCH_COMPONENTS = ("DIETClassifier", "nlu.lora_intent_classifier.LoRAIntentClassifier")
LORA_COMPONENT = "nlu.lora_intent_classifier.LoRAIntentClassifier"
# Processes whose presence during a phase means the timings shared the CPU with another
# benchmark run (recorded, not prevented: the DIET and LoRA runs are meant to overlap).
BENCHMARK_MARKERS = ("benchmarks.nlu_benchmark", "benchmarks.train_nlu")


# ---- data -------------------------------------------------------------------------------


@dataclass
class Dataset:
    """Parallel lists of texts and intent labels, in file order."""

    texts: List[str]
    labels: List[str]

    def __len__(self) -> int:
        return len(self.texts)

    def pairs(self) -> List[Tuple[str, str]]:
        """(text, label) pairs: the unit the fingerprint and the format checks compare."""
        return list(zip(self.texts, self.labels))


@dataclass
class BenchmarkData:
    """Train/test/OOS sets plus how they were obtained (recorded in every result)."""

    train: Dataset
    test: Dataset
    oos: Optional[Dataset]
    split: Dict[str, Any]
    sources: Dict[str, Optional[str]] = field(default_factory=dict)


def split_spec(spec: str) -> Tuple[Path, Optional[str]]:
    """Separates `PATH#split` into the file and the split key (None without a `#`).

    Only a `#` after which the remaining path is an existing file counts, so file names
    containing `#` still work.
    """
    if "#" in spec:
        path, _, key = spec.rpartition("#")
        if Path(path).is_file():
            return Path(path), key
    return Path(spec), None


def load_csv(path: Path) -> Dataset:
    """A `text,category` CSV such as BANKING77's; other columns are ignored."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"text", "category"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: CSV needs a 'text,category' header, lacks {missing}")
        rows = [(row["text"].strip(), row["category"].strip()) for row in reader]
    rows = [(text, label) for text, label in rows if text and label]
    return Dataset([t for t, _ in rows], [label for _, label in rows])


def load_split_json(path: Path, key: Optional[str]) -> Dataset:
    """One split (`PATH#key`) of a JSON object of `[text, intent]` lists, e.g. CLINC150."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or key is None or key not in data:
        keys = sorted(data) if isinstance(data, dict) else []
        raise ValueError(f"{path}: address a split as {path}#KEY, KEY one of {keys}")
    rows = [(str(text).strip(), str(label).strip()) for text, label in data[key]]
    return Dataset([t for t, _ in rows], [label for _, label in rows])


def load_rasa_yaml(path: Path) -> Dataset:
    """Intent examples of a Rasa NLU file, read by Rasa itself so the labels match training.

    Retrieval intents (`faq/ask_x`) come out as `faq`, the label classifiers predict.
    """
    from rasa.shared.nlu.training_data.loading import load_data

    examples = load_data(str(path)).intent_examples
    return Dataset([e.get("text") for e in examples], [e.get("intent") for e in examples])


def load_examples(spec: str) -> Dataset:
    """Reads any supported format, chosen by the file suffix (and `#split` for JSON)."""
    path, key = split_spec(spec)
    if not path.is_file():
        raise FileNotFoundError(f"{spec}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return load_csv(path)
    if suffix == ".json":
        return load_split_json(path, key)
    if suffix in (".yml", ".yaml"):
        return load_rasa_yaml(path)
    raise ValueError(f"{spec}: unsupported format (use .yml/.yaml, .csv or .json#split)")


def stratified_dev_split(data: Dataset, fraction: float, seed: int) -> Tuple[Dataset, Dataset]:
    """Carves a dev set out of the training data with every intent in the same proportion.

    Stratifying keeps rare intents in both halves, so per-intent F1 stays defined and the
    LoRA and DIET runs (same seed) see exactly the same examples.
    """
    from sklearn.model_selection import train_test_split

    train_t, test_t, train_l, test_l = train_test_split(
        data.texts, data.labels, test_size=fraction, random_state=seed, stratify=data.labels
    )
    return Dataset(list(train_t), list(train_l)), Dataset(list(test_t), list(test_l))


def load_benchmark_data(args: argparse.Namespace) -> BenchmarkData:
    """Train/test/OOS sets from the command line, with the split recorded."""
    train = load_examples(args.train)
    if args.test:
        test = load_examples(args.test)
        split: Dict[str, Any] = {"kind": "given", "test": args.test}
    else:
        train, test = stratified_dev_split(train, args.dev_fraction, args.seed)
        split = {
            "kind": "stratified_dev_split",
            "dev_fraction": args.dev_fraction,
            "seed": args.seed,
            "method": "sklearn.model_selection.train_test_split(stratify=labels)",
        }
    oos = load_examples(args.oos) if args.oos else None
    unseen = sorted(set(test.labels) - set(train.labels))
    if unseen:
        print(f"WARNING: {len(unseen)} test intents never occur in training: {unseen[:10]}")
    return BenchmarkData(
        train, test, oos, split, {"train": args.train, "test": args.test, "oos": args.oos}
    )


def data_fingerprint(data: BenchmarkData) -> str:
    """Hash of the exact train/test/OOS texts and labels: the key for reusing results."""
    payload = {
        "train": data.train.pairs(),
        "test": data.test.pairs(),
        "oos": data.oos.texts if data.oos else None,
    }
    return hashlib.sha256(json.dumps(payload).encode("utf-8")).hexdigest()


def data_summary(data: BenchmarkData) -> Dict[str, Any]:
    """Sizes and split description that every result file carries."""
    return {
        "sources": data.sources,
        "split": data.split,
        "train_examples": len(data.train),
        "train_unique_examples": len(set(data.train.pairs())),
        "test_examples": len(data.test),
        "oos_examples": len(data.oos) if data.oos else 0,
        "intents_train": len(set(data.train.labels)),
        "intents_test": len(set(data.test.labels)),
        "fingerprint": data_fingerprint(data),
    }


def write_rasa_nlu(data: Dataset, path: Path) -> int:
    """Writes training data as a Rasa YAML NLU file and checks Rasa reads the same back.

    The check guards against texts that Rasa's markup would reinterpret (e.g. `[x](y)` as
    an entity). Rasa drops exact duplicates, so sets are compared; returns their size.
    """
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    messages = [Message(data={"text": t, "intent": label}) for t, label in data.pairs()]
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: a concurrent run of the same name may be reading `path`.
    staging = path.with_name(f".{path.name}.{os.getpid()}.yml")
    RasaYAMLWriter().dump(str(staging), TrainingData(messages))
    expected, read_back = set(data.pairs()), set(load_rasa_yaml(staging).pairs())
    if expected != read_back:
        diff = sorted(expected ^ read_back)[:5]
        raise ValueError(f"{staging}: Rasa reads back different examples, e.g. {diff}")
    os.replace(staging, path)
    return len(read_back)


# ---- pipeline configs -------------------------------------------------------------------


def render_config(
    pipeline: str, args: argparse.Namespace, directory: Path
) -> Tuple[Path, Dict[str, Any]]:
    """Copies `configs/<pipeline>.yml` with this run's thresholds (and smoke epochs) set.

    The rendered file, not the template, is what gets trained and fingerprinted, so a
    result trained with other settings is never reused by mistake.
    """
    from rasa.shared.utils.io import read_yaml_file, write_yaml

    config = read_yaml_file(str(CONFIG_DIR / f"{pipeline}.yml"))
    for component in config["pipeline"]:
        if component["name"] == "FallbackClassifier":
            component["threshold"] = args.fallback_threshold
            component["ambiguity_threshold"] = args.ambiguity_threshold
        if args.epochs_override and component["name"] in EPOCH_COMPONENTS:
            component["epochs"] = args.epochs_override
            if component["name"] == LORA_COMPONENT:
                # min_steps would otherwise raise the epochs again on small data.
                component["min_steps"] = args.lora_min_steps_override
    path = directory / f"{pipeline}.config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_yaml(config, path)
    return path, config


def settings_fingerprint(config: Dict[str, Any]) -> str:
    """Hash of the rendered pipeline config: the second key for reusing results."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode("utf-8")).hexdigest()


# ---- contention and machine facts -------------------------------------------------------


def other_benchmark_processes() -> List[Dict[str, Any]]:
    """Other benchmark runs alive now (not this one or its children): CPU contention."""
    import psutil

    me = psutil.Process()
    mine = {me.pid} | {child.pid for child in me.children(recursive=True)}
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info.get("cmdline") or [])
        if process.info["pid"] not in mine and any(m in cmdline for m in BENCHMARK_MARKERS):
            found.append({"pid": process.info["pid"], "cmdline": cmdline[:300]})
    return found


class PhaseMonitor:
    """Records load, CPU use and concurrent benchmark runs during a timed phase.

    The machine is shared, so every timing carries the evidence of what else was running:
    a background thread samples every `interval` seconds, so a run that starts and ends
    inside the phase is caught too.
    """

    def __init__(self, interval: float = 30.0) -> None:
        import psutil

        self._psutil = psutil
        psutil.cpu_percent(None)  # starts the measurement interval
        self._seen: Dict[int, str] = {}
        self._load_max = 0.0
        self._stop = threading.Event()
        self.record: Dict[str, Any] = {"load_avg_start": list(os.getloadavg())}
        self._sample()
        self._thread = threading.Thread(target=self._loop, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        """One look at the 1-minute load and at the other benchmark processes alive."""
        self._load_max = max(self._load_max, os.getloadavg()[0])
        for process in other_benchmark_processes():
            self._seen.setdefault(process["pid"], process["cmdline"])

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._sample()

    def finish(self) -> Dict[str, Any]:
        """Closes the phase: mean system CPU %, load, and who else was running."""
        self._stop.set()
        self._thread.join()
        self._sample()
        self.record.update({
            "system_cpu_percent_mean": self._psutil.cpu_percent(None),
            "load_avg_end": list(os.getloadavg()),
            "load_avg_1min_max": self._load_max,
            "concurrent_benchmarks": [
                {"pid": pid, "cmdline": cmd} for pid, cmd in sorted(self._seen.items())
            ],
        })
        return self.record


def cpu_model() -> str:
    """The `model name` line of /proc/cpuinfo (platform.processor() is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts() -> Dict[str, Any]:
    """What the timings depend on: cores, threads, CPU, memory, GPU presence."""
    import psutil
    import torch

    return {
        "hostname": platform.node(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cuda_available": torch.cuda.is_available(),
        "python": platform.python_version(),
    }


def versions() -> Dict[str, Optional[str]]:
    """Versions of the libraries whose behaviour the numbers depend on."""
    found: Dict[str, Optional[str]] = {}
    for package in ("rasa", "torch", "transformers", "peft", "tensorflow", "scikit-learn"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def code_facts() -> Dict[str, Any]:
    """Git HEAD plus hashes of the classifier sources: others edit the repo concurrently,
    so HEAD alone does not say which LoRA code was measured."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        head = ""
    sources = {
        str(p.relative_to(REPO_ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted((REPO_ROOT / "nlu").glob("*.py"))
    }
    return {"git_head": head or None, "nlu_sources_sha256": sources}


def now() -> str:
    """UTC timestamp for the result files."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---- training ---------------------------------------------------------------------------


def training_env(model_dir: Path) -> Dict[str, str]:
    """Environment of a training process: Rasa's training cache off, and out of the repo.

    With the cache on, a second run restores featurizers and even trained classifiers
    from `.rasa/cache` and the "training time" measures a cache lookup.
    """
    return {
        **os.environ,
        "RASA_MAX_CACHE_SIZE": "0",
        "RASA_CACHE_DIRECTORY": str(model_dir / "rasa-cache"),
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
    }


def train_in_subprocess(
    config_path: Path, nlu_path: Path, model_dir: Path, model_name: str
) -> Dict[str, Any]:
    """Trains one pipeline in a child process; returns seconds, peak RSS and the archive.

    `os.wait4` hands back the child's own rusage, whose `ru_maxrss` is the kernel's exact
    high-water mark of its resident memory (KiB on Linux), with no sampling gaps.
    """
    report = model_dir / f"{model_name}.train.json"
    report.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "benchmarks.train_nlu",
        "--config", str(config_path), "--nlu", str(nlu_path),
        "--output", str(model_dir), "--model-name", model_name, "--report", str(report),
    ]
    monitor = PhaseMonitor()
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO_ROOT, env=training_env(model_dir))
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0 or not report.is_file():
        raise RuntimeError(f"training failed (exit {child.returncode}): {' '.join(command)}")
    trained = json.loads(report.read_text())
    return {
        "train_seconds": trained["train_nlu_seconds"],
        "train_process_seconds": seconds,
        "train_peak_rss_mb": usage.ru_maxrss / 1024,
        "train_cpu_seconds": usage.ru_utime + usage.ru_stime,
        "model_path": trained["model_path"],
        "model_archive_mb": Path(trained["model_path"]).stat().st_size / 2**20,
        "rasa_training_cache": "disabled (RASA_MAX_CACHE_SIZE=0)",
        "contention": monitor.finish(),
    }


def external_model_mb(config: Dict[str, Any]) -> Optional[float]:
    """Size of the encoder the LoRA archive does not contain but needs at load time.

    The archive holds only adapter and head, so its size alone flatters LoRA; this is the
    rest of the deployment footprint. None for pipelines without such a dependency.
    """
    component = next((c for c in config["pipeline"] if c["name"] == LORA_COMPONENT), None)
    if component is None:
        return None
    from nlu.lora import LoRAConfig, resolve_base_model

    base = component.get("base_model", LoRAConfig().base_model)
    path = Path(resolve_base_model(base))
    if not path.is_dir():
        return None
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


# ---- evaluation -------------------------------------------------------------------------


def top_intent_ignoring_fallback(parsed: Dict[str, Any]) -> Optional[str]:
    """The classifier's own best intent: FallbackClassifier only prepends `nlu_fallback`
    to the ranking, so the first other entry is what the classifier chose."""
    for entry in parsed.get("intent_ranking") or []:
        if entry.get("name") != FALLBACK_INTENT:
            return entry.get("name")
    intent = (parsed.get("intent") or {}).get("name")
    return None if intent == FALLBACK_INTENT else intent


async def parse_timed(
    agent: Any, texts: Sequence[str], description: str
) -> Tuple[List[Dict[str, Any]], List[float]]:
    """Parses every text one at a time, as a bot does, timing each call in milliseconds.

    A text starting with `/` would be read by Rasa as an intent payload; the benchmark
    sets have none, and they are parsed as-is so the number reflects the real graph.
    """
    from tqdm import tqdm

    results, latencies = [], []
    for text in tqdm(texts, desc=description, unit="msg", mininterval=5, file=sys.stdout):
        start = time.perf_counter()
        parsed = await agent.parse_message(text)
        latencies.append((time.perf_counter() - start) * 1000)
        results.append(parsed)
    return results, latencies


async def warm_up(agent: Any, texts: Sequence[str]) -> None:
    """First calls pay for lazy initialisation (graph, thread pools, caches); discard them."""
    for text in itertools.islice(itertools.cycle(texts), WARMUP_MESSAGES):
        await agent.parse_message(text)


def percentile(values: Sequence[float], q: float) -> float:
    """numpy's linear-interpolation percentile, as a plain float."""
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def classification_metrics(
    gold: Sequence[str], parsed: Sequence[Dict[str, Any]]
) -> Dict[str, Any]:
    """Accuracy and macro-F1 of the classifier's top intent, and strict accuracy.

    `accuracy`/`macro_f1` ignore the fallback (the classifier's quality); `accuracy_
    fallback_as_error` is what the bot experiences at the configured threshold. Macro-F1
    averages over the test set's intents, so a stray prediction cannot add a class.
    """
    from sklearn.metrics import accuracy_score, f1_score

    top = [top_intent_ignoring_fallback(p) or "" for p in parsed]
    final = [(p.get("intent") or {}).get("name") or "" for p in parsed]
    labels = sorted(set(gold))
    per_intent = f1_score(gold, top, labels=labels, average=None, zero_division=0)
    confusions = Counter((g, t) for g, t in zip(gold, top) if g != t).most_common(10)
    return {
        "accuracy": float(accuracy_score(gold, top)),
        "macro_f1": float(f1_score(gold, top, labels=labels, average="macro", zero_division=0)),
        "accuracy_fallback_as_error": float(accuracy_score(gold, final)),
        "fallback_rate": sum(f == FALLBACK_INTENT for f in final) / max(len(final), 1),
        "per_intent_f1": {label: round(float(s), 4) for label, s in zip(labels, per_intent)},
        "top_confusions": [{"gold": g, "predicted": t, "count": c} for (g, t), c in confusions],
    }


def latency_metrics(latencies: Sequence[float]) -> Dict[str, Any]:
    """p50/p95 over the first min(500, n) timed calls (after warm-up), mean over all."""
    sample = list(latencies[:LATENCY_MESSAGES])
    return {
        "parse_latency_p50_ms": percentile(sample, 50),
        "parse_latency_p95_ms": percentile(sample, 95),
        "parse_latency_messages": len(sample),
        "parse_latency_mean_all_ms": sum(latencies) / len(latencies),
    }


def oos_metrics(
    parsed_oos: Sequence[Dict[str, Any]], in_scope: Dict[str, Any], threshold: float
) -> Dict[str, Any]:
    """Out-of-scope recall (OOS messages that end as nlu_fallback) at the fallback threshold,
    next to the in-scope accuracy that threshold leaves (the trade-off it sets)."""
    final = [(p.get("intent") or {}).get("name") for p in parsed_oos]
    return {
        "fallback_threshold": threshold,
        "oos_recall": sum(f == FALLBACK_INTENT for f in final) / max(len(final), 1),
        "in_scope_accuracy_at_threshold": in_scope["accuracy_fallback_as_error"],
    }


def save_predictions(
    path: Path, texts: Sequence[str], gold: Sequence[str], parsed: Sequence[Dict[str, Any]]
) -> None:
    """Per-message predictions (JSONL, work dir) for error analysis or paired tests later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for text, label, p in zip(texts, gold, parsed):
            intent = p.get("intent") or {}
            handle.write(json.dumps({
                "text": text, "gold": label, "final": intent.get("name"),
                "confidence": intent.get("confidence"),
                "top_ignoring_fallback": top_intent_ignoring_fallback(p),
            }) + "\n")


def use_rasa_default_logging() -> None:
    """Sets Rasa's default INFO level, as `rasa run` has it.

    Without this, structlog prints a debug line per parsed message, and that printing
    would be timed as part of the parse latency.
    """
    import logging

    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.INFO)
    configure_structlog(logging.INFO)


def evaluate(
    model_path: str, data: BenchmarkData, threshold: float, predictions: Path
) -> Dict[str, Any]:
    """Loads the archive like `rasa run` does and scores it on the test (and OOS) sets."""
    from rasa.core.agent import Agent

    use_rasa_default_logging()
    monitor = PhaseMonitor()
    start = time.perf_counter()
    agent = Agent.load(model_path)
    load_seconds = time.perf_counter() - start

    async def run() -> Tuple[List[Dict[str, Any]], List[float], List[Dict[str, Any]]]:
        await warm_up(agent, data.test.texts)
        parsed, latencies = await parse_timed(agent, data.test.texts, "test")
        parsed_oos: List[Dict[str, Any]] = []
        if data.oos:
            parsed_oos, _ = await parse_timed(agent, data.oos.texts, "oos")
        return parsed, latencies, parsed_oos

    parsed, latencies, parsed_oos = asyncio.run(run())
    save_predictions(predictions, data.test.texts, data.test.labels, parsed)
    metrics = classification_metrics(data.test.labels, parsed)
    result = {**metrics, **latency_metrics(latencies), "model_load_seconds": load_seconds}
    if data.oos:
        result["oos"] = oos_metrics(parsed_oos, metrics, threshold)
    result["contention"] = monitor.finish()
    return result


# ---- one pipeline, with reuse -----------------------------------------------------------


def result_path(results_dir: Path, name: str, pipeline: str) -> Path:
    """Where one pipeline's result lives: the unit `--reuse-results` picks up."""
    return results_dir / f"{name}.{pipeline}.json"


def reusable_result(
    path: Path, data_fp: str, config: Dict[str, Any]
) -> Optional[Dict[str, Any]]:
    """An earlier result for exactly this data, config and code, or None (saying why not).

    A config that names our own components (`nlu.*`) keeps their defaults in code, not in
    the file, so a result is only reused when the `nlu/` sources are the same too.
    """
    if not path.is_file():
        print(f"--reuse-results: no {path}; training.")
        return None
    result = json.loads(path.read_text())
    if result.get("data", {}).get("fingerprint") != data_fp:
        print(f"--reuse-results: {path} was measured on other data; training.")
        return None
    if result.get("settings_fingerprint") != settings_fingerprint(config):
        print(f"--reuse-results: {path} was trained with another config; training.")
        return None
    ours = any(component["name"].startswith("nlu.") for component in config["pipeline"])
    sources = code_facts()["nlu_sources_sha256"]
    if ours and result.get("code", {}).get("nlu_sources_sha256") != sources:
        print(f"--reuse-results: {path} was measured with other nlu/ code; training.")
        return None
    return result


def run_pipeline(
    pipeline: str, data: BenchmarkData, nlu_path: Path, args: argparse.Namespace, work: Path
) -> Dict[str, Any]:
    """Trains, loads and scores one pipeline; returns its self-contained result record."""
    config_path, config = render_config(pipeline, args, work)
    started = now()
    print(f"\n=== {pipeline}: training ({config_path}) ===", flush=True)
    training = train_in_subprocess(config_path, nlu_path, work / "models", pipeline)
    seconds = training["train_seconds"]
    print(f"=== {pipeline}: trained in {seconds:.1f} s; evaluating ===", flush=True)
    evaluation = evaluate(
        training["model_path"], data, args.fallback_threshold,
        work / f"{pipeline}.predictions.jsonl",
    )
    return {
        "pipeline": pipeline,
        "config_template": str(CONFIG_DIR / f"{pipeline}.yml"),
        "config": config,
        "settings_fingerprint": settings_fingerprint(config),
        "epochs_override": args.epochs_override,
        "comparable": not args.epochs_override,
        "data": data_summary(data),
        "training": training,
        "external_model_mb": external_model_mb(config),
        "evaluation": evaluation,
        "measured_started_at": started,
        "measured_at": now(),
        "note": args.note,
        "command": sys.argv,
        "machine": machine_facts(),
        "versions": versions(),
        "code": code_facts(),
    }


def result_for(
    pipeline: str, data: BenchmarkData, nlu_path: Path, args: argparse.Namespace, work: Path
) -> Dict[str, Any]:
    """The pipeline's result: reused from disk when allowed and matching, else measured."""
    path = result_path(args.results_dir, args.name, pipeline)
    if args.reuse_results:
        _, config = render_config(pipeline, args, work)
        old = reusable_result(path, data_fingerprint(data), config)
        if old is not None:
            print(f"--reuse-results: {pipeline} from {path} (measured {old['measured_at']})")
            return {**old, "reused": True, "result_file": str(path)}
    result = run_pipeline(pipeline, data, nlu_path, args, work)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return {**result, "reused": False, "result_file": str(path)}


# ---- report -----------------------------------------------------------------------------

# (label, path into a result, scale, kind): "pct" rows compare LoRA and DIET in points,
# "ratio" rows as LoRA/DIET, "none" rows not at all.
Row = Tuple[str, Tuple[str, ...], float, str]
ROWS: List[Row] = [
    ("accuracy (top intent) %", ("evaluation", "accuracy"), 100, "pct"),
    ("macro-F1 %", ("evaluation", "macro_f1"), 100, "pct"),
    ("accuracy, fallback = error %", ("evaluation", "accuracy_fallback_as_error"), 100, "pct"),
    ("fallback rate %", ("evaluation", "fallback_rate"), 100, "pct"),
    ("OOS recall at threshold %", ("evaluation", "oos", "oos_recall"), 100, "pct"),
    ("in-scope acc. at threshold %",
     ("evaluation", "oos", "in_scope_accuracy_at_threshold"), 100, "pct"),
    ("training s (train_nlu)", ("training", "train_seconds"), 1, "ratio"),
    ("training s (whole process)", ("training", "train_process_seconds"), 1, "ratio"),
    # CPU seconds move less than wall seconds when other work shares the cores.
    ("training CPU s (user+sys)", ("training", "train_cpu_seconds"), 1, "ratio"),
    ("training peak RSS MB", ("training", "train_peak_rss_mb"), 1, "ratio"),
    ("parse latency p50 ms", ("evaluation", "parse_latency_p50_ms"), 1, "ratio"),
    ("parse latency p95 ms", ("evaluation", "parse_latency_p95_ms"), 1, "ratio"),
    ("model archive MB", ("training", "model_archive_mb"), 1, "ratio"),
    ("+ base model outside archive MB", ("external_model_mb",), 1, "none"),
]


def cell(row: Row, result: Dict[str, Any]) -> Optional[float]:
    """A row's value for one pipeline, or None where it does not apply (e.g. no OOS set)."""
    value: Any = result
    for key in row[1]:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return float(value) * row[2]


def comparison(row: Row, results: Dict[str, Dict[str, Any]]) -> str:
    """LoRA vs DIET: points for percentages, a ratio for costs; blank if either is missing."""
    lora, diet = cell(row, results["lora"]), cell(row, results["diet"])
    if lora is None or diet is None or row[3] == "none":
        return ""
    if row[3] == "pct":
        return f"{lora - diet:+.2f} pts"
    return f"{lora / diet:.2f}x" if diet else ""


def provenance(result: Dict[str, Any]) -> str:
    """Whether a column was measured now or reused, and when: reused numbers may come from
    another load situation."""
    state = "reused" if result.get("reused") else "measured"
    return f"{state} {result['measured_at'][:16]}"


def format_table(results: Dict[str, Dict[str, Any]]) -> str:
    """Metric rows x pipeline columns, plus the LoRA-vs-DIET column when both ran."""
    names = list(results)
    compare = {"lora", "diet"} <= set(names)
    lines = [["metric", *names] + (["lora vs diet"] if compare else [])]
    for row in ROWS:
        values = [cell(row, results[n]) for n in names]
        if all(v is None for v in values):
            continue
        shown = ["-" if v is None else f"{v:.2f}" for v in values]
        lines.append([row[0], *shown] + ([comparison(row, results)] if compare else []))
    lines.append(["result", *[provenance(results[n]) for n in names]] + ([""] if compare else []))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = [" | ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(text)


def smoke_banner(args: argparse.Namespace) -> str:
    """The loud warning a shortened-training run must carry wherever it is read."""
    return (
        f"!!! --epochs-override {args.epochs_override}: SMOKE RUN, numbers are NOT "
        f"comparable to the shipped configs !!!"
    )


# ---- command line -----------------------------------------------------------------------


def default_name(train_spec: str) -> str:
    """`<folder>_<file>[_<split>]`: e.g. banking77_train, clinc150_data_train_val_train."""
    path, key = split_spec(train_spec)
    return "_".join(p for p in (path.parent.name, path.stem, key) if p)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    """Command-line options (see the module docstring for examples)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.nlu_benchmark", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--train", required=True, help="training data (yml, csv, json#split)")
    parser.add_argument("--test", help="test data; without it a stratified dev split is used")
    parser.add_argument("--oos", help="out-of-scope messages (labels ignored)")
    parser.add_argument("--pipelines", nargs="+", choices=PIPELINES, default=list(PIPELINES))
    parser.add_argument("--name", help="result name (default: from the train file)")
    parser.add_argument("--dev-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42, help="seed of the dev split")
    parser.add_argument("--fallback-threshold", type=float, default=0.4,
                        help="FallbackClassifier threshold (0.4 as in the demo's config.yml)")
    parser.add_argument("--ambiguity-threshold", type=float, default=0.05,
                        help="FallbackClassifier ambiguity_threshold (0.05 as in config.yml)")
    parser.add_argument("--epochs-override", type=int,
                        help="SMOKE RUNS ONLY: epochs of DIET and LoRA; results not comparable")
    parser.add_argument("--lora-min-steps-override", type=int, default=0,
                        help="LoRA min_steps used together with --epochs-override")
    parser.add_argument("--reuse-results", action="store_true",
                        help="load <name>.<pipeline>.json for the same data and config")
    parser.add_argument("--note", default="", help="free text stored with the results")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    args = parser.parse_args(argv)
    args.name = args.name or default_name(args.train)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Loads the data, runs (or reuses) each pipeline, prints the table, writes the JSON."""
    args = parse_args(argv)
    started = now()
    if args.epochs_override:
        print(smoke_banner(args), flush=True)
    data = load_benchmark_data(args)
    work = args.work_dir / args.name
    nlu_path = work / "train_nlu.yml"
    unique = write_rasa_nlu(data.train, nlu_path)
    print(f"{args.name}: {len(data.train)} train ({unique} unique), {len(data.test)} test, "
          f"{len(data.oos) if data.oos else 0} OOS; split {data.split}", flush=True)
    results = {p: result_for(p, data, nlu_path, args, work) for p in args.pipelines}
    table = format_table(results)
    combined = {
        "name": args.name,
        "started_at": started,
        "finished_at": now(),
        "command": sys.argv,
        "data": data_summary(data),
        "comparable": not args.epochs_override,
        "epochs_override": args.epochs_override,
        "machine": machine_facts(),
        "versions": versions(),
        "reused": {p: r["reused"] for p, r in results.items()},
        "pipelines": results,
        "table": table.splitlines(),
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"{args.name}.json"
    out.write_text(json.dumps(combined, indent=2))
    print(f"\n{args.name} ({data.split['kind']}, {len(data.train)} train / {len(data.test)} test)")
    print(table)
    if args.epochs_override:
        print(smoke_banner(args))
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
