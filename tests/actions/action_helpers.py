"""Helpers for the action tests: the domain Rasa sends, trackers, running actions.

Kept out of ``conftest.py`` so test modules can import them by name.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.schema import TABLES

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The domain's responses, which the actions name instead of holding texts.
RESPONSES: Dict[str, List[Dict[str, Any]]] = yaml.safe_load(
    (REPO_ROOT / "domain.yml").read_text(encoding="utf-8"))["responses"]

#: The parts of a Rasa 3.6 domain the validation actions read.
DOMAIN: Dict[str, Any] = {
    "slots": {
        "order_id": {"type": "text", "mappings": [{"type": "from_entity", "entity": "order_id"}]},
        "email": {"type": "text", "mappings": [{"type": "from_entity", "entity": "email"}]},
        "product": {"type": "text", "mappings": [{"type": "from_entity", "entity": "product"}]},
        "return_reason": {
            "type": "text",
            "mappings": [{"type": "from_text", "conditions": [
                {"active_loop": "return_form", "requested_slot": "return_reason"}]}],
        },
        "confirm_cancel": {
            "type": "bool",
            "mappings": [
                {"type": "from_intent", "intent": "affirm", "value": True, "conditions": [
                    {"active_loop": "cancel_order_form", "requested_slot": "confirm_cancel"}]},
                {"type": "from_intent", "intent": "deny", "value": False, "conditions": [
                    {"active_loop": "cancel_order_form", "requested_slot": "confirm_cancel"}]},
            ],
        },
    },
    "forms": {
        "order_status_form": {"required_slots": ["order_id", "email"]},
        "cancel_order_form": {"required_slots": ["order_id", "email", "confirm_cancel"]},
        "return_form": {"required_slots": ["order_id", "email", "return_reason"]},
    },
}

#: The contract's customers in index order (docs/demo-assistant.md), with memberships.
CONTRACT_CUSTOMERS = [
    ("Alessandro Phoenix", "gold"), ("Joyce Wu", "silver"), ("Albert Sanders", "bronze"),
    ("David Williams", "guest"), ("Sanya Afzal", "gold"), ("Crystal Minh", "silver"),
    ("Chloe Zhang", "bronze"), ("Rodriguez Domingo", "guest"), ("Joseph Banter", "gold"),
    ("Norman Bouchard", "silver"),
]


def owner_email(order_id: str) -> str:
    """The contract's rule: ORD-100NN belongs to customer (NN - 1) % 10, first.last@example.com."""
    number = int(order_id.split("-")[1]) - 10000
    name = CONTRACT_CUSTOMERS[(number - 1) % 10][0]
    return name.lower().replace(" ", ".") + "@example.com"


def dump(path: Path) -> Dict[str, List[tuple]]:
    """Every row of every table, to compare database states."""
    conn = sqlite3.connect(path)
    try:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}
    finally:
        conn.close()


def make_tracker(
    slots: Optional[Dict[str, Any]] = None,
    *,
    text: str = "",
    intent: str = "inform",
    entities: Optional[List[Dict[str, Any]]] = None,
    candidates: Optional[Dict[str, Any]] = None,
    active_loop: Optional[str] = None,
    sender_id: str = "test-conversation",
) -> Tracker:
    """A tracker as Rasa sends it: ``candidates`` are the slots just extracted for validation."""
    candidates = candidates or {}
    all_slots = {"order_id": None, "email": None, "product": None, "return_reason": None,
                 "confirm_cancel": None, "requested_slot": None}
    all_slots.update(slots or {})
    all_slots.update(candidates)
    events: List[Dict[str, Any]] = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}},
    ]
    events += [{"event": "slot", "name": k, "value": v} for k, v in candidates.items()]
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.99},
              "entities": entities or []}
    loop = {"name": active_loop} if active_loop else {}
    return Tracker(sender_id, all_slots, latest, events, False, None, loop, "action_listen")


def rendered(message: Dict[str, Any], slots: Dict[str, Any]) -> str:
    """The text the customer reads for a message an action sent: a domain response filled
    the way Rasa's response generator does (`rasa.core.nlg.interpolator.interpolate_text`:
    slot values, overridden by the values the action passed). A placeholder with no value
    fails here, where Rasa would show the raw `{name}` to the customer."""
    name = message.get("response")
    if not name:
        return message["text"]
    (variation,) = RESPONSES[name]  # the actions' responses have one wording each
    return re.sub(r"{([^\n{}]+?)}", r"{0[\1]}", variation["text"]).format({**slots, **message})


def run(action: Action, tracker: Tracker, domain: Optional[Dict[str, Any]] = None
        ) -> Tuple[List[str], List[Dict[str, Any]]]:
    """Run an action like the SDK does; returns (texts the customer reads, events returned)."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, domain or DOMAIN))
    return [rendered(m, tracker.slots) for m in dispatcher.messages], events


def slot_values(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The ``SlotSet`` events as {slot: value} (``requested_slot`` left out)."""
    return {e["name"]: e["value"] for e in events
            if e.get("event") == "slot" and e["name"] != "requested_slot"}
