"""Rasa component that scores the sentiment of every user message.

It adds `sentiment: {label, score, model}` to the parse data with `add_to_output=True`;
Rasa keeps every key of the parse data in the `UserUttered` event, so the score is stored
with each turn in the tracker store, where the escalation policy, actions and analytics read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.sentiment_analysers import (
    HuggingFaceAnalyser, LoRAAnalyser, SentimentAnalyser, VaderAnalyser,
)

SENTIMENT = "sentiment"
ROOT = Path(__file__).resolve().parents[1]


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class SentimentAnalyzer(GraphComponent):
    """Adds a three-class sentiment and a score in [-1, 1] to each message."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """`analyser`: vader | lora | hf (see README for the benchmark behind the default)."""
        return {
            "analyser": "vader",
            # lora: where `bot train` (run by make start/test) writes the analyser it trains
            # from `training_data`, both relative to the project directory
            "model_path": "models/sentiment",
            "training_data": "data/sentiment/train.csv",
            # hf: a local sequence-classification model and how its labels map to ours
            "hf_model": None,
            "label_map": {},
            "device": "auto",
            # vader: compound-score cut-offs for negative / positive
            "negative_threshold": -0.05,
            "positive_threshold": 0.05,
        }

    def __init__(self, config: Dict[Text, Any], analyser: SentimentAnalyser) -> None:
        self.component_config = config
        self.analyser = analyser

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SentimentAnalyzer":
        """Loads the configured analyser once per process (never per message)."""
        config = {**cls.get_default_config(), **config}
        return cls(config, cls._analyser(config))

    @staticmethod
    def _analyser(config: Dict[Text, Any]) -> SentimentAnalyser:
        kind = config["analyser"]
        try:
            if kind == "vader":
                return VaderAnalyser(config["negative_threshold"], config["positive_threshold"])
            if kind == "lora":
                path = Path(config["model_path"])
                path = path if path.is_absolute() else ROOT / path
                return LoRAAnalyser(path, device=config["device"])
            if kind == "hf" and config["hf_model"]:
                return HuggingFaceAnalyser(config["hf_model"], config["label_map"], config["device"])
        except (OSError, ValueError) as error:
            raise InvalidConfigException(
                f"SentimentAnalyzer: the {kind!r} analyser could not be loaded ({error}). "
                f"For 'lora', train it first with `bot train` (make start and make test do)."
            ) from error
        raise InvalidConfigException(
            f"SentimentAnalyzer: analyser={kind!r} is not one of 'vader', 'lora', 'hf' "
            f"(and 'hf' needs hf_model)."
        )

    def process(self, messages: List[Message]) -> List[Message]:
        """Scores all messages in one batch; empty text is scored (neutral), never an error."""
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
        return cls.create(config, model_storage, resource, execution_context)
