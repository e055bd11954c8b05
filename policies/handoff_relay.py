"""Rasa policy that keeps the assistant quiet while a human colleague has the conversation.

Once `action_handoff` has asked a colleague to join (slot `handoff_status` is `requested`)
or one has taken it (`held`), every customer message goes to `action_relay_to_staff`, which
posts it in the hand-off's Slack thread, and the assistant listens again. Its priority (5)
is above RulePolicy's (4): while a person is on the conversation, no rule, form or story
answers in their place. External intents (Rasa's `trigger_intent` API) are not customer
messages and are left to the other policies, and so is everything once the status is
anything else (`returned` after a colleague hands back, `queued` while Slack is down).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.core.policies.policy import Policy, PolicyPrediction, confidence_scores_for
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME, EXTERNAL_MESSAGE_PREFIX
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from policies.domain_checks import require_action, require_slot


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class HandoffRelayPolicy(Policy):
    """Predicts the relay action after each customer message while a hand-off is active."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "priority": 5,
            "action": "action_relay_to_staff",
            "slot": "handoff_status",
            "active_values": ["requested", "held"],
        }

    def train(
        self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any
    ) -> Resource:
        """Nothing to learn; checks that the action and the slot exist."""
        require_action(self.__class__.__name__, self.config["action"], domain)
        require_slot(self.__class__.__name__, self.config["slot"], domain)
        return self._resource

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """Relay, then listen; abstain when no hand-off is active or the turn is external."""
        action = self.config["action"]
        # after a relay, listen, even when the relay found the conversation handed back
        # (it then sets `returned`): the message was handled, the next one is the customer's
        if tracker.latest_action_name == action:
            return self._prediction(confidence_scores_for(ACTION_LISTEN_NAME, 1.0, domain))
        if tracker.get_slot(self.config["slot"]) not in self.config["active_values"]:
            return self._prediction(self._default_predictions(domain))
        message = tracker.latest_message
        from_customer = (
            isinstance(message, UserUttered)
            and not (message.text or "").startswith(EXTERNAL_MESSAGE_PREFIX)
        )
        if tracker.latest_action_name != ACTION_LISTEN_NAME or not from_customer:
            return self._prediction(self._default_predictions(domain))
        return self._prediction(confidence_scores_for(action, 1.0, domain))
