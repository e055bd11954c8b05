"""The Rasa side of a human hand-off: what a colleague's actions in Slack do to the
customer's conversation.

The action server asked a colleague to join (``action_handoff`` set ``handoff_status`` to
``requested``); from then on the colleague's clicks and thread replies arrive at the Slack
channel (``bot/slack.py``), which calls this module with the running Rasa agent:

* taking and handing back set the ``handoff_status`` / ``handoff_staff`` slots and run the
  domain's ``utter_handoff_taken`` / ``utter_handoff_returned`` response, as Rasa's
  ``/conversations/<id>/execute`` API does, so the domain decides what the customer is told;
* a colleague's reply goes to the customer's own channel (the widget's socket, for example)
  and is stored as a ``bot`` event with ``{"handoff_staff": name}`` metadata, so the
  transcript and the analytics keep it.

Only the colleague who took a conversation may answer in it or hand it back: the Slack user
id of whoever took it travels as metadata of the ``handoff_staff`` slot event (so it is in
the tracker store, under the conversation's lock, with no extra slot in the domain), and
anyone else gets ``HeldByOther``.

All of it runs under the conversation's lock, like any other message Rasa handles.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, Optional, Text, Tuple

from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, OutputChannel
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import BotUttered, SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

logger = logging.getLogger(__name__)

HANDOFF_STATUS = "handoff_status"
HANDOFF_STAFF = "handoff_staff"
STAFF_ID = "staff_id"  # metadata key of the handoff_staff slot event: who took it


class HeldByOther(Exception):
    """Another colleague holds the conversation; ``holder`` is their name."""

    def __init__(self, holder: Text) -> None:
        super().__init__(f"{holder} holds this conversation")
        self.holder = holder


def holder_id(tracker: DialogueStateTracker) -> Optional[Text]:
    """The Slack user id of the colleague who took the conversation last."""
    for event in reversed(tracker.events):
        if isinstance(event, SlotSet) and event.key == HANDOFF_STAFF:
            return (event.metadata or {}).get(STAFF_ID)
    return None


def check_holder(tracker: DialogueStateTracker, staff_id: Text) -> None:
    """Raises ``HeldByOther`` unless `staff_id` holds the (held) conversation."""
    if tracker.get_slot(HANDOFF_STATUS) == "held" and holder_id(tracker) != staff_id:
        raise HeldByOther(tracker.get_slot(HANDOFF_STAFF) or "another colleague")


def customer_output(
    input_channels: Iterable[InputChannel], tracker: DialogueStateTracker
) -> OutputChannel:
    """The output channel of the customer's latest input channel (as Rasa's HTTP API does
    for ``output_channel=latest``); channels that cannot push (REST) only get the tracker."""
    latest = tracker.get_latest_input_channel()
    for channel in input_channels:
        if channel.name() == latest:
            output = channel.get_output_channel()
            if output is not None:
                return output
    return CollectingOutputChannel()


class HandoffRelay:
    """Applies a colleague's Slack actions to the customer's conversation."""

    def __init__(self, agent: Agent, input_channels: Iterable[InputChannel]) -> None:
        self.agent = agent
        self.input_channels = list(input_channels)

    async def status(self, conversation_id: Text) -> Optional[Text]:
        """``requested``, ``held``, ``queued``, ``returned`` or ``None`` (never handed off)."""
        tracker = await self.agent.processor.get_tracker(conversation_id)
        return tracker.get_slot(HANDOFF_STATUS)

    async def _switch(self, conversation_id: Text, staff_id: Text, expected: Tuple[Text, ...],
                      slots: Dict[Text, Any], response: Text) -> bool:
        """Sets the hand-off slots and tells the customer, as Rasa's `/execute` API would;
        raises ``HeldByOther`` if another colleague holds the conversation."""
        async with self.agent.lock_store.lock(conversation_id):
            tracker = await self.agent.processor.get_tracker(conversation_id)
            check_holder(tracker, staff_id)
            if tracker.get_slot(HANDOFF_STATUS) not in expected:
                return False
            for slot, value in slots.items():
                metadata = {STAFF_ID: staff_id} if slot == HANDOFF_STAFF else None
                tracker.update(SlotSet(slot, value, metadata=metadata))
            await self.agent.processor.save_tracker(tracker)
            output = customer_output(self.input_channels, tracker)
            # the response, then listening: the customer's next message starts a normal turn
            for action in (response, ACTION_LISTEN_NAME):
                await self.agent.execute_action(conversation_id, action, output,
                                                policy=None, confidence=None)
        return True

    async def take(self, conversation_id: Text, staff_id: Text, staff_name: Text) -> bool:
        """The colleague takes a waiting conversation (posted at once, or after an outage
        while the assistant carried on); False if nobody is waiting."""
        return await self._switch(conversation_id, staff_id, ("requested", "queued"),
                                  {HANDOFF_STATUS: "held", HANDOFF_STAFF: staff_name},
                                  "utter_handoff_taken")

    async def give_back(self, conversation_id: Text, staff_id: Text) -> bool:
        """The colleague who holds the conversation hands it back to the assistant."""
        return await self._switch(conversation_id, staff_id, ("held",),
                                  {HANDOFF_STATUS: "returned"}, "utter_handoff_returned")

    async def staff_says(self, conversation_id: Text, staff_id: Text, staff_name: Text,
                         text: Text) -> bool:
        """Delivers a reply of the colleague who holds the conversation to the customer;
        False unless it is held, ``HeldByOther`` if someone else holds it."""
        async with self.agent.lock_store.lock(conversation_id):
            tracker = await self.agent.processor.get_tracker(conversation_id)
            check_holder(tracker, staff_id)
            if tracker.get_slot(HANDOFF_STATUS) != "held":
                return False
            output = customer_output(self.input_channels, tracker)
            await output.send_text_message(conversation_id, text)
            tracker.update(BotUttered(text, metadata={"handoff_staff": staff_name}))
            await self.agent.processor.save_tracker(tracker)
        logger.debug("relayed a reply from %s to %s", staff_name, conversation_id)
        return True
