"""Typed records of the store and the outcomes of its write operations.

The actions never handle raw ``sqlite3.Row`` objects: the store turns rows into
these frozen dataclasses so that a schema change breaks loudly in one place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

#: Days a parcel is in transit after it ships; gives the expected delivery date.
TRANSIT_DAYS = 5
#: Days after delivery during which an order can be returned.
RETURN_WINDOW_DAYS = 30


class OrderStatus(str, enum.Enum):
    """Life cycle of an order; the values are what the ``orders.status`` column holds."""

    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Customer:
    """A customer account; ``email`` is stored in lower case."""

    id: int
    name: str
    email: str
    membership: str


@dataclass(frozen=True)
class Product:
    """A catalogue entry; ``sizes`` is display text because size systems differ per category."""

    sku: str
    name: str
    category: str
    brand: str
    price: float
    sizes: str
    materials: str
    care: str
    warranty: str
    stock: int


@dataclass(frozen=True)
class OrderItem:
    """One line of an order."""

    order_id: str
    line_no: int
    sku: str
    product_name: str
    size: str
    quantity: int
    unit_price: float


@dataclass(frozen=True)
class Order:
    """An order with the dates that drive cancellation and return eligibility."""

    order_id: str
    customer_id: int
    status: OrderStatus
    created_at: datetime
    shipped_at: Optional[datetime]
    delivered_at: Optional[datetime]
    carrier: Optional[str]
    tracking: Optional[str]
    total: float
    final_sale: bool

    @property
    def expected_delivery(self) -> Optional[datetime]:
        """Derived rather than stored: shipped orders arrive ``TRANSIT_DAYS`` after shipping."""
        if self.shipped_at is None:
            return None
        return self.shipped_at + timedelta(days=TRANSIT_DAYS)


class CancelOutcome(str, enum.Enum):
    """Why a cancellation did or did not happen."""

    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    ALREADY_SHIPPED = "already_shipped"
    ALREADY_DELIVERED = "already_delivered"
    ALREADY_CANCELLED = "already_cancelled"


@dataclass(frozen=True)
class CancelResult:
    """Result of ``Store.cancel_order``; ``refund`` is set only when it cancelled."""

    outcome: CancelOutcome
    order: Optional[Order] = None
    refund: Optional[float] = None


class ReturnOutcome(str, enum.Enum):
    """Why a return was or was not opened."""

    CREATED = "created"
    NOT_FOUND = "not_found"
    NOT_DELIVERED = "not_delivered"
    ALREADY_OPEN = "already_open"
    FINAL_SALE = "final_sale"
    TOO_LATE = "too_late"


@dataclass(frozen=True)
class ReturnResult:
    """Result of ``Store.create_return``; ``rma_id`` is the new or the already open return."""

    outcome: ReturnOutcome
    order: Optional[Order] = None
    rma_id: Optional[str] = None
