"""Rasa component that scores the sentiment of every user message.

It adds `sentiment: {label, score, model}` to the parse data with `add_to_output=True`;
Rasa keeps every key of the parse data in the `UserUttered` event, so the score is stored
with each turn in the tracker store, where the escalation policy, actions and analytics read it.

With `analyser: lora` it is trained by `rasa train` like any trainable component: from the
labelled CSV named by `training_data` (not from Rasa's NLU data), whose content counts in
Rasa's fingerprint, and it persists into the model archive, so the archive alone serves it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

from rasa.engine.caching import CACHE_LOCATION_ENV, DEFAULT_CACHE_LOCATION
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu import lora, sentiment_analysers
from nlu.lora import LoRAConfig, LoRAConfigError
from nlu.sentiment_analysers import (
    SENTIMENT_LORA, HuggingFaceAnalyser, LoRAAnalyser, SentimentAnalyser, VaderAnalyser,
    train_lora,
)

logger = logging.getLogger(__name__)

SENTIMENT = "sentiment"
ANALYSERS = ("vader", "lora", "hf")


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True
)
class SentimentAnalyzer(GraphComponent):
    """Adds a three-class sentiment and a score in [-1, 1] to each message."""

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages the analysers import."""
        return ["torch", "transformers", "peft", "vaderSentiment"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """`analyser`: vader | lora | hf (see README for the benchmark behind the default)."""
        return {
            "analyser": "vader",
            # lora: a `text,label` CSV (negative/neutral/positive), relative to the directory
            # Rasa runs in; trained with the benchmarked recipe below unless overridden
            "training_data": None,
            **asdict(SENTIMENT_LORA),
            # hf: a local sequence-classification model and how its labels map to ours
            "hf_model": None,
            "label_map": {},
            # vader: compound-score cut-offs for negative / positive
            "negative_threshold": -0.05,
            "positive_threshold": 0.05,
        }

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """For `lora`: the CSV's content and the training code, so that editing either
        retrains instead of reusing Rasa's cache (the path alone is in the config)."""
        if config.get("analyser") != "lora":
            return None
        digest = hashlib.sha256()
        for module in (lora, sentiment_analysers):
            digest.update(inspect.getsource(module).encode("utf-8"))
        path = Path(str(config.get("training_data")))
        digest.update(path.read_bytes() if path.is_file() else f"missing {path}".encode())
        return digest.hexdigest()

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        analyser: Optional[SentimentAnalyser] = None,
    ) -> None:
        self.component_config = {**self.get_default_config(), **config}
        kind = self.component_config["analyser"]
        if kind not in ANALYSERS:
            raise InvalidConfigException(
                f"SentimentAnalyzer: analyser={kind!r} is not one of {', '.join(ANALYSERS)}."
            )
        try:
            # validated up front, so a bad option fails before anything is trained
            self.recipe = LoRAConfig.from_dict(self.component_config)
        except LoRAConfigError as error:
            raise InvalidConfigException(f"SentimentAnalyzer: {error}") from error
        self._model_storage = model_storage
        self._resource = resource
        self.analyser = analyser

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SentimentAnalyzer":
        """A component before training: `vader` and `hf` are ready, `lora` needs `train`."""
        component = cls(config, model_storage, resource)
        if component.component_config["analyser"] != "lora":
            component.analyser = component._untrained_analyser()
        return component

    def _untrained_analyser(self) -> SentimentAnalyser:
        config = self.component_config
        if config["analyser"] == "vader":
            return VaderAnalyser(config["negative_threshold"], config["positive_threshold"])
        if not config["hf_model"]:
            raise InvalidConfigException("SentimentAnalyzer: analyser 'hf' needs hf_model.")
        try:
            return HuggingFaceAnalyser(config["hf_model"], config["label_map"], config["device"])
        except (OSError, ValueError) as error:
            raise InvalidConfigException(
                f"SentimentAnalyzer: the 'hf' analyser could not be loaded ({error})."
            ) from error

    def train(self, training_data: TrainingData) -> Resource:
        """`lora`: fine-tunes on the `training_data` CSV (Rasa's NLU data is not used) and
        writes the adapter into the model archive; the other analysers learn nothing."""
        if self.component_config["analyser"] != "lora":
            return self._resource
        csv_path = Path(str(self.component_config["training_data"]))
        if not csv_path.is_file():
            raise InvalidConfigException(
                f"SentimentAnalyzer: analyser 'lora' trains from training_data, a text,label "
                f"CSV; {str(csv_path)!r} is not a file (relative paths start in the "
                f"directory Rasa runs in, {Path.cwd()})."
            )
        cached = self._cache_dir()
        with self._model_storage.write_to(self._resource) as directory:
            if (cached / "done").exists():
                logger.info(f"SentimentAnalyzer: reusing the analyser trained on {csv_path}")
                shutil.copytree(cached / "model", directory, dirs_exist_ok=True)
                return self._resource
            try:
                train_lora(csv_path, directory, self.recipe)
            except ValueError as error:  # a bad label (with its line) or a single class
                raise InvalidConfigException(f"SentimentAnalyzer: {error}") from error
            shutil.rmtree(cached.parent, ignore_errors=True)  # keep only the latest one
            shutil.copytree(directory, cached / "model")
            (cached / "done").touch()
        return self._resource

    def _cache_dir(self) -> Path:
        """Where the analyser trained from this CSV, code and options is kept between runs.

        Rasa's own cache also keys every pipeline component on the NLU data it receives,
        which this component ignores; without this, editing `nlu.yml` would retrain the
        analyser (minutes on a CPU) into the very same weights (training is deterministic).
        """
        key = hashlib.sha256(
            json.dumps(self.component_config, sort_keys=True, default=str).encode()
            + (self.fingerprint_addon(self.component_config) or "").encode()
        ).hexdigest()[:32]
        root = Path(os.environ.get(CACHE_LOCATION_ENV, DEFAULT_CACHE_LOCATION))
        return root / "csbot-sentiment" / key

    def _lora_name(self) -> str:
        return f"lora:{Path(str(self.component_config['training_data'])).name}"

    def process(self, messages: List[Message]) -> List[Message]:
        """Scores all messages in one batch; empty text is scored (neutral), never an error."""
        if self.analyser is None:
            return messages
        results = self.analyser.analyse([m.get(TEXT) or "" for m in messages])
        for message, sentiment in zip(messages, results):
            message.set(SENTIMENT, sentiment.as_dict(), add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to add at training time: sentiment does not feed the NLU models."""
        return training_data

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "SentimentAnalyzer":
        """`lora` loads its adapter from the model archive; the others are built again."""
        component = cls.create(config, model_storage, resource, execution_context)
        if component.component_config["analyser"] != "lora":
            return component
        try:
            with model_storage.read_from(resource) as directory:
                component.analyser = LoRAAnalyser(
                    directory, device=component.component_config["device"],
                    name=component._lora_name(),
                )
        except (OSError, ValueError) as error:
            raise InvalidConfigException(
                f"SentimentAnalyzer: this model holds no trained 'lora' analyser ({error}); "
                f"train the model again with `rasa train`."
            ) from error
        return component
