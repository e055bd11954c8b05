"""The relay policy: quiet assistant while a colleague is on the conversation, and only then."""

from typing import Optional

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import InvalidConfigException

from policies.handoff_relay import HandoffRelayPolicy

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, order_status, request_human]
slots:
  handoff_status:
    type: text
    influence_conversation: false
    mappings: [{type: custom}]
actions: [action_handoff, action_relay_to_staff, utter_greet]
responses:
  utter_greet:
  - text: hi
"""
)


def policy(tmp_path, **config) -> HandoffRelayPolicy:
    return HandoffRelayPolicy.create(
        {**HandoffRelayPolicy.get_default_config(), **config}, LocalModelStorage(tmp_path),
        Resource("relay"), ExecutionContext(GraphSchema({}), "test"))


def tracker(status: Optional[str], *after: str, external: bool = False) -> DialogueStateTracker:
    """A hand-off with `status`, then one customer message, then the actions `after`."""
    message = (UserUttered.create_external("order_status", []) if external
               else UserUttered("where is my order?", {"name": "order_status", "confidence": 0.9}))
    events = [ActionExecuted(ACTION_LISTEN_NAME),
              UserUttered("a person please", {"name": "request_human", "confidence": 0.9}),
              ActionExecuted("action_handoff"), SlotSet("handoff_status", status),
              ActionExecuted(ACTION_LISTEN_NAME), message]
    events += [ActionExecuted(name) for name in after]
    return DialogueStateTracker.from_events("customer", events, slots=DOMAIN.slots)


def predicted(policy_, tracker_) -> Optional[str]:
    prediction = policy_.predict_action_probabilities(tracker_, DOMAIN)
    if max(prediction.probabilities) == 0:
        return None
    return DOMAIN.action_names_or_texts[prediction.max_confidence_index]


@pytest.mark.parametrize("status", ["requested", "held"])
def test_customer_messages_go_to_the_colleague_then_the_bot_listens(tmp_path, status):
    relay = policy(tmp_path)
    assert predicted(relay, tracker(status)) == "action_relay_to_staff"
    assert predicted(relay, tracker(status, "action_relay_to_staff")) == ACTION_LISTEN_NAME


def test_the_bot_listens_after_a_relay_that_found_the_conversation_handed_back(tmp_path):
    relayed = tracker("held", "action_relay_to_staff")
    relayed.update(SlotSet("handoff_status", "returned"))  # what the relay action does then
    assert predicted(policy(tmp_path), relayed) == ACTION_LISTEN_NAME


@pytest.mark.parametrize("status", [None, "queued", "returned"])
def test_without_an_active_handoff_the_policy_abstains(tmp_path, status):
    assert predicted(policy(tmp_path), tracker(status)) is None


def test_external_events_are_not_relayed(tmp_path):
    assert predicted(policy(tmp_path), tracker("held", external=True)) is None


def test_training_fails_clearly_when_the_action_is_missing(tmp_path):
    with pytest.raises(InvalidConfigException, match="action 'action_ask_a_human'"):
        policy(tmp_path, action="action_ask_a_human").train([], DOMAIN)


def test_training_fails_clearly_when_the_slot_is_missing(tmp_path):
    with pytest.raises(InvalidConfigException, match="slot 'human_status'"):
        policy(tmp_path, slot="human_status").train([], DOMAIN)
