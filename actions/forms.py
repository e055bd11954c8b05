"""Slot validation for the three order forms.

All three forms ask for ``order_id`` and ``email``; one base class validates
them so the forms cannot drift apart. Rejecting a value means returning it as
``None``: Rasa's form then asks for that slot again. The email is only
accepted for an order if it is that order's customer's, so nobody can read or
change someone else's order by knowing its number.

The email may arrive before, after, or together with the order id, so the
cross-check runs in whichever validator sees both values (see
``_checked_here``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, Dict, Optional, Text

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import replies
from actions.base import StoreBacked, in_thread
from actions.normalise import normalise_email, normalise_order_id
from actions.store import Store, StoreError

logger = logging.getLogger(__name__)

MIN_REASON_CHARS = 3


class OrderFormValidation(StoreBacked, FormValidationAction, ABC):
    """Validates ``order_id`` and ``email`` for any form that needs both."""

    @abstractmethod
    def name(self) -> Text:
        """``validate_<form name>``."""

    async def _email_matches(self, store: Store, order_id: str, email: str) -> bool:
        return await in_thread(store.email_matches, order_id, email)

    async def validate_order_id(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        """Normalise to ``ORD-12345``; reject unknown ids, and an earlier email that doesn't match."""
        order_id = normalise_order_id(slot_value)
        if order_id is None:
            replies.order_not_found(slot_value, normalised=False).send(dispatcher)
            return {"order_id": None}
        try:
            store = self.store()
            if await in_thread(store.get_order, order_id) is None:
                replies.order_not_found(order_id).send(dispatcher)
                return {"order_id": None}
            email = normalise_email(tracker.get_slot("email"))
            if (
                email
                and not self._checked_here(tracker, "email")
                and not await self._email_matches(store, order_id, email)
            ):
                replies.email_mismatch(order_id).send(dispatcher)
                return {"order_id": order_id, "email": None}
        except StoreError:
            logger.exception("%s could not check order %s", self.name(), order_id)
            replies.STORE_UNAVAILABLE.send_once(dispatcher)
            return {"order_id": None}
        return {"order_id": order_id}

    async def validate_email(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        """Lower-case; if the order is already known, the email must be its customer's."""
        email = normalise_email(slot_value)
        if email is None:
            replies.invalid_email(slot_value).send(dispatcher)
            return {"email": None}
        order_id = normalise_order_id(tracker.get_slot("order_id"))
        if order_id is None:
            return {"email": email}  # checked later, when validate_order_id sees the id
        try:
            store = self.store()
            order = await in_thread(store.get_order, order_id)
            if order is not None and not await self._email_matches(store, order_id, email):
                replies.email_mismatch(order_id).send(dispatcher)
                return {"email": None}
        except StoreError:
            logger.exception("%s could not check the email for %s", self.name(), order_id)
            replies.STORE_UNAVAILABLE.send_once(dispatcher)
            return {"email": None}
        return {"email": email}

    @staticmethod
    def _checked_here(tracker: Tracker, slot: str) -> bool:
        """Whether ``slot`` is validated in this same run (then its own validator cross-checks).

        The SDK calls each validator with the value from before this run, so
        resetting ``email`` from ``validate_order_id`` would be overwritten, and
        checking in both validators would send the mismatch message twice.
        """
        return slot in tracker.slots_to_validate()


class ValidateOrderStatusForm(OrderFormValidation):
    """``order_status_form``: order_id, email."""

    def name(self) -> Text:
        return "validate_order_status_form"


class ValidateCancelOrderForm(OrderFormValidation):
    """``cancel_order_form``: order_id, email, confirm_cancel."""

    def name(self) -> Text:
        return "validate_cancel_order_form"

    def validate_confirm_cancel(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        """Accepted as the domain's from_intent mapping set it (True/False)."""
        return {"confirm_cancel": slot_value}


class ValidateReturnForm(OrderFormValidation):
    """``return_form``: order_id, email, return_reason."""

    def name(self) -> Text:
        return "validate_return_form"

    def validate_return_reason(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        """At least three non-space characters; stored with whitespace collapsed."""
        text = slot_value if isinstance(slot_value, str) else ""
        reason: Optional[str] = " ".join(text.split()) or None
        if not reason or len(reason.replace(" ", "")) < MIN_REASON_CHARS:
            replies.RETURN_REASON_TOO_SHORT.send(dispatcher)
            return {"return_reason": None}
        return {"return_reason": reason}
