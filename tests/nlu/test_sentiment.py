"""The sentiment component and its analysers (VADER, LoRA, any Hugging Face model)."""

import csv
from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message

from nlu.lora import LoRAConfig, resolve_base_model
from nlu.sentiment import SentimentAnalyzer
from nlu.sentiment_analysers import LABELS, read_labelled_csv, train_lora

ROOT = Path(__file__).resolve().parents[2]
AWKWARD = ["", "   ", "🙂🙂", "x" * 10_000, "je suis très déçu", "我很生气", "ok"]


def component(tmp_path: Path, **config) -> SentimentAnalyzer:
    return SentimentAnalyzer.create(
        config, LocalModelStorage(tmp_path), Resource("sentiment"),
        ExecutionContext(GraphSchema({}), "test"),
    )


def scored(analyzer: SentimentAnalyzer, *texts: str):
    messages = analyzer.process([Message(data={"text": t}) for t in texts])
    for message in messages:
        assert "sentiment" in message.as_dict(only_output_properties=True)
    return [m.get("sentiment") for m in messages]


def check_shape(sentiment, model_prefix: str) -> None:
    assert sentiment["label"] in LABELS
    assert -1.0 <= sentiment["score"] <= 1.0
    assert sentiment["model"].startswith(model_prefix)


def test_vader_scores_every_message_including_awkward_ones(tmp_path):
    results = scored(component(tmp_path, analyser="vader"), "Thank you, that was great!",
                     "This is terrible, I am furious", *AWKWARD)
    assert results[0]["label"] == "positive" and results[0]["score"] > 0.5
    assert results[1]["label"] == "negative" and results[1]["score"] < -0.5
    for sentiment in results:
        check_shape(sentiment, "vader")
    assert results[2]["label"] == "neutral"  # empty text: neutral, not an error


@pytest.fixture(scope="module")
def lora_model(tmp_path_factory) -> Path:
    """A LoRA analyser trained briefly on the first 240 rows of the shipped training set."""
    work = tmp_path_factory.mktemp("lora-sentiment")
    texts, labels = read_labelled_csv(ROOT / "data" / "sentiment" / "train.csv")
    subset = work / "train.csv"
    with open(subset, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(list(zip(texts, labels))[:240])
    return train_lora(subset, work / "model", LoRAConfig(min_steps=60, batch_size=16))


def test_lora_analyser_learns_clear_cases(tmp_path, lora_model):
    analyzer = component(tmp_path, analyser="lora", model_path=str(lora_model))
    results = scored(analyzer, "thank you so much, you were brilliant and so helpful!",
                     "this is the worst service ever, I am absolutely furious", *AWKWARD)
    assert results[0]["label"] == "positive" and results[0]["score"] > 0
    assert results[1]["label"] == "negative" and results[1]["score"] < 0
    for sentiment in results:
        check_shape(sentiment, "lora:")


def test_any_hugging_face_classifier_with_a_label_map(tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path / "tiny-hf-sentiment"
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=37, id2label={0: "NEG", 1: "NEU", 2: "POS"},
                        label2id={"NEG": 0, "NEU": 1, "POS": 2})
    BertForSequenceClassification(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(resolve_base_model("bundled:all-MiniLM-L6-v2")).save_pretrained(path)
    label_map = {"NEG": "negative", "NEU": "neutral", "POS": "positive"}
    for sentiment in scored(component(tmp_path, analyser="hf", hf_model=str(path), label_map=label_map),
                            "fine", *AWKWARD):
        check_shape(sentiment, "hf:")
    with pytest.raises(InvalidConfigException, match="label_map"):
        component(tmp_path, analyser="hf", hf_model=str(path), label_map={"NEG": "negative"})


def test_unknown_analyser_and_untrained_lora_fail_with_a_clear_message(tmp_path):
    with pytest.raises(InvalidConfigException, match="'sarcasm-o-meter' is not one of"):
        component(tmp_path, analyser="sarcasm-o-meter")
    with pytest.raises(InvalidConfigException, match="bot train"):
        component(tmp_path, analyser="lora", model_path=str(tmp_path / "missing"))


def test_a_bad_label_in_the_training_csv_names_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,neutral\nawful,angry\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: label 'angry'"):
        read_labelled_csv(bad)


def test_sentiment_benchmark_scores_any_labelled_csv(tmp_path):
    import json

    from benchmarks.sentiment_eval.__main__ import main as sentiment_eval

    data = tmp_path / "mine.csv"
    data.write_text("text,label\nthank you so much!,positive\nthis is awful,negative\n"
                    "where is my order,neutral\nlove it,positive\n")
    assert sentiment_eval(["--eval", str(data), "--analysers", "vader", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "sentiment_eval.json").read_text())
    (vader,) = report["results"]
    assert vader["analyser"] == "vader" and vader["accuracy"] == 1.0
    assert sum(map(sum, vader["confusion_matrix"])) == 4
    assert (tmp_path / vader["plot"]).stat().st_size > 1000
