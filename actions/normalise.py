"""Canonical forms of what customers type: order ids and email addresses.

Customers write ``ord10025``, ``ORD 10025`` or ``#ord-10025``; the store only
knows ``ORD-10025``. Normalising once, before any lookup, keeps the slot, the
database key and the texts consistent.
"""

from __future__ import annotations

import re
from typing import Any, Optional

ORDER_ID_FORMAT = "ORD-12345"
_PREFIXED_ID = re.compile(r"(?<![a-z0-9])ORD\s*[-_#:.]?\s*(\d{5})(?!\d)", re.IGNORECASE)
_BARE_ID = re.compile(r"^#?\s*(\d{5})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")


def _first_text(value: Any) -> Optional[str]:
    """Slot values may arrive as a list (several entities in one message) or a number."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) else None


def normalise_order_id(value: Any) -> Optional[str]:
    """``ORD-12345`` for anything that reads as one (including bare five digits), else ``None``."""
    value = _first_text(value)
    if value is None:
        return None
    match = _PREFIXED_ID.search(value) or _BARE_ID.match(value.strip())
    return f"ORD-{match.group(1)}" if match else None


def normalise_email(value: Any) -> Optional[str]:
    """The address in lower case without surrounding spaces, or ``None`` if it is not one."""
    value = _first_text(value)
    if value is None:
        return None
    email = value.strip().strip("<>").lower()
    return email if _EMAIL.match(email) else None
