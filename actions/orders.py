"""The order actions that run after the forms: status, cancellation, return.

Each one re-checks that the order exists and belongs to the email in the
slots before reading or changing it: the forms normally guarantee that, but
the action is where data is disclosed or changed, so it must not rely on it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import replies
from actions.base import StoreAction, in_thread
from actions.formatting import amount, day
from actions.normalise import normalise_email, normalise_order_id
from actions.records import (
    RETURN_WINDOW_DAYS,
    CancelOutcome,
    CancelResult,
    Order,
    OrderStatus,
    ReturnOutcome,
    ReturnResult,
)
from actions.replies import Reply
from actions.store import Store

async def verified_order(
    dispatcher: CollectingDispatcher, tracker: Tracker, store: Store
) -> Optional[Order]:
    """The order in the slots if it exists and belongs to the email; else explain, ``None``."""
    raw_id = tracker.get_slot("order_id")
    order_id = normalise_order_id(raw_id)
    email = normalise_email(tracker.get_slot("email"))
    order = None
    if raw_id is None:
        problem = replies.ORDER_ID_MISSING
    elif order_id is None:
        problem = replies.order_not_found(raw_id, normalised=False)
    elif email is None:
        problem = replies.EMAIL_MISSING
    elif (order := await in_thread(store.get_order, order_id)) is None:
        problem = replies.order_not_found(order_id)
    elif not await in_thread(store.email_matches, order_id, email):
        problem = replies.email_mismatch(order_id)
    else:
        return order
    problem.send(dispatcher)
    return None


def _dates(order: Order) -> Dict[str, str]:
    """The order's dates as the responses say them (empty where a date does not apply)."""
    dates = {"created_on": order.created_at, "shipped_on": order.shipped_at,
             "delivered_on": order.delivered_at, "expected_on": order.expected_delivery}
    return {name: day(value) if value else "" for name, value in dates.items()}


def _values(order: Order, **extra: Any) -> Dict[str, Any]:
    return {"order_id": order.order_id, "carrier": order.carrier, "tracking": order.tracking,
            "return_window_days": RETURN_WINDOW_DAYS, **_dates(order), **extra}


STATUS_RESPONSES = {
    OrderStatus.PROCESSING: "utter_order_processing",
    OrderStatus.SHIPPED: "utter_order_shipped",
    OrderStatus.DELIVERED: "utter_order_delivered",
    OrderStatus.CANCELLED: "utter_order_cancelled",
}
CANCEL_RESPONSES = {
    CancelOutcome.CANCELLED: "utter_cancel_done",
    CancelOutcome.ALREADY_SHIPPED: "utter_cancel_already_shipped",
    CancelOutcome.ALREADY_DELIVERED: "utter_cancel_already_delivered",
    CancelOutcome.ALREADY_CANCELLED: "utter_cancel_already_cancelled",
}
RETURN_RESPONSES = {
    ReturnOutcome.ALREADY_OPEN: "utter_return_already_open",
    ReturnOutcome.FINAL_SALE: "utter_return_final_sale",
    ReturnOutcome.TOO_LATE: "utter_return_too_late",
}
NOT_DELIVERED_RESPONSES = {
    OrderStatus.SHIPPED: "utter_return_not_delivered_yet",
    OrderStatus.CANCELLED: "utter_return_order_cancelled",
}


def status_reply(order: Order) -> Reply:
    """Where the order is, with carrier, tracking and dates where they exist."""
    return Reply(STATUS_RESPONSES[order.status], _values(order))


def cancel_reply(result: CancelResult, order: Order) -> Reply:
    """Confirmation with the refund, or why the order cannot be cancelled."""
    if result.outcome not in CANCEL_RESPONSES:
        return replies.order_not_found(order.order_id)
    return Reply(CANCEL_RESPONSES[result.outcome],
                 _values(order, refund=amount(result.refund or 0.0)))


def return_reply(result: ReturnResult, order: Order) -> Reply:
    """The RMA with next steps, or why the order cannot be returned."""
    values = _values(order, rma_id=result.rma_id)
    if result.outcome is ReturnOutcome.CREATED:
        # a delivered order always has its carrier; the plain wording covers one without
        return Reply("utter_return_created" if order.carrier else "utter_return_created_no_carrier",
                     values)
    if result.outcome is ReturnOutcome.NOT_DELIVERED:
        return Reply(NOT_DELIVERED_RESPONSES.get(order.status, "utter_return_not_shipped"), values)
    if result.outcome in RETURN_RESPONSES:
        return Reply(RETURN_RESPONSES[result.outcome], values)
    return replies.order_not_found(order.order_id)


def _said_yes(value: Any) -> bool:
    """``confirm_cancel`` counts as yes only when it is explicitly true."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


class ActionOrderStatus(StoreAction):
    """Tells the customer where their order is."""

    def name(self) -> Text:
        return "action_order_status"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any],
        store: Store,
    ) -> List[Dict[Text, Any]]:
        order = await verified_order(dispatcher, tracker, store)
        if order is not None:
            status_reply(order).send(dispatcher)
        return []


class ActionCancelOrder(StoreAction):
    """Cancels a processing order once the customer confirmed; always clears ``confirm_cancel``."""

    def name(self) -> Text:
        return "action_cancel_order"

    def events_after_failure(self, tracker: Tracker) -> List[Dict[Text, Any]]:
        return [SlotSet("confirm_cancel", None)]

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any],
        store: Store,
    ) -> List[Dict[Text, Any]]:
        events = [SlotSet("confirm_cancel", None)]
        if not _said_yes(tracker.get_slot("confirm_cancel")):
            order_id = normalise_order_id(tracker.get_slot("order_id"))
            if order_id:
                Reply("utter_nothing_cancelled", {"order_id": order_id}).send(dispatcher)
            else:
                Reply("utter_nothing_cancelled_no_order").send(dispatcher)
            return events
        order = await verified_order(dispatcher, tracker, store)
        if order is not None:
            result = await in_thread(store.cancel_order, order.order_id)
            cancel_reply(result, result.order or order).send(dispatcher)
        return events


class ActionStartReturn(StoreAction):
    """Opens a return (RMA) for an eligible order; always clears ``return_reason``."""

    def name(self) -> Text:
        return "action_start_return"

    def events_after_failure(self, tracker: Tracker) -> List[Dict[Text, Any]]:
        return [SlotSet("return_reason", None)]

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any],
        store: Store,
    ) -> List[Dict[Text, Any]]:
        events = [SlotSet("return_reason", None)]
        order = await verified_order(dispatcher, tracker, store)
        if order is not None:
            reason = tracker.get_slot("return_reason") or "not given"
            result = await in_thread(store.create_return, order.order_id, str(reason))
            return_reply(result, result.order or order).send(dispatcher)
        return events
