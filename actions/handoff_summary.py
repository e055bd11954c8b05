"""What a colleague sees when a conversation is handed to them: the Slack message.

Everything comes from the tracker Rasa sends with the action call: who the customer is (the
email slot, looked up in the store), why they were handed over, the intents so far, the last
turns and the sentiment trend that ``nlu.sentiment.SentimentAnalyzer`` stored on each user turn.
Customer text is escaped for Slack, so "<!channel>" in a message cannot ping anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from rasa_sdk import Tracker

from actions.records import Customer

#: The event type of the parent message's Slack metadata; bot/slack.py looks for it.
HANDOFF_EVENT_TYPE = "csbot_handoff"
TAKE_ACTION_ID = "handoff_take"
LAST_TURNS = 6
MAX_TURN_CHARS = 300
#: Intents that say nothing about what the customer wants.
SMALL_TALK = {"greet", "goodbye", "affirm", "deny", "thank", "bot_challenge", "nlu_fallback"}


def slack_escape(text: str) -> str:
    """Slack's three control characters (https://api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TURN_CHARS else text[: MAX_TURN_CHARS - 1] + "…"


@dataclass
class HandoffSummary:
    """The facts of one hand-off request, rendered as a Slack ``chat.postMessage``."""

    conversation_id: str
    reference: int
    customer: str
    channel: str
    reason: str
    topics: List[str] = field(default_factory=list)
    turns: List[Tuple[str, str]] = field(default_factory=list)
    sentiment: List[float] = field(default_factory=list)

    @classmethod
    def from_tracker(
        cls, tracker: Tracker, reference: int, customer: Optional[Customer]
    ) -> "HandoffSummary":
        email = tracker.get_slot("email")
        if customer is not None:
            who = f"{customer.name} <{customer.email}> ({customer.membership} member)"
        elif email:
            who = f"{email} (no account with this email)"
        else:
            who = "not identified (no email given)"
        users = [e for e in tracker.events if e.get("event") == "user"
                 and not str(e.get("text") or "").startswith("EXTERNAL: ")]
        intents = [((e.get("parse_data") or {}).get("intent") or {}).get("name") for e in users]
        topics = list(dict.fromkeys(i for i in intents if i and i not in SMALL_TALK))
        order_id = tracker.get_slot("order_id")
        if order_id:
            topics.append(f"order {order_id}")
        sentiment = [
            float(e["parse_data"]["sentiment"]["score"]) for e in users
            if isinstance((e.get("parse_data") or {}).get("sentiment"), dict)
        ]
        turns = [
            ("Customer" if e["event"] == "user" else "Assistant", _clip(e.get("text") or ""))
            for e in tracker.events
            if e.get("event") in ("user", "bot") and e.get("text")
            and not str(e.get("text")).startswith("EXTERNAL: ")
        ][-LAST_TURNS:]
        latest_intent = intents[-1] if intents else None
        asked = latest_intent == "request_human" or (
            latest_intent == "affirm" and _last_bot_action(tracker) == "utter_offer_human")
        reason = ("asked for a person" if asked
                  else "the assistant noticed the customer is unhappy (sentiment policy)")
        return cls(tracker.sender_id, reference, who, tracker.get_latest_input_channel() or "web",
                   reason, topics, turns, sentiment)

    def trend(self) -> str:
        """E.g. ``+0.20 → -0.45 → -0.80 (falling)`` over the last five user turns."""
        scores = self.sentiment[-5:]
        if not scores:
            return "no sentiment scores"
        direction = ""
        if len(scores) > 1:
            delta = scores[-1] - scores[0]
            direction = " (falling)" if delta < -0.2 else " (rising)" if delta > 0.2 else " (steady)"
        return " → ".join(f"{s:+.2f}" for s in scores) + direction

    def to_slack(self) -> Dict[str, Any]:
        """``chat.postMessage`` arguments: text fallback, Block Kit, metadata for the thread."""
        title = f"Hand-off HO-{self.reference}: {self.reason}"
        facts = (
            f"*Customer:* {slack_escape(self.customer)}\n"
            f"*Conversation:* `{slack_escape(self.conversation_id)}` ({self.channel})\n"
            f"*Asked about:* {slack_escape(', '.join(self.topics) or 'nothing specific yet')}\n"
            f"*Sentiment:* {self.trend()}"
        )
        transcript = "\n".join(f"*{who}:* {slack_escape(text)}" for who, text in self.turns)
        return {
            "text": title,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": facts}},
                {"type": "section", "text": {"type": "mrkdwn",
                                             "text": (transcript or "_no messages_")[:3000]}},
                {"type": "actions", "block_id": "handoff", "elements": [{
                    "type": "button", "style": "primary", "action_id": TAKE_ACTION_ID,
                    "text": {"type": "plain_text", "text": "Take conversation"},
                    "value": self.conversation_id,
                }]},
            ],
            "metadata": {"event_type": HANDOFF_EVENT_TYPE, "event_payload": {
                "conversation_id": self.conversation_id, "reference": self.reference}},
        }


def _last_bot_action(tracker: Tracker) -> Optional[str]:
    """The last action before this one, other than listening and slot extraction."""
    for event in reversed(tracker.events):
        name = event.get("name") if event.get("event") == "action" else None
        if name and name not in ("action_listen", "action_extract_slots"):
            return name
    return None
