"""How amounts and dates read in the values the actions put into domain responses."""

from __future__ import annotations

from datetime import datetime


def amount(value: float) -> str:
    """Two decimals with thousands separators, ``1,234.50``; the currency symbol is part of
    the response text in domain.yml."""
    return f"{value:,.2f}"


def day(value: datetime) -> str:
    """A date the way people say it: ``Tuesday, November 25``."""
    return f"{value:%A}, {value:%B} {value.day}"
