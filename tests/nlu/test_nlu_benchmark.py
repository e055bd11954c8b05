"""The NLU benchmark script, end to end on a tiny generated data set, and its data loaders.

The end-to-end test starts three Rasa processes (about 45 s on a quiet 2-core machine; it
took almost 5 minutes while two benchmark trainings shared the cores, hence the timeout).
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

from benchmarks.nlu_benchmark import (
    code_facts,
    load_examples,
    reusable_result,
    settings_fingerprint,
)

ROOT = Path(__file__).resolve().parents[2]

# Four intents x twelve examples: the smallest set a stratified 20% dev split (10 messages,
# every intent present) and both pipelines can train on.
EXAMPLES: Dict[str, List[str]] = {
    "greet": ["hi", "hello there", "good morning", "hey", "hello", "hi there", "good evening",
              "hey there", "howdy", "greetings", "morning!", "hello friend"],
    "goodbye": ["bye", "see you later", "goodbye", "bye bye", "see you", "farewell",
                "talk to you later", "catch you later", "good night", "so long", "cya", "later"],
    "order_status": ["where is my order", "track my package", "has my parcel shipped",
                     "order status please", "where's my delivery", "is my order on its way",
                     "when will my order arrive", "track order", "my package is late",
                     "delivery status", "did you ship my order", "where is my parcel"],
    "cancel_order": ["cancel my order", "I want to cancel", "please cancel it", "stop my order",
                     "cancel the purchase", "cancel order now", "I no longer want my order",
                     "can I cancel", "undo my order", "cancel it please", "revoke my order",
                     "drop my order"],
}


def pairs() -> List[List[str]]:
    return [[text, intent] for intent, texts in EXAMPLES.items() for text in texts]


def write_csv(path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        writer.writerows(pairs())
    return path


def write_yaml(path: Path) -> Path:
    blocks = [
        f"- intent: {intent}\n  examples: |\n" + "".join(f"    - {t}\n" for t in texts)
        for intent, texts in EXAMPLES.items()
    ]
    path.write_text('version: "3.1"\nnlu:\n' + "".join(blocks))
    return path


def test_yaml_csv_and_json_split_formats_load_the_same_examples(tmp_path):
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"train": pairs(), "oos_val": [["weather?", "oos"]]}))
    from_json = load_examples(f"{data}#train")
    from_yaml = load_examples(str(write_yaml(tmp_path / "nlu.yml")))
    from_csv = load_examples(str(write_csv(tmp_path / "train.csv")))
    assert len(from_json) == 48
    assert sorted(from_json.pairs()) == sorted(from_yaml.pairs()) == sorted(from_csv.pairs())
    assert load_examples(f"{data}#oos_val").texts == ["weather?"]


def test_a_result_is_reused_only_for_the_same_data_config_and_classifier_code(tmp_path):
    """Our classifier's defaults live in nlu/, not in the config file: a result measured
    with other nlu/ sources must be retrained, while DIET's (Rasa's code) stays reusable."""
    lora = {"pipeline": [{"name": "WhitespaceTokenizer"},
                         {"name": "nlu.lora_intent_classifier.LoRAIntentClassifier"}]}
    diet = {"pipeline": [{"name": "WhitespaceTokenizer"}, {"name": "DIETClassifier"}]}
    current = code_facts()["nlu_sources_sha256"]
    older = {name: "0" * 16 for name in current}

    def stored(config, sources):
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps({
            "data": {"fingerprint": "data-1"},
            "settings_fingerprint": settings_fingerprint(config),
            "code": {"nlu_sources_sha256": sources},
        }))
        return path

    assert reusable_result(stored(lora, current), "data-1", lora) is not None
    assert reusable_result(stored(lora, older), "data-1", lora) is None
    assert reusable_result(stored(diet, older), "data-1", diet) is not None
    assert reusable_result(stored(lora, current), "data-2", lora) is None
    assert reusable_result(stored(diet, older), "data-1", lora) is None
    assert reusable_result(tmp_path / "missing.json", "data-1", lora) is None


def test_benchmark_runs_both_pipelines_end_to_end(tmp_path):
    results, work = tmp_path / "results", tmp_path / "work"
    command = [
        sys.executable, "-m", "benchmarks.nlu_benchmark",
        "--train", str(write_csv(tmp_path / "tiny.csv")), "--name", "tiny",
        "--pipelines", "lora", "diet", "--epochs-override", "1",
        "--lora-min-steps-override", "4",
        "--results-dir", str(results), "--work-dir", str(work),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "NOT comparable" in run.stdout

    combined = json.loads((results / "tiny.json").read_text())
    assert set(combined["pipelines"]) == {"lora", "diet"}
    assert combined["comparable"] is False and combined["epochs_override"] == 1
    assert combined["data"]["split"]["kind"] == "stratified_dev_split"
    assert (combined["data"]["train_examples"], combined["data"]["test_examples"]) == (38, 10)
    for name, result in combined["pipelines"].items():
        evaluation, training = result["evaluation"], result["training"]
        assert 0.0 <= evaluation["accuracy"] <= 1.0, name
        assert 0.0 <= evaluation["macro_f1"] <= 1.0, name
        assert 0.0 <= evaluation["accuracy_fallback_as_error"] <= evaluation["accuracy"], name
        assert training["train_seconds"] > 0 and training["train_peak_rss_mb"] > 0, name
        assert training["model_archive_mb"] > 0, name
        assert evaluation["parse_latency_p50_ms"] > 0, name
        assert evaluation["parse_latency_p95_ms"] >= evaluation["parse_latency_p50_ms"], name
        assert (results / f"tiny.{name}.json").is_file(), name
    lora = combined["pipelines"]["lora"]["config"]["pipeline"][1]
    assert (lora["epochs"], lora["min_steps"]) == (1, 4)
