"""The encoder on ONNX Runtime (the CPU default) gives sentence-transformers' own vectors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_config

from knowledge.config import ConfigError, KnowledgeConfig
from knowledge.embeddings import dimension, get_embeddings
from knowledge.onnx_encoder import OnnxEmbeddings

TEXTS = [
    "overnight delivery price?",
    "got red wine on my jacket at a wedding, what now",
    "Returns Policy — You can return items within 30 days of delivery. " * 40,  # truncated
    "",
    "¿Hacéis envíos a Canarias? 🚚",
]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("encoders")
    onnx = make_config(tmp, embeddings={"cpu_runtime": "onnx"})
    torch = make_config(tmp, embeddings={"cpu_runtime": "torch"})
    return (get_embeddings(onnx.embeddings, onnx.torch_threads),
            get_embeddings(torch.embeddings, torch.torch_threads))


def test_the_cpu_default_is_onnx_runtime_and_torch_stays_available(both) -> None:
    onnx, torch = both
    assert isinstance(onnx, OnnxEmbeddings)
    assert not isinstance(torch, OnnxEmbeddings)
    assert dimension(onnx) == dimension(torch) == 384


def test_onnx_vectors_are_sentence_transformers_vectors(both) -> None:
    onnx, torch = both
    ours = np.asarray(onnx.embed_documents(TEXTS))
    theirs = np.asarray(torch.embed_documents(TEXTS))
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    assert np.abs(ours - theirs).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    for text in TEXTS[:2]:
        assert np.abs(np.asarray(onnx.embed_query(text))
                      - np.asarray(torch.embed_query(text))).max() < 1e-5


def test_batches_keep_the_order_of_the_texts(both) -> None:
    onnx, _ = both
    texts = [f"{'very ' * n}long question number {n}" for n in range(70)]  # 3 batches of 32
    batched = np.asarray(onnx.embed_documents(texts))
    one_by_one = np.asarray([onnx.embed_query(text) for text in texts])
    assert np.abs(batched - one_by_one).max() < 1e-5


def test_an_unknown_runtime_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="cpu_runtime"):
        KnowledgeConfig.load(overrides={"embeddings": {"cpu_runtime": "tensorrt"}}, environ={})
