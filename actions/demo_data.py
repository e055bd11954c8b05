"""The demo store's rows, fixed by docs/demo-assistant.md: customers, catalogue and
item sizes come from ``demo/store.json``; the orders are generated here.

Orders are generated from a plan rather than listed, so their dates are always
relative to the moment of seeding (eligibility never drifts) while everything
else (items, carriers, tracking numbers) is deterministic.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from actions.records import Customer, Order, OrderItem, OrderStatus, Product

#: The demo shop's customers, catalogue, item sizes and carriers: data, not framework code.
DEMO_STORE = Path(__file__).resolve().parent.parent / "demo" / "store.json"


_DATA: Dict[str, Any] = json.loads(DEMO_STORE.read_text(encoding="utf-8"))
CUSTOMERS: Tuple[Tuple[str, str], ...] = tuple(
    (c["name"], c["membership"]) for c in _DATA["customers"])
PRODUCTS: Tuple[Product, ...] = tuple(Product(**p) for p in _DATA["products"])
_ITEM_SIZES: Dict[str, Tuple[str, ...]] = {
    category: tuple(sizes) for category, sizes in _DATA["item_sizes"].items()}
_CARRIERS: Tuple[str, ...] = tuple(_DATA["carriers"])


@dataclass(frozen=True)
class OrderPlan:
    """How long ago (days) each date of an order lies; ``None`` means it has not happened."""

    status: OrderStatus
    created: float
    shipped: Optional[float] = None
    delivered: Optional[float] = None
    final_sale: bool = False


def order_plan(number: int) -> OrderPlan:
    """The state of ``ORD-100NN`` (NN = ``number``) from the contract's table."""
    if 1 <= number <= 10:
        return OrderPlan(OrderStatus.PROCESSING, created=number / 24)
    if number <= 20:
        return OrderPlan(OrderStatus.SHIPPED, created=5, shipped=3)
    if number <= 30:
        return OrderPlan(OrderStatus.DELIVERED, created=10, shipped=8, delivered=5)
    if number <= 35:
        return OrderPlan(OrderStatus.DELIVERED, created=66, shipped=64, delivered=60)
    if number <= 37:
        return OrderPlan(OrderStatus.CANCELLED, created=9)
    if number <= 40:
        return OrderPlan(OrderStatus.DELIVERED, created=8, shipped=6, delivered=3, final_sale=True)
    raise ValueError(f"the demo has orders 1-40, not {number}")


def customer_email(name: str) -> str:
    """``first.last@example.com`` in lower case."""
    return name.lower().replace(" ", ".") + "@example.com"


def demo_customers() -> List[Customer]:
    """Customers 0-9 in contract order."""
    return [
        Customer(i, name, customer_email(name), tier) for i, (name, tier) in enumerate(CUSTOMERS)
    ]


def tracking_number(order_id: str, carrier: str) -> str:
    """A deterministic tracking number in the carrier's usual format."""
    digest = hashlib.sha256(order_id.encode()).hexdigest()
    digits = str(int(digest, 16))
    if carrier == "UPS":
        return "1Z" + digest[:6].upper() + digits[:10]
    if carrier == "FedEx":
        return digits[:12]
    return "9400" + digits[:18]


def _items(order_id: str, number: int) -> List[OrderItem]:
    """One to three lines, chosen deterministically from the catalogue."""
    lines = []
    for k in range(1 + number % 3):
        product = PRODUCTS[(number * 7 + k * 11) % len(PRODUCTS)]
        sizes = _ITEM_SIZES[product.category]
        quantity = 2 if (number + k) % 4 == 0 else 1
        lines.append(
            OrderItem(order_id, k + 1, product.sku, product.name,
                      sizes[(number + k) % len(sizes)], quantity, product.price)
        )
    return lines


def demo_orders(now: datetime) -> List[Tuple[Order, List[OrderItem]]]:
    """ORD-10001 ... ORD-10040 with their items, dated relative to ``now``."""
    orders = []
    for number in range(1, 41):
        order_id = f"ORD-{10000 + number}"
        plan = order_plan(number)
        items = _items(order_id, number)

        def ago(days: Optional[float]) -> Optional[datetime]:
            return None if days is None else now - timedelta(days=days)

        carrier = _CARRIERS[number % 3] if plan.shipped is not None else None
        order = Order(
            order_id=order_id,
            customer_id=(number - 1) % len(CUSTOMERS),
            status=plan.status,
            created_at=now - timedelta(days=plan.created),
            shipped_at=ago(plan.shipped),
            delivered_at=ago(plan.delivered),
            carrier=carrier,
            tracking=tracking_number(order_id, carrier) if carrier else None,
            total=round(sum(i.unit_price * i.quantity for i in items), 2),
            final_sale=plan.final_sale,
        )
        orders.append((order, items))
    return orders
