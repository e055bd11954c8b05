"""Hand-off to a human colleague, and the customer's side of the relay while one holds it.

``action_handoff`` records the request in the store and posts it to the staff channel
(``actions/staff_channel.py``) with a summary, the last turns and the sentiment trend. The
``handoff_status`` slot it sets is what the Rasa side acts on:

* ``requested``: posted; from now on ``policies.handoff_relay.HandoffRelayPolicy`` sends
  every customer message to ``action_relay_to_staff`` and the assistant stays quiet;
* ``held``: a colleague took it in Slack (set by the ``handoff_taken`` external intent);
* ``queued``: Slack is not configured or did not answer: the request waits in the store and is
  posted when Slack answers again; meanwhile the assistant carries on helping.
"""

from __future__ import annotations

import json
from abc import ABC
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import StoreAction, in_thread
from actions.handoff_summary import HandoffSummary, slack_escape
from actions.replies import Reply
from actions.staff_channel import (
    StaffChannel, StaffChannelSettings, StaffChannelUnavailable, keep_retrying,
    post_waiting_handoffs,
)
from actions.store import Store

HANDOFF_STATUS = "handoff_status"
#: "I couldn't pass that on to our colleague just now …"
RELAY_FAILED = Reply("utter_relay_failed")


class StaffChannelAction(StoreAction, ABC):
    """A store-backed action that talks to the staff channel (settings injectable for tests)."""

    def __init__(self, store: Optional[Store] = None,
                 settings: Optional[StaffChannelSettings] = None) -> None:
        super().__init__(store)
        self._settings = settings

    def staff_channel_settings(self) -> Optional[StaffChannelSettings]:
        """The injected settings, else the environment's (read per run, like the store)."""
        return self._settings or StaffChannelSettings.from_env()


class ActionHandoff(StaffChannelAction):
    """Records a hand-off request and asks a colleague in the staff channel to take over."""

    unavailable_reply = Reply("utter_handoff_unavailable")

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
        settings = self.staff_channel_settings()
        values = {"reference": f"HO-{reference}"}
        if settings is None:
            Reply("utter_handoff_queued", values).send(dispatcher)
            return [SlotSet(HANDOFF_STATUS, "queued")]
        email = tracker.get_slot("email")
        customer = await in_thread(store.customer_by_email, email) if email else None
        summary = HandoffSummary.from_tracker(tracker, reference, customer)
        await in_thread(store.attach_staff_message, reference, json.dumps(summary.to_slack()))
        channel = StaffChannel(settings)
        # Older requests that are still waiting go first; this one is the newest.
        if await post_waiting_handoffs(channel, store) == 0:
            Reply("utter_handoff_posted", values).send(dispatcher)
            return [SlotSet(HANDOFF_STATUS, "requested")]
        keep_retrying(channel, store)
        # the colleague follows up by email when the customer gave one
        Reply("utter_handoff_unreachable" if email else "utter_handoff_unreachable_no_email",
              {**values, "email": email}).send(dispatcher)
        return [SlotSet(HANDOFF_STATUS, "queued")]


class ActionRelayToStaff(StaffChannelAction):
    """Posts the customer's message into the hand-off thread while a colleague is on it."""

    def name(self) -> Text:
        return "action_relay_to_staff"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any],
        store: Store,
    ) -> List[Dict[Text, Any]]:
        text = (tracker.latest_message or {}).get("text") or ""
        settings = self.staff_channel_settings()
        thread = await in_thread(store.handoff_thread, tracker.sender_id)
        if settings is None or thread is None:
            RELAY_FAILED.send(dispatcher)
            return []
        try:
            await StaffChannel(settings).post_in_thread(
                thread[0], thread[1], f"*Customer:* {slack_escape(text)}")
        except StaffChannelUnavailable:
            RELAY_FAILED.send(dispatcher)
        return []
