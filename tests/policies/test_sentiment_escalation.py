"""The escalation policy's decisions on trackers with stored sentiment scores."""

from typing import List, Optional, Tuple

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import InvalidConfigException

from policies.sentiment_escalation import SentimentEscalationPolicy

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, complaint, order_status, request_human]
actions: [action_handoff, utter_greet]
responses:
  utter_greet:
  - text: hi
"""
)


def policy(tmp_path, **config) -> SentimentEscalationPolicy:
    return SentimentEscalationPolicy.create(
        {**SentimentEscalationPolicy.get_default_config(), **config},
        LocalModelStorage(tmp_path), Resource("escalation"),
        ExecutionContext(GraphSchema({}), "test"),
    )


def tracker(turns: List[Tuple[str, Optional[float]]], after_each: str = "utter_greet") -> DialogueStateTracker:
    """User turns (intent, sentiment score or None), each answered by `after_each`."""
    events = [ActionExecuted(ACTION_LISTEN_NAME)]
    for index, (intent, score) in enumerate(turns):
        parse = {"intent": {"name": intent, "confidence": 0.9}, "entities": []}
        if score is not None:
            parse["sentiment"] = {"label": "x", "score": score, "model": "test"}
        events.append(UserUttered(f"turn {index}", parse["intent"], [], parse))
        if index < len(turns) - 1:
            events += [ActionExecuted(after_each), ActionExecuted(ACTION_LISTEN_NAME)]
    return DialogueStateTracker.from_events("customer", events)


def predicted(policy_, tracker_) -> Optional[str]:
    prediction = policy_.predict_action_probabilities(tracker_, DOMAIN)
    if max(prediction.probabilities) == 0:
        return None
    return DOMAIN.action_names_or_texts[prediction.max_confidence_index]


def test_mood_turning_sour_over_several_turns_hands_off(tmp_path):
    assert predicted(policy(tmp_path), tracker([("order_status", -0.2), ("order_status", -0.5), ("order_status", -0.7)])) == "action_handoff"


def test_happy_or_neutral_customers_are_left_alone(tmp_path):
    assert predicted(policy(tmp_path), tracker([("greet", 0.5), ("order_status", 0.0), ("order_status", -0.3)])) is None


def test_one_bad_turn_is_not_enough_without_a_complaint(tmp_path):
    assert predicted(policy(tmp_path), tracker([("order_status", -0.9)])) is None


def test_one_very_negative_complaint_hands_off(tmp_path):
    assert predicted(policy(tmp_path), tracker([("complaint", -0.8)])) == "action_handoff"


def test_a_mild_complaint_does_not(tmp_path):
    assert predicted(policy(tmp_path), tracker([("complaint", -0.3)])) is None


def test_does_not_fire_twice_in_a_row(tmp_path):
    turns = [("order_status", -0.6), ("order_status", -0.7), ("complaint", -0.9)]
    assert predicted(policy(tmp_path), tracker(turns, after_each="action_handoff")) is None


def test_waits_for_the_customer_after_the_hand_off(tmp_path):
    t = tracker([("complaint", -0.9)])
    t.update(ActionExecuted("action_handoff"))
    assert predicted(policy(tmp_path), t) == ACTION_LISTEN_NAME


def test_turns_without_a_score_are_ignored(tmp_path):
    assert predicted(policy(tmp_path), tracker([("order_status", None), ("order_status", None)])) is None


def test_thresholds_are_configurable(tmp_path):
    turns = [("order_status", -0.2), ("order_status", -0.25)]
    assert predicted(policy(tmp_path), tracker(turns)) is None
    assert predicted(policy(tmp_path, mean_threshold=-0.2), tracker(turns)) == "action_handoff"


def test_it_yields_to_rules_by_priority(tmp_path):
    # RulePolicy's priority is 4, MemoizationPolicy's 3: rules win, stories lose.
    assert 3 < policy(tmp_path).priority < 4


def test_unknown_action_fails_training(tmp_path):
    with pytest.raises(InvalidConfigException, match="action_call_manager"):
        policy(tmp_path, action="action_call_manager").train([], DOMAIN)


def test_bad_window_is_rejected(tmp_path):
    with pytest.raises(InvalidConfigException, match="window"):
        policy(tmp_path, window=2, min_turns=3)
