"""How money and dates read in the assistant's replies."""

from __future__ import annotations

from datetime import datetime


def money(amount: float) -> str:
    """Dollars with two decimals and thousands separators: ``$1,234.50``."""
    return f"${amount:,.2f}"


def day(value: datetime) -> str:
    """A date the way people say it: ``Tuesday, November 25``."""
    return f"{value:%A}, {value:%B} {value.day}"
