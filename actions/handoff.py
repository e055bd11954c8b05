"""``action_handoff``: queue the conversation for a human colleague.

The hand-off row carries the conversation id, the intent and the last thing
the customer said, so the colleague who picks it up can start without asking
the customer to repeat themselves.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.base import StoreAction, in_thread
from actions.store import Store


def handoff_text(reference: int) -> str:
    """What the customer reads once the hand-off is queued."""
    return (
        "Of course! I'm passing you to a colleague from our customer care team. They'll see "
        "our conversation so far, so you won't have to repeat yourself, and someone will be "
        f"with you shortly. Your reference is HO-{reference}."
    )


class ActionHandoff(StoreAction):
    """Records a hand-off request and tells the customer a colleague will take over."""

    unavailable_text = (
        "I'm sorry, I couldn't pass you to a colleague just now because our system isn't "
        "responding. Please try again in a few minutes, or use the Contact us page on our "
        "website to reach our customer care team."
    )

    def name(self) -> Text:
        return "action_handoff"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any],
        store: Store,
    ) -> List[Dict[Text, Any]]:
        message = tracker.latest_message or {}
        intent = (message.get("intent") or {}).get("name")
        reference = await in_thread(
            store.record_handoff, tracker.sender_id, intent, message.get("text")
        )
        dispatcher.utter_message(text=handoff_text(reference))
        return []
