"""Rasa policy that hands an unhappy customer to a human before they give up.

It reads the `sentiment` that `nlu.sentiment.SentimentAnalyzer` stores with every user turn
and predicts the hand-off action when the mood turns: the mean score of the last `window`
user turns falls below `mean_threshold`, or one message scores below `single_threshold`
while its intent is one of `complaint_intents`.

It yields to rules: its priority sits between MemoizationPolicy (3) and RulePolicy (4), so a
rule (an active form, an explicit request for a human, a goodbye) always wins, while it beats
what stories and TED would have done. It never fires twice within `cooldown_turns`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.core.policies.policy import Policy, PolicyPrediction, confidence_scores_for
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import InvalidConfigException

from policies.domain_checks import require_action

SENTIMENT = "sentiment"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class SentimentEscalationPolicy(Policy):
    """Predicts the hand-off when the customer's recent sentiment is bad enough."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "priority": 3.5,
            "action": "action_handoff",
            "window": 3,
            "min_turns": 2,
            "mean_threshold": -0.4,
            "single_threshold": -0.6,
            "complaint_intents": ["complaint"],
            "cooldown_turns": 3,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Optional[Any] = None,
    ) -> None:
        config = {**self.get_default_config(), **config}
        if config["window"] < 1 or not 1 <= config["min_turns"] <= config["window"]:
            raise InvalidConfigException(
                f"{self.__class__.__name__}: need window >= 1 and 1 <= min_turns <= window "
                f"(got window={config['window']}, min_turns={config['min_turns']})."
            )
        super().__init__(config, model_storage, resource, execution_context, featurizer)

    def train(
        self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any
    ) -> Resource:
        """Nothing to learn (the thresholds are the model); checks the action exists."""
        require_action(self.__class__.__name__, self.config["action"], domain)
        return self._resource

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """Escalates right after a user turn that tips the mood over; otherwise abstains."""
        action = self.config["action"]
        last_action = tracker.latest_action_name
        if last_action == action:
            # after a hand-off the bot waits for the customer
            return self._prediction(confidence_scores_for(ACTION_LISTEN_NAME, 1.0, domain))
        if last_action != ACTION_LISTEN_NAME or not self.should_escalate(tracker):
            return self._prediction(self._default_predictions(domain))
        return self._prediction(confidence_scores_for(action, 1.0, domain))

    def should_escalate(self, tracker: DialogueStateTracker) -> bool:
        """The decision itself, on the user turns' stored sentiment scores."""
        turns = [e for e in tracker.events if isinstance(e, UserUttered)]
        scores = [
            float(e.parse_data[SENTIMENT]["score"])
            for e in turns[-self.config["window"]:]
            if isinstance(e.parse_data.get(SENTIMENT), dict)
        ]
        if not scores or self._escalated_in(tracker, turns=self.config["cooldown_turns"]):
            return False
        latest_intent = (tracker.latest_message.intent or {}).get("name")
        very_negative_complaint = (
            latest_intent in self.config["complaint_intents"]
            and scores[-1] <= self.config["single_threshold"]
        )
        sustained = (
            len(scores) >= self.config["min_turns"]
            and sum(scores) / len(scores) <= self.config["mean_threshold"]
        )
        return very_negative_complaint or sustained

    def _escalated_in(self, tracker: DialogueStateTracker, turns: int) -> bool:
        """Whether the hand-off action ran during the last `turns` user turns."""
        seen_users = 0
        for event in reversed(tracker.events):
            if isinstance(event, UserUttered):
                seen_users += 1
                if seen_users > turns:
                    return False
            elif isinstance(event, ActionExecuted) and event.action_name == self.config["action"]:
                return True
        return False
