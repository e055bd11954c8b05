"""The sentence encoder served by ONNX Runtime on the CPU.

Why: every knowledge turn embeds the question (and the extractive answer embeds the
candidate sentences), and a 6-layer MiniLM on one short text is dominated by torch's
per-operator overhead, not by arithmetic. The same sentence-transformers model (its
transformer, pooling and any dense layers, then L2 normalisation) exported to ONNX gives the
same vectors (differences around 1e-7) for well under half the CPU on one thread.

sentence-transformers' own ONNX backend needs optimum-onnx, which pins a transformers
older than the action server's, so the export is done here with torch's TorchScript
exporter, at load, in memory: the index and the model folder stay exactly as they are.
(The Rasa side serves its LoRA classifiers the same way in `nlu/onnx_serving.py`; the
process boundary keeps the two apart.)
"""

from __future__ import annotations

import io
import warnings
from typing import Any, List, Optional

import numpy as np
from langchain_core.embeddings import Embeddings

INPUTS = ("input_ids", "attention_mask")


def _export(model: Any) -> bytes:
    """The ONNX graph from token ids to normalised sentence vectors, any batch and length."""
    import torch

    class Normalised(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                    ) -> torch.Tensor:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            vectors = self.model(features)["sentence_embedding"]
            return torch.nn.functional.normalize(vectors, dim=-1)

    sample = model.preprocess(["an example question"])
    graph = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns about Python-side shape checks inside the encoder; they are
        # constant for the traced shapes and do not change the result.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Normalised().eval(), tuple(sample[name] for name in INPUTS),
            graph,  # type: ignore[arg-type]  # the TorchScript exporter takes file objects
            input_names=list(INPUTS), output_names=["vectors"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                          "attention_mask": {0: "batch", 1: "tokens"},
                          "vectors": {0: "batch"}},
            opset_version=17, dynamo=False)
    return graph.getvalue()


class OnnxEmbeddings(Embeddings):
    """langchain ``Embeddings`` of a sentence-transformers model run by ONNX Runtime.

    Texts are tokenized by the model itself (its truncation length and casing), so a vector
    is the one ``SentenceTransformer.encode(..., normalize_embeddings=True)`` returns.
    """

    def __init__(self, model_path: str, batch_size: int = 32,
                 threads: Optional[int] = None) -> None:
        import onnxruntime
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(model_path, device="cpu").eval()
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads or 0  # 0: ONNX Runtime's default, one per core
        self._session = onnxruntime.InferenceSession(
            _export(model), options, providers=["CPUExecutionProvider"])
        self._preprocess = model.preprocess
        self._dimension = int(self._run(["dimension"]).shape[1])
        self.batch_size = batch_size

    def get_embedding_dimension(self) -> int:
        return self._dimension

    def _run(self, texts: List[str]) -> np.ndarray:
        features = self._preprocess(texts)
        feeds = {name: features[name].numpy() for name in INPUTS}
        return self._session.run(None, feeds)[0]

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        # Batches of similar length pad least, as sentence-transformers' encode does.
        order = np.argsort([-len(text) for text in texts], kind="stable")
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            picked = order[start:start + self.batch_size]
            vectors[picked] = self._run([texts[i] for i in picked])
        return vectors.tolist()

    def embed_query(self, text: str) -> List[float]:
        return self._run([text])[0].tolist()
