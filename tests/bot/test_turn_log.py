"""The per-turn log broker, created and fed the way Rasa does it."""

import asyncio
import json
import logging

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig, read_endpoint_config

from bot.turn_log import TurnLogBroker

TIMESTAMP = 1_700_000_000.25


def create(path) -> TurnLogBroker:
    broker = asyncio.run(
        EventBroker.create(EndpointConfig(type="bot.turn_log.TurnLogBroker", path=str(path)))
    )
    assert isinstance(broker, TurnLogBroker)
    return broker


def user(text: str, **extra) -> UserUttered:
    return UserUttered(
        text,
        intent={"name": "complaint", "confidence": 0.91},
        parse_data={"sentiment": {"label": "negative", "score": -0.72, "model": "vader"}},
        timestamp=TIMESTAMP,
        input_channel="rest",
        **extra,
    )


def published(event, sender_id="conv-1") -> dict:
    """What Rasa's tracker store publishes: `{"sender_id": ...}` updated with `as_dict()`."""
    body = {"sender_id": sender_id}
    body.update(event.as_dict())
    return body


def lines(path) -> list:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_one_redacted_line_per_user_turn(tmp_path):
    path = tmp_path / "logs" / "nested" / "turns.jsonl"  # folder does not exist yet
    broker = create(path)
    assert broker.is_ready()
    broker.publish(published(user("I'm bob@example.com, call +1 555 123 4567 about ORD-10042")))

    assert lines(path) == [{
        "timestamp": "2023-11-14T22:13:20.250000+00:00",
        "conversation_id": "conv-1",
        "channel": "rest",
        "text": "I'm [EMAIL], call [PHONE] about ORD-10042",
        "intent": "complaint",
        "intent_confidence": 0.91,
        "sentiment_label": "negative",
        "sentiment_score": -0.72,
        "sentiment_model": "vader",
    }]
    asyncio.run(broker.close())


def test_other_events_write_nothing(tmp_path):
    path = tmp_path / "turns.jsonl"
    broker = create(path)
    for event in [ActionExecuted("action_listen"), BotUttered("Hi bob@example.com"),
                  SlotSet("email", "bob@example.com"), SessionStarted(),
                  ActionExecuted("action_handoff")]:
        broker.publish(published(event))
    assert not path.exists()


def test_appends_and_tolerates_missing_fields(tmp_path):
    path = tmp_path / "turns.jsonl"
    broker = create(path)
    broker.publish(published(user("first")))
    broker.publish(published(UserUttered("card 4111 1111 1111 1111"), sender_id="conv-2"))
    broker.publish({"event": "user"})  # nothing but the type

    first, second, bare = lines(path)
    assert first["text"] == "first"
    assert second["conversation_id"] == "conv-2" and second["text"] == "card [CARD]"
    assert second["intent"] is None and second["sentiment_score"] is None
    assert bare["text"] == "" and bare["timestamp"] is None


def test_write_error_is_logged_not_raised(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    broker = TurnLogBroker(blocker / "turns.jsonl")
    with caplog.at_level(logging.ERROR, logger="bot.turn_log"):
        broker.publish(published(user("hello")))
    assert "could not write" in caplog.text
    assert not broker.is_ready()


def test_configured_in_endpoints_and_fed_by_a_tracker_store(tmp_path):
    """The endpoints.yml form of docs/analytics.md, then Rasa's own streaming on save."""
    path = tmp_path / "turns.jsonl"
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        f"event_broker:\n  type: bot.turn_log.TurnLogBroker\n  path: {path}\n", encoding="utf-8"
    )
    broker = asyncio.run(EventBroker.create(read_endpoint_config(str(endpoints), "event_broker")))
    assert isinstance(broker, TurnLogBroker) and broker.path == path

    store = InMemoryTrackerStore(Domain.empty(), event_broker=broker)
    tracker = DialogueStateTracker.from_events("web-7", [
        ActionExecuted("action_listen"),
        user("my address is 12 Oak Court, Springfield, IL 62704"),
        ActionExecuted("utter_ask_order"),
        BotUttered("Which order?"),
        ActionExecuted("action_listen"),
        user("ORD-10042"),
    ])
    asyncio.run(store.save(tracker))

    logged = lines(path)
    assert [line["text"] for line in logged] == ["my address is [ADDRESS]", "ORD-10042"]
    assert {line["conversation_id"] for line in logged} == {"web-7"}
