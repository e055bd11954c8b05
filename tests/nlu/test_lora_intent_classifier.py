"""The LoRA intent classifier as Rasa drives it: train, persist, load, process."""

import inspect
from pathlib import Path
from typing import Dict, List

import numpy as np
import onnx
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.engine.training.fingerprinting import calculate_fingerprint_key
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu import lora
from nlu.lora_intent_classifier import LoRAIntentClassifier
from nlu.onnx_serving import exported, quantized

# Twelve intents (more than the ranking length of 10), one a retrieval intent.
EXAMPLES: Dict[str, List[str]] = {
    "greet": ["hi", "hello there", "good morning", "hey, anyone around?"],
    "goodbye": ["bye", "see you later", "goodbye for now", "that's all, bye"],
    "thank_you": ["thanks", "thank you so much", "cheers, appreciate it", "many thanks"],
    "order_status": ["where is my order", "has my parcel shipped", "track my package", "my order hasn't arrived"],
    "cancel_order": ["cancel my order", "I want to cancel the purchase", "please cancel it", "stop my order"],
    "return_item": ["I want to return these jeans", "how do I send this back", "return a jacket", "start a return"],
    "shipping_cost": ["how much is shipping", "what does delivery cost", "is shipping free", "shipping fee?"],
    "account_access": ["I forgot my password", "can't log in", "reset my password", "locked out of my account"],
    "request_human": ["talk to a human", "get me an agent", "real person please", "I want to speak to someone"],
    "complaint": ["this service is terrible", "I'm very unhappy", "worst shop ever", "your support is useless"],
    "out_of_scope": ["what's the capital of peru", "write me a poem", "who won the game", "recipe for lasagna"],
    "chitchat/ask_name": ["what's your name", "who are you", "do you have a name", "what should I call you"],
}
FAST = {"min_steps": 40, "batch_size": 16, "seed": 7}


def training_data() -> TrainingData:
    messages = []
    for intent, texts in EXAMPLES.items():
        for text in texts:
            data = {"text": text, "intent": intent.split("/")[0]}
            if "/" in intent:
                data["intent_response_key"] = intent
            messages.append(Message(data=data))
    return TrainingData(messages)


def make(tmp_path: Path, config: Dict, name: str = "lora") -> LoRAIntentClassifier:
    (tmp_path / name).mkdir()
    storage = LocalModelStorage(tmp_path / name)
    context = ExecutionContext(GraphSchema({}), "test")
    return LoRAIntentClassifier.create(
        {**LoRAIntentClassifier.get_default_config(), **config},
        storage, Resource(name), context,
    )


def parse(component: LoRAIntentClassifier, *texts: str) -> List[Message]:
    return component.process([Message(data={"text": t}) for t in texts])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trained")
    component = make(tmp, FAST)
    resource = component.train(training_data())
    return tmp, component, resource


