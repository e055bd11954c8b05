"""The sentiment component and its analysers (VADER, LoRA, any Hugging Face model)."""

import csv
from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.engine.training.fingerprinting import calculate_fingerprint_key
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.lora import resolve_base_model
from nlu import sentiment as sentiment_module
from nlu.sentiment import SentimentAnalyzer
from nlu.sentiment_analysers import LABELS, read_labelled_csv

ROOT = Path(__file__).resolve().parents[2]
AWKWARD = ["", "   ", "🙂🙂", "x" * 10_000, "je suis très déçu", "我很生气", "ok"]


CONTEXT = ExecutionContext(GraphSchema({}), "test")


def component(tmp_path: Path, **config) -> SentimentAnalyzer:
    return SentimentAnalyzer.create(
        config, LocalModelStorage(tmp_path), Resource("sentiment"), CONTEXT
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


FAST = {"min_steps": 60, "batch_size": 16}


def subset_csv(path: Path, rows: int = 240) -> Path:
    """The first `rows` messages of the shipped training set, as a CSV of its own."""
    texts, labels = read_labelled_csv(ROOT / "data" / "sentiment" / "train.csv")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(list(zip(texts, labels))[:rows])
    return path


@pytest.fixture(scope="module", autouse=True)
def rasa_cache(tmp_path_factory):
    """Rasa's cache folder for this module (never the developer's .rasa/cache)."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("rasa-cache")
        patch.setenv("RASA_CACHE_DIRECTORY", str(path))
        yield path


@pytest.fixture(scope="module")
def trained_lora(tmp_path_factory, rasa_cache):
    """A LoRA analyser trained by the component (as `rasa train` does) on 240 messages,
    persisted into a model storage; returns the storage and the component's config."""
    work = tmp_path_factory.mktemp("lora-sentiment")
    config = {"analyser": "lora", "training_data": str(subset_csv(work / "train.csv")), **FAST}
    storage = storage_at(work / "storage")
    trainer = SentimentAnalyzer.create(config, storage, Resource("sentiment"), CONTEXT)
    trainer.train(TrainingData())
    return storage, config


def storage_at(path: Path) -> LocalModelStorage:
    """A model storage in a new folder, as Rasa gives every training."""
    path.mkdir(parents=True)
    return LocalModelStorage(path)


def loaded(storage, config) -> SentimentAnalyzer:
    return SentimentAnalyzer.load(config, storage, Resource("sentiment"), CONTEXT)


def test_lora_analyser_trains_from_its_csv_and_loads_from_the_model_storage(trained_lora):
    storage, config = trained_lora
    results = scored(loaded(storage, config),
                     "thank you so much, you were brilliant and so helpful!",
                     "this is the worst service ever, I am absolutely furious", *AWKWARD)
    assert results[0]["label"] == "positive" and results[0]["score"] > 0
    assert results[1]["label"] == "negative" and results[1]["score"] < 0
    for sentiment in results:
        check_shape(sentiment, "lora:train.csv")


def test_lora_analyser_persists_only_what_it_learnt(trained_lora):
    storage, _ = trained_lora
    with storage.read_from(Resource("sentiment")) as directory:
        files = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
        size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    assert "lora_classifier.json" in files and "head.safetensors" in files
    assert size < 10 * 2**20  # the adapter and head, never a copy of the 87 MB encoder


def test_retraining_on_the_same_csv_reuses_the_last_training(trained_lora, tmp_path, monkeypatch):
    """Rasa retrains every pipeline component when the NLU data changes; the analyser does not
    read it, so a retrain with the same CSV, code and options copies the earlier weights."""
    _, config = trained_lora

    def must_not_train(*args):
        raise AssertionError("trained again")

    monkeypatch.setattr(sentiment_module, "train_lora", must_not_train)
    storage = storage_at(tmp_path / "again")
    SentimentAnalyzer.create(config, storage, Resource("sentiment"), CONTEXT).train(TrainingData())
    results = scored(loaded(storage, config), "this is the worst service ever, I am absolutely furious")
    assert results[0]["label"] == "negative"
    with pytest.raises(AssertionError, match="trained again"):  # other options: a new training
        SentimentAnalyzer.create({**config, "seed": 1}, storage_at(tmp_path / "other"),
                                 Resource("sentiment"), CONTEXT).train(TrainingData())


def test_the_csv_content_counts_in_rasas_fingerprint(tmp_path):
    data = tmp_path / "sentiment.csv"
    data.write_text("text,label\nthanks,positive\nawful,negative\n")
    config = {**SentimentAnalyzer.get_default_config(), "analyser": "lora",
              "training_data": str(data)}

    def key() -> str:
        return calculate_fingerprint_key(SentimentAnalyzer, config, {})

    before = key()
    assert key() == before
    data.write_text("text,label\nthanks,positive\nawful,negative\nfine,neutral\n")
    assert key() != before  # same path, new rows: Rasa retrains instead of reusing its cache
    vader = {**SentimentAnalyzer.get_default_config(), "analyser": "vader"}
    assert SentimentAnalyzer.fingerprint_addon(vader) is None


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


def test_unknown_analyser_missing_csv_and_untrained_model_fail_with_a_clear_message(tmp_path):
    with pytest.raises(InvalidConfigException, match="'sarcasm-o-meter' is not one of"):
        component(tmp_path, analyser="sarcasm-o-meter")
    with pytest.raises(InvalidConfigException, match="epochs=0"):
        component(tmp_path, analyser="lora", epochs=0)
    missing = {"analyser": "lora", "training_data": str(tmp_path / "missing.csv")}
    with pytest.raises(InvalidConfigException, match="missing.csv' is not a file"):
        component(tmp_path, **missing).train(TrainingData())
    with pytest.raises(InvalidConfigException, match="rasa train"):
        loaded(storage_at(tmp_path / "empty"), missing)


def test_a_bad_label_fails_rasa_train_with_its_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,neutral\nawful,angry\n")
    with pytest.raises(InvalidConfigException, match=r"bad.csv:3: label 'angry'"):
        component(tmp_path, analyser="lora", training_data=str(bad)).train(TrainingData())


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
