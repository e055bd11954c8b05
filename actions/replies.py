"""What the actions say, as domain responses: a name from domain.yml and its values.

The words live in the domain's `responses:`, so another assistant rewords or translates
them without touching Python: an action names a response and passes the values of its
`{placeholders}`, and Rasa fills them in (`dispatcher.utter_message(response=…, **values)`).
Kept in one place so the validation step and the final action word the same situation
the same way. No value ever contains the email stored on an order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict

from rasa_sdk.executor import CollectingDispatcher

from actions.normalise import ORDER_ID_FORMAT


@dataclass(frozen=True)
class Reply:
    """A domain response and the values for its placeholders."""

    response: str
    values: Dict[str, Any] = field(default_factory=dict)

    def send(self, dispatcher: CollectingDispatcher) -> None:
        dispatcher.utter_message(response=self.response, **self.values)

    def send_once(self, dispatcher: CollectingDispatcher) -> None:
        """Sends it unless this run already did (two slots may hit the same outage)."""
        if not any(m.get("response") == self.response for m in dispatcher.messages):
            self.send(dispatcher)


STORE_UNAVAILABLE = Reply("utter_store_unavailable")
ORDER_ID_MISSING = Reply("utter_order_id_missing", {"order_id_format": ORDER_ID_FORMAT})
EMAIL_MISSING = Reply("utter_email_missing")
RETURN_REASON_TOO_SHORT = Reply("utter_return_reason_too_short")


def _shown(value: Any, limit: int = 40) -> str:
    """What the customer typed, shortened, for echoing back."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    text = " ".join(str(value if value is not None else "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def order_not_found(order_id: Any, normalised: bool = True) -> Reply:
    """The id as the store knows it, or quoted as typed when it is not even well formed."""
    shown = order_id if normalised else f'"{_shown(order_id)}"'
    return Reply("utter_order_not_found",
                 {"order_id": shown, "order_id_format": ORDER_ID_FORMAT})


def email_mismatch(order_id: str) -> Reply:
    """Says the email does not match without hinting at the real one."""
    return Reply("utter_email_mismatch", {"order_id": order_id})


def invalid_email(value: Any) -> Reply:
    """For text that is not an email address at all."""
    return Reply("utter_invalid_email", {"typed": _shown(value)})
