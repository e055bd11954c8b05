"""Reply texts shared by the form validations and the order actions.

Kept in one place so the validation step and the final action word the same
situation the same way, and so tests and conversation stories can match them.
No text ever contains the email stored on an order.
"""

from __future__ import annotations

from typing import Any

from actions.normalise import ORDER_ID_FORMAT

STORE_UNAVAILABLE = (
    "I'm sorry, I can't reach our order system right now. Please try again in a few "
    "minutes, or ask for a colleague and they'll help you."
)
ORDER_ID_MISSING = (
    f"I need your order number to do that. It looks like {ORDER_ID_FORMAT} and you'll "
    "find it in your order confirmation email."
)
EMAIL_MISSING = (
    "To protect your account, I need the email address you used for the order before "
    "I can do that."
)
RETURN_REASON_TOO_SHORT = (
    "Could you tell me in a few words why you're returning it? For example "
    '"too small" or "arrived damaged".'
)


def _shown(value: Any, limit: int = 40) -> str:
    """What the customer typed, shortened, for echoing back."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    text = " ".join(str(value if value is not None else "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def order_not_found(order_id: Any, normalised: bool = True) -> str:
    """The id as the store knows it, or quoted as typed when it is not even well formed."""
    shown = order_id if normalised else f'"{_shown(order_id)}"'
    return (
        f"I couldn't find order {shown}. Order numbers look like {ORDER_ID_FORMAT}; "
        "you'll find yours in your order confirmation email."
    )


def email_mismatch(order_id: str) -> str:
    """Says the email does not match without hinting at the real one."""
    return (
        f"Sorry, that email address doesn't match the one on order {order_id}. "
        "Please give me the email address you used when you placed the order."
    )


def invalid_email(value: Any) -> str:
    """For text that is not an email address at all."""
    return (
        f'"{_shown(value)}" doesn\'t look like an email address. '
        "Could you type it again, like name@example.com?"
    )
