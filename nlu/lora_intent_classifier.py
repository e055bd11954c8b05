"""Rasa intent classifier: a LoRA-fine-tuned transformer encoder (see `nlu.lora`).

Drop-in for `DIETClassifier` in `config.yml`: it fills `intent` and `intent_ranking` the way
DIET does, so `FallbackClassifier`, `rasa test nlu` and the policies work unchanged. It needs
no featurizer; it reads the raw text. Retrieval intents (`faq/ask_returns`) are learnt as
their retrieval intent (`faq`), exactly like DIET, and `ResponseSelector` picks the response.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import RANKING_LENGTH

from nlu import lora
from nlu.lora import LoRAConfig, LoRAConfigError, LoRASentenceClassifier

logger = logging.getLogger(__name__)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class LoRAIntentClassifier(IntentClassifier, GraphComponent):
    """Intent classifier that fine-tunes a LoRA adapter and a head on an encoder."""

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages the component imports."""
        return ["torch", "transformers", "peft"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Defaults: the recipe that beat DIET on BANKING77 and CLINC150 (see README)."""
        return {**asdict(LoRAConfig()), RANKING_LENGTH: LABEL_RANKING_LENGTH}

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """The training recipe's source: Rasa fingerprints this class's code, but the recipe
        lives in `nlu.lora`, and a change there must retrain instead of reusing the cache."""
        return hashlib.sha256(inspect.getsource(lora).encode("utf-8")).hexdigest()

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[LoRASentenceClassifier] = None,
    ) -> None:
        """Validates the options up front so a bad config fails before training starts."""
        self.component_config = {**self.get_default_config(), **config}
        try:
            self.lora_config = LoRAConfig.from_dict(self.component_config)
        except LoRAConfigError as error:
            raise InvalidConfigException(f"{self.__class__.__name__}: {error}") from error
        self._model_storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LoRAIntentClassifier":
        """Creates a new untrained component."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fine-tunes on every NLU example that has both text and an intent."""
        examples = [
            e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)
        ]
        try:
            self.model = LoRASentenceClassifier.train(
                [e.get(TEXT) for e in examples],
                [e.get(INTENT) for e in examples],
                self.lora_config,
                description=self.__class__.__name__,
            )
        except LoRAConfigError as error:
            raise InvalidConfigException(f"{self.__class__.__name__}: {error}") from error
        self.persist()
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets `intent` and the top-`ranking_length` `intent_ranking` on each message."""
        texts = [(m.get(TEXT) or "").strip() for m in messages]
        model = self.model
        scorable = [i for i, text in enumerate(texts) if text] if model else []
        rows = dict(zip(scorable, model.predict_proba([texts[i] for i in scorable])
                        if model and scorable else []))
        for index, message in enumerate(messages):
            # Like DIET: no text (or no model) means no prediction, which the
            # FallbackClassifier turns into `nlu_fallback`.
            intent = {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}
            ranking: List[Dict[Text, Any]] = []
            if model is not None and index in rows:
                ranking = sorted(
                    (
                        {INTENT_NAME_KEY: label, PREDICTED_CONFIDENCE_KEY: float(p)}
                        for label, p in zip(model.labels, rows[index])
                    ),
                    key=lambda entry: -entry[PREDICTED_CONFIDENCE_KEY],
                )
                intent = ranking[0]
                if self.component_config[RANKING_LENGTH] > 0:
                    ranking = ranking[: self.component_config[RANKING_LENGTH]]
            message.set(INTENT, intent, add_to_output=True)
            message.set("intent_ranking", ranking, add_to_output=True)
        return messages

    def persist(self) -> None:
        """Stores adapter, head, labels and options (not the base model) in the archive."""
        if self.model is None:
            return
        with self._model_storage.write_to(self._resource) as directory:
            self.model.save(directory)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "LoRAIntentClassifier":
        """Loads the trained adapter for `rasa run`, `rasa shell` and `rasa test`."""
        try:
            with model_storage.read_from(resource) as directory:
                model = LoRASentenceClassifier.load(
                    directory, device=config.get("device")
                )
        except ValueError:
            logger.warning(
                f"{cls.__name__}: nothing trained in resource '{resource.name}' "
                f"(no intents in the training data?); it will predict no intent."
            )
            model = None
        return cls(config, model_storage, resource, model)