def test_predicts_seen_intents_and_fills_ranking_like_diet(trained):
    _, component, _ = trained
    message = parse(component, "hello there")[0]
    intent, ranking = message.get("intent"), message.get("intent_ranking")
    assert intent["name"] == "greet"
    assert 0.0 < intent["confidence"] <= 1.0
    assert len(ranking) == 10  # top 10 of 12 intents, like DIET's default ranking_length
    assert ranking[0] == intent
    confidences = [entry["confidence"] for entry in ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert set(message.as_dict(only_output_properties=True)) >= {"intent", "intent_ranking"}


def test_retrieval_intent_is_learnt_as_its_retrieval_intent(trained):
    _, component, _ = trained
    assert parse(component, "what's your name")[0].get("intent")["name"] == "chitchat"
    assert "chitchat" in component.model.labels
    assert not any("/" in label for label in component.model.labels)


def test_persist_and_load_give_the_same_predictions(trained):
    tmp, component, resource = trained
    loaded = LoRAIntentClassifier.load(
        {**LoRAIntentClassifier.get_default_config(), **FAST},
        LocalModelStorage(tmp / "lora"), resource, ExecutionContext(GraphSchema({}), "test"),
    )
    # It serves as it was trained to serve (int8, the default runtime), exactly what the
    # saved model gives; the saved weights' exactness against torch is
    # test_onnx_serving_gives_the_probabilities_torch_gives.
    saved = next((tmp / "lora").rglob(lora.CONFIG_FILE)).parent
    reference = lora.LoRASentenceClassifier.load(saved, device="cpu", cpu_runtime="onnx-int8")
    assert loaded.model.config.cpu_runtime == "onnx-int8"
    texts = ["hey, anyone around?", "cancel my order", "I forgot my password", "talk to a human"]
    rankings = [m.get("intent_ranking") for m in parse(loaded, *texts)]
    for ranking, row in zip(rankings, reference.predict_proba(texts)):
        order = sorted(range(len(row)), key=lambda i: -row[i])[:len(ranking)]
        assert [e["name"] for e in ranking] == [reference.labels[i] for i in order]
        np.testing.assert_allclose([e["confidence"] for e in ranking], row[order], atol=1e-6)
    # and the top intents are the ones the trained (torch) model gives
    assert [r[0]["name"] for r in rankings] == [
        m.get("intent")["name"] for m in parse(component, *texts)]


def test_onnx_serving_gives_the_probabilities_torch_gives(trained):
    tmp, component, _ = trained
    saved = next((tmp / "lora").rglob(lora.CONFIG_FILE)).parent
    served = lora.LoRASentenceClassifier.load(saved, device="cpu", cpu_runtime="onnx")
    assert served._onnx is not None and served.encoder is None
    texts = [text for examples in EXAMPLES.values() for text in examples] + [
        "a message much longer than any of the training examples, " * 8, "ok"]
    np.testing.assert_allclose(
        served.predict_proba(texts), component.model.predict_proba(texts), atol=1e-5)


def test_an_unknown_cpu_runtime_is_refused_with_the_choices():
    with pytest.raises(lora.LoRAConfigError, match="onnx, onnx-int8, torch"):
        lora.LoRAConfig(cpu_runtime="tensorrt")


def test_int8_serving_keeps_the_predictions(trained):
    tmp, component, _ = trained
    saved = next((tmp / "lora").rglob(lora.CONFIG_FILE)).parent
    served = lora.LoRASentenceClassifier.load(saved, device="cpu")  # the default runtime
    assert served.config.cpu_runtime == "onnx-int8" and served._onnx is not None
    texts = [text for examples in EXAMPLES.values() for text in examples]
    before, after = component.model.predict_proba(texts), served.predict_proba(texts)
    assert (before.argmax(axis=1) == after.argmax(axis=1)).all()
    assert np.abs(before - after).max() < 0.15


def test_int8_scores_a_message_the_same_alone_and_in_a_batch(trained):
    # One activation scale per tensor: batched together, messages of different lengths
    # would be quantized with each other's range (and their padding's).
    tmp, _, _ = trained
    saved = next((tmp / "lora").rglob(lora.CONFIG_FILE)).parent
    served = lora.LoRASentenceClassifier.load(saved, device="cpu", cpu_runtime="onnx-int8")
    texts = [text for examples in EXAMPLES.values() for text in examples] + [
        "a message much longer than any of the training examples, " * 8, "ok"]
    alone = np.vstack([served.predict_proba([text]) for text in texts])
    np.testing.assert_allclose(served.predict_proba(texts), alone, atol=1e-6)


def test_quantizing_stores_the_weights_in_int8_with_a_scale_per_channel(trained):
    _, component, _ = trained
    graph = exported(component.model.encoder, component.model.head, component.model.tokenizer)
    small = quantized(graph)
    model = onnx.load_from_string(small)
    nodes = {node.op_type for node in model.graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= nodes, nodes
    # one scale per output channel: the matrix weights' scales are vectors, not single numbers
    scales = [init for init in model.graph.initializer
              if init.name.endswith("_scale") and "MatMul" in init.name]
    assert scales and all(list(init.dims) and init.dims[0] > 1 for init in scales), [
        (init.name, list(init.dims)) for init in scales]
    assert len(small) < len(graph) / 2  # int8 weights: about a quarter of float32


def test_persists_only_what_it_learnt(trained):
    tmp, _, _ = trained
    files = {p.name: p.stat().st_size for p in (tmp / "lora").rglob("*") if p.is_file()}
    assert "adapter_model.safetensors" in files and "head.safetensors" in files
    # The base MiniLM is ~90 MB; the adapter, head, labels and config stay far below 10 MB.
    assert sum(files.values()) < 10 * 1024 * 1024


def test_same_seed_gives_the_same_model_on_cpu(tmp_path, trained):
    _, first, _ = trained
    second = make(tmp_path, FAST, name="again")
    second.train(training_data())
    texts = ["track my package", "is shipping free", "write me a poem"]
    a = first.model.predict_proba(texts)
    b = second.model.predict_proba(texts)
    # Equal up to float summation order: loading a model for serving (other tests here) sets
    # torch's process-wide thread count to `inference_threads`, and the reductions of a
    # matrix product split over fewer threads round differently (about 1e-7); another seed
    # moves these probabilities by 1e-2 and more.
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "text",
    ["x" * 10_000, "where is my order " * 800, "🙂🙂🙂", "😡", "我的订单在哪里", "¿Dónde está mi pedido?", "\u200b\t"],
)
def test_awkward_input_parses_without_error(trained, text):
    _, component, _ = trained
    message = parse(component, text)[0]
    assert message.get("intent") is not None
    if text.strip(" \t\u200b"):
        assert message.get("intent")["name"] in component.model.labels


def test_empty_message_gets_no_intent_like_diet(trained):
    _, component, _ = trained
    for text in ("", "   "):
        message = parse(component, text)[0]
        assert message.get("intent") == {"name": None, "confidence": 0.0}
        assert message.get("intent_ranking") == []


def test_single_intent_fails_training_with_a_clear_message(tmp_path):
    component = make(tmp_path, FAST)
    data = TrainingData([Message(data={"text": t, "intent": "greet"}) for t in ("hi", "hello")])
    with pytest.raises(InvalidConfigException, match="at least two classes.*greet"):
        component.train(data)


def test_unknown_base_model_fails_with_a_clear_message(tmp_path):
    component = make(tmp_path, {**FAST, "base_model": "no-such-org/no-such-model"})
    with pytest.raises(InvalidConfigException, match="no-such-org/no-such-model.*local model directory"):
        component.train(training_data())


@pytest.mark.parametrize(
    "option", [{"lora_rank": 0}, {"epochs": -1}, {"device": "tpu"}, {"group_by_length": "yes"}]
)
def test_invalid_options_fail_before_training(tmp_path, option):
    with pytest.raises(InvalidConfigException, match=next(iter(option))):
        make(tmp_path, option)


def test_a_change_to_the_shared_training_recipe_invalidates_rasas_training_cache(monkeypatch):
    """Rasa fingerprints the component class's own source; the recipe in `nlu.lora` must
    count too, or `rasa train` would reuse a model trained by the old recipe."""
    key = calculate_fingerprint_key(LoRAIntentClassifier, {}, {})
    assert calculate_fingerprint_key(LoRAIntentClassifier, {}, {}) == key
    real = inspect.getsource
    monkeypatch.setattr(
        inspect, "getsource", lambda obj: real(obj) + "# edited\n" if obj is lora else real(obj)
    )
    assert calculate_fingerprint_key(LoRAIntentClassifier, {}, {}) != key



def test_length_grouped_batches_pad_less_than_random_ones(monkeypatch):
    """Each training batch is padded to its longest message; grouping messages of similar
    length (the default) must cut that padding, which is where its speed comes from."""
    texts = [text for examples in EXAMPLES.values() for text in examples]
    labels = [intent.split("/")[0] for intent, examples in EXAMPLES.items() for _ in examples]
    real = lora.LoRASentenceClassifier._logits
    padded, tokens = {True: 0, False: 0}, {True: 0, False: 0}

    def counting(self, batch):
        if self.encoder.training:
            lengths = [len(ids) for ids in self.tokenizer(batch)["input_ids"]]
            padded[self.config.group_by_length] += max(lengths) * len(lengths)
            tokens[self.config.group_by_length] += sum(lengths)
        return real(self, batch)

    monkeypatch.setattr(lora.LoRASentenceClassifier, "_logits", counting)
    for grouped in (True, False):
        config = lora.LoRAConfig(epochs=2, min_steps=0, batch_size=4, group_by_length=grouped)
        lora.LoRASentenceClassifier.train(texts, labels, config)
    assert tokens[True] == tokens[False]  # the same examples, as often
    assert padded[True] / tokens[True] < 0.9 * padded[False] / tokens[False]
