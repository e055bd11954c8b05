"""What each kind of step compares, against one turn read back from the tracker.

A turn is what one `user` step caused: the tracker events from that user message on, and the
slots after it. `bot` and `utter` steps match the turn's bot messages in order, and `action`
steps its actions in order (each one after what the previous step of its kind matched;
others in between are allowed); every other check looks at the whole turn. A check returns
None when it holds, else (expected, got).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from bot.e2e.format import Step, is_regex, slot_expectations

#: The hand-off state slot of bot/handoff.py and actions/handoff.py.
HANDOFF_SLOT = "handoff_status"
#: Actions Rasa runs around every turn by itself.
IMPLICIT_ACTIONS = {"action_listen", "action_session_start", "action_extract_slots"}
Failure = Tuple[str, str]


@dataclass
class Turn:
    user: str
    events: List[Dict[str, Any]]
    slots: Dict[str, Any]
    cursor: int = 0  # index into bot_messages after the last matched bot/utter step
    action_cursor: int = 0  # index into actions() after the last matched action step
    bot_messages: List[Dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.bot_messages = [e for e in self.events if e.get("event") == "bot"]

    @property
    def parse_data(self) -> Dict[str, Any]:
        users = [e for e in self.events if e.get("event") == "user"]
        return (users[0].get("parse_data") or {}) if users else {}

    def actions(self) -> List[str]:
        return [e["name"] for e in self.events
                if e.get("event") == "action" and e.get("name") not in IMPLICIT_ACTIONS]

    def slot_events(self) -> List[Tuple[str, Any]]:
        return [(e["name"], e.get("value")) for e in self.events if e.get("event") == "slot"]


def template_regex(template: str) -> re.Pattern:
    """A response variation as a pattern: `{slot}` placeholders match any text."""
    parts = re.split(r"\{[A-Za-z_][A-Za-z0-9_]*\}", template)
    return re.compile(".+?".join(re.escape(p) for p in parts) + r"\Z", re.S)


def matches_text(expected: str, text: Optional[str]) -> bool:
    if text is None:
        return False
    if is_regex(expected):
        return re.search(expected[1:-1], text, re.S) is not None
    return text.strip() == expected.strip()


def _utter_name(message: Dict[str, Any]) -> Optional[str]:
    return (message.get("metadata") or {}).get("utter_action")


def is_response(name: str, message: Dict[str, Any], responses: Dict[str, List[Dict]]) -> bool:
    """The message came from response `name` (or one of its `name/…` retrieval responses):
    by the `utter_action` Rasa records in the bot event, else by the domain's variations."""
    uttered = _utter_name(message)
    if uttered:
        return uttered == name or uttered.startswith(name + "/")
    variations = [v for key, vs in responses.items()
                  if key == name or key.startswith(name + "/") for v in vs]
    text = message.get("text") or ""
    return any(v.get("text") and template_regex(v["text"]).match(text.strip())
               for v in variations)


def _describe(message: Dict[str, Any]) -> str:
    name = _utter_name(message)
    return f"{message.get('text')!r}" + (f" ({name})" if name else "")


def _messages(turn: Turn, since: int) -> str:
    shown = [_describe(m) for m in turn.bot_messages[since:]]
    return "; ".join(shown) if shown else "no bot message"


def _ordered(turn: Turn, wanted: str, test: Any) -> Optional[Failure]:
    for offset, message in enumerate(turn.bot_messages[turn.cursor:]):
        if test(message):
            turn.cursor += offset + 1
            return None
    already = f" after the {turn.cursor} already matched" if turn.cursor else ""
    return wanted, f"bot messages in this turn{already}: {_messages(turn, turn.cursor)}"


def path_value(data: Any, path: str) -> Tuple[bool, Any]:
    """(found, value) at a dotted path; integer parts index lists (`sources.0.title`)."""
    for part in path.split("."):
        index = int(part) if part.lstrip("-").isdigit() else None
        if isinstance(data, list) and index is not None and -len(data) <= index < len(data):
            data = data[index]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return False, None
    return True, data


def value_matches(expected: Any, got: Any) -> bool:
    """Equality; `nonempty` for any non-empty value; `/regex/` against a string."""
    if expected == "nonempty":
        return got not in (None, "", [], {})
    if is_regex(expected) and isinstance(got, str):
        return re.search(expected[1:-1], got, re.S) is not None
    return got == expected


