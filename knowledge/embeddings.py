"""The sentence encoder: langchain's ``HuggingFaceEmbeddings`` on sentence-transformers, or
on the CPU by default the same model run by ONNX Runtime (``cpu_runtime``, onnx_encoder.py).

Vectors are L2-normalised, so the FAISS inner product is the cosine similarity
and the retrieval threshold reads the same for any index type. One encoder is
loaded per process and model (the action server, the CLI and the benchmarks
share it).
"""

from __future__ import annotations

import logging
import threading
from typing import Dict, Optional, Tuple

from langchain_core.embeddings import Embeddings

from knowledge.config import EmbeddingSettings
from knowledge.models import apply_torch_threads, encoder_path

logger = logging.getLogger(__name__)

_cache: Dict[Tuple[str, str, int, str], Embeddings] = {}
_lock = threading.Lock()


def get_embeddings(settings: EmbeddingSettings, torch_threads: Optional[int] = None
                   ) -> Embeddings:
    """The process-wide encoder for ``settings`` (loaded on first use)."""
    runtime = "onnx" if settings.device == "cpu" and settings.cpu_runtime == "onnx" else "torch"
    key = (settings.model, settings.device, settings.batch_size, runtime)
    apply_torch_threads(torch_threads)
    with _lock:
        if key not in _cache:
            path = encoder_path(settings.model)
            logger.info("loading the encoder %s on %s (%s)", path, settings.device, runtime)
            if runtime == "onnx":
                from knowledge.onnx_encoder import OnnxEmbeddings

                _cache[key] = OnnxEmbeddings(path, settings.batch_size, torch_threads)
            else:
                from langchain_huggingface import HuggingFaceEmbeddings

                _cache[key] = HuggingFaceEmbeddings(
                    model_name=path,
                    model_kwargs={"device": settings.device},
                    encode_kwargs={"normalize_embeddings": True,
                                   "batch_size": settings.batch_size},
                )
        return _cache[key]


def dimension(embeddings: Embeddings) -> int:
    """Vector size of an encoder (asks the model, or embeds one word)."""
    client = (getattr(embeddings, "_client", None) or getattr(embeddings, "client", None)
              or embeddings)
    getter = getattr(client, "get_embedding_dimension", None) or getattr(
        client, "get_sentence_embedding_dimension", None)
    if getter is not None:
        size = getter()
        if size:
            return int(size)
    return len(embeddings.embed_query("dimension"))
