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
from actions.formatting import day, money
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
from actions.store import Store

REFUND_TIME = "within 5-7 business days"


async def verified_order(
    dispatcher: CollectingDispatcher, tracker: Tracker, store: Store
) -> Optional[Order]:
    """The order in the slots if it exists and belongs to the email; else explain, ``None``."""
    raw_id = tracker.get_slot("order_id")
    order_id = normalise_order_id(raw_id)
    if raw_id is None:
        dispatcher.utter_message(text=replies.ORDER_ID_MISSING)
        return None
    if order_id is None:
        dispatcher.utter_message(text=replies.order_not_found(raw_id, normalised=False))
        return None
    email = normalise_email(tracker.get_slot("email"))
    if email is None:
        dispatcher.utter_message(text=replies.EMAIL_MISSING)
        return None
    order = await in_thread(store.get_order, order_id)
    if order is None:
        dispatcher.utter_message(text=replies.order_not_found(order_id))
        return None
    if not await in_thread(store.email_matches, order_id, email):
        dispatcher.utter_message(text=replies.email_mismatch(order_id))
        return None
    return order


def status_text(order: Order) -> str:
    """Where the order is, with carrier, tracking and dates where they exist."""
    oid = order.order_id
    if order.status is OrderStatus.PROCESSING:
        return (
            f"Order {oid} is being prepared in our warehouse and hasn't shipped yet "
            f"(you placed it on {day(order.created_at)}). Orders usually ship within 1-2 "
            "business days, and you'll get an email with the tracking number as soon as it leaves."
        )
    if order.status is OrderStatus.SHIPPED:
        return (
            f"Good news: order {oid} is on its way! It shipped with {order.carrier} on "
            f"{day(order.shipped_at)}, tracking number {order.tracking}. It's expected to "
            f"arrive on {day(order.expected_delivery)}."
        )
    if order.status is OrderStatus.DELIVERED:
        return (
            f"Order {oid} was delivered by {order.carrier} on {day(order.delivered_at)} "
            f"(tracking number {order.tracking})."
        )
    return (
        f"Order {oid} was cancelled, so it won't be shipped. Any payment for it goes back "
        f"to your original payment method {REFUND_TIME}."
    )


def cancel_text(result: CancelResult, order: Order) -> str:
    """Confirmation with the refund, or why the order cannot be cancelled."""
    oid = order.order_id
    if result.outcome is CancelOutcome.CANCELLED:
        return (
            f"Done: order {oid} is cancelled. Your refund of {money(result.refund or 0.0)} "
            f"goes back to your original payment method {REFUND_TIME}."
        )
    if result.outcome is CancelOutcome.ALREADY_SHIPPED:
        return (
            f"I'm sorry, order {oid} has already shipped, so it can't be cancelled any more. "
            f"Once it arrives you can return it within {RETURN_WINDOW_DAYS} days of delivery "
            "for a refund; just ask me to start a return."
        )
    if result.outcome is CancelOutcome.ALREADY_DELIVERED:
        return (
            f"Order {oid} has already been delivered, so it can't be cancelled. You can return "
            f"it instead: items can be returned within {RETURN_WINDOW_DAYS} days of delivery, "
            "just ask me to start a return."
        )
    if result.outcome is CancelOutcome.ALREADY_CANCELLED:
        return f"Order {oid} is already cancelled, so there's nothing more to do."
    return replies.order_not_found(oid)


def return_text(result: ReturnResult, order: Order) -> str:
    """The RMA with next steps, or why the order cannot be returned."""
    oid = order.order_id
    outcome = result.outcome
    if outcome is ReturnOutcome.CREATED:
        return (
            f"I've opened return {result.rma_id} for order {oid}. Next steps: pack the items "
            f"with their tags attached, write {result.rma_id} on the parcel, and drop it off "
            f"with {order.carrier or 'the carrier'} using the prepaid return label we've emailed "
            f"you. Your refund is issued {REFUND_TIME} after the parcel reaches our warehouse."
        )
    if outcome is ReturnOutcome.ALREADY_OPEN:
        return (
            f"There's already an open return for order {oid}: {result.rma_id}. Just send the "
            "parcel with that number on it; there's no need to start another one."
        )
    if outcome is ReturnOutcome.FINAL_SALE:
        return (
            f"I'm sorry, order {oid} was a final-sale purchase, so it can't be returned "
            "or exchanged."
        )
    if outcome is ReturnOutcome.TOO_LATE:
        return (
            f"I'm sorry, order {oid} was delivered on {day(order.delivered_at)}, more than "
            f"{RETURN_WINDOW_DAYS} days ago, so it's outside our {RETURN_WINDOW_DAYS}-day "
            "return window and can't be returned."
        )
    if outcome is ReturnOutcome.NOT_DELIVERED:
        if order.status is OrderStatus.SHIPPED:
            return (
                f"Order {oid} hasn't been delivered yet, so it can't be returned yet (it's "
                f"expected on {day(order.expected_delivery)}). Once it arrives you'll have "
                f"{RETURN_WINDOW_DAYS} days to start a return."
            )
        if order.status is OrderStatus.CANCELLED:
            return f"Order {oid} was cancelled, so there's nothing to return."
        return (
            f"Order {oid} hasn't been delivered yet, so there's nothing to return. It hasn't "
            "shipped either, so I can cancel it for you instead if you like."
        )
    return replies.order_not_found(oid)


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
            dispatcher.utter_message(text=status_text(order))
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
            which = f"order {order_id}" if order_id else "your order"
            dispatcher.utter_message(
                text=f"No problem, I haven't cancelled anything: {which} stays as it is."
            )
            return events
        order = await verified_order(dispatcher, tracker, store)
        if order is not None:
            result = await in_thread(store.cancel_order, order.order_id)
            dispatcher.utter_message(text=cancel_text(result, result.order or order))
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
            dispatcher.utter_message(text=return_text(result, result.order or order))
        return events