def _payload_matches(payload: Any, expected: Dict[str, Any]) -> bool:
    for path, want in expected.items():
        found, got = path_value(payload, path)
        if not found or not value_matches(want, got):
            return False
    return True


def check_custom(turn: Turn, expected: Dict[str, Any]) -> Optional[Failure]:
    """Some bot message of the turn carries a custom (json_message) payload that matches."""
    payloads = [m["data"]["custom"] for m in turn.bot_messages
                if (m.get("data") or {}).get("custom") is not None]
    if any(_payload_matches(payload, expected) for payload in payloads):
        return None
    if not payloads:
        return (f"a bot message with a custom payload matching {expected}",
                f"no custom payload; bot messages: {_messages(turn, 0)}")
    return f"a custom payload with {expected}", f"custom payloads: {payloads}"


def check_slot_was_set(turn: Turn, value: Any) -> Optional[Failure]:
    """Rasa Pro's meaning: a SlotSet event in this turn set the slot (to the value, if given)."""
    events = turn.slot_events()
    for slot, expected, given in slot_expectations(value):
        values = [v for name, v in events if name == slot]
        ok = expected in values if given else any(v is not None for v in values)
        if not ok:
            want = f"{slot} set to {expected!r}" if given else f"{slot} set (to any value)"
            got = (f"{slot} set to {', '.join(map(repr, values))} in this turn" if values
                   else f"{slot} not set in this turn")
            return want, f"{got}; now {turn.slots.get(slot)!r}"
    return None


def check_slots(turn: Turn, expected: Dict[str, Any]) -> Optional[Failure]:
    """The tracker's slot values after the turn."""
    for slot, want in expected.items():
        if slot not in turn.slots:
            return f"{slot} = {want!r}", f"the domain has no slot {slot!r}"
        if not value_matches(want, turn.slots[slot]):
            return f"{slot} = {want!r} after the turn", f"{slot} = {turn.slots[slot]!r}"
    return None


def check(step: Step, turn: Turn, responses: Dict[str, List[Dict]]) -> Optional[Failure]:
    """Whether `step` holds for `turn`; `responses` are the domain's, for `utter`."""
    kind, value = step.kind, step.value
    if kind == "bot":
        return _ordered(turn, f"bot says {value!r}", lambda m: matches_text(value, m.get("text")))
    if kind == "utter":
        if value not in responses and not any(k.startswith(value + "/") for k in responses):
            return f"response {value}", f"the domain has no response {value!r}"
        return _ordered(turn, f"response {value}", lambda m: is_response(value, m, responses))
    if kind == "action":
        ran = turn.actions()
        if value in ran[turn.action_cursor:]:
            turn.action_cursor = ran.index(value, turn.action_cursor) + 1
            return None
        after = f" after {ran[turn.action_cursor - 1]}" if turn.action_cursor else ""
        return f"action {value} runs{after}", f"actions run: {', '.join(ran) or 'none'}"
    if kind == "intent":
        got = (turn.parse_data.get("intent") or {}).get("name")
        return None if got == value else (f"intent {value}", f"intent {got}")
    if kind == "sentiment":
        sentiment = turn.parse_data.get("sentiment") or {}
        got = sentiment.get("label")
        return None if got == value else (
            f"sentiment {value}", f"sentiment {got} (score {sentiment.get('score')})"
            if sentiment else "no sentiment in the parse data")
    if kind == "handoff":
        got = turn.slots.get(HANDOFF_SLOT)
        want = None if value in (None, "none") else value
        return None if got == want else (f"{HANDOFF_SLOT} = {want!r}", f"{HANDOFF_SLOT} = {got!r}")
    if kind == "slot_was_set":
        return check_slot_was_set(turn, value)
    if kind == "slot_was_not_set":
        for slot, _, _ in slot_expectations(value):
            values = [v for name, v in turn.slot_events() if name == slot and v is not None]
            if values:
                return f"{slot} not set in this turn", f"{slot} set to {values[-1]!r}"
        return None
    if kind == "slots":
        return check_slots(turn, value)
    if kind == "custom":
        return check_custom(turn, value)
    raise ValueError(f"unknown step kind {kind!r}")  # format.py refuses these earlier
