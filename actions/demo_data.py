"""The demo customers, catalogue and orders fixed by docs/demo-assistant.md.

Orders are generated from a plan rather than listed, so their dates are always
relative to the moment of seeding (eligibility never drifts) while everything
else (items, carriers, tracking numbers) is deterministic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import List, Optional, Tuple

from actions.records import Customer, Order, OrderItem, OrderStatus, Product

CUSTOMERS: Tuple[Tuple[str, str], ...] = (
    ("Alessandro Phoenix", "gold"),
    ("Joyce Wu", "silver"),
    ("Albert Sanders", "bronze"),
    ("David Williams", "guest"),
    ("Sanya Afzal", "gold"),
    ("Crystal Minh", "silver"),
    ("Chloe Zhang", "bronze"),
    ("Rodriguez Domingo", "guest"),
    ("Joseph Banter", "gold"),
    ("Norman Bouchard", "silver"),
)

_BOOT_SIZES = "US 6-12, whole and half sizes; regular width"
_APPAREL_SIZES = "XS, S, M, L, XL, XXL"
_JEANS_SIZES = "waist 28-40, inseam 30, 32 or 34"
_LEATHER_CARE = (
    "Wipe clean with a damp cloth, condition the leather every few months, dry away from heat."
)
_DENIM_CARE = "Machine wash cold inside out, line dry, do not tumble dry."
_SHIRT_CARE = "Machine wash at 30°C with similar colours, iron on medium heat."
_DEFECTS_1Y = "1-year warranty against manufacturing defects"
_DEFECTS_90D = "90-day warranty against seam and zip defects"


def _p(sku, name, category, brand, price, sizes, materials, care, warranty, stock) -> Product:
    return Product(sku, name, category, brand, price, sizes, materials, care, warranty, stock)


PRODUCTS: Tuple[Product, ...] = (
    _p("CK-BOOT-01", "Calvin Klein Boots", "boots", "Calvin Klein", 189.00, _BOOT_SIZES,
       "Smooth calf leather upper, leather lining, rubber sole", _LEATHER_CARE, _DEFECTS_1Y, 24),
    _p("CK-JKT-01", "Calvin Klein Jacket", "jacket", "Calvin Klein", 229.00, _APPAREL_SIZES,
       "70% wool, 30% polyamide shell; viscose lining", "Dry clean only.", _DEFECTS_1Y, 15),
    _p("CK-JNS-01", "Calvin Klein Jeans", "jeans", "Calvin Klein", 89.50, _JEANS_SIZES,
       "98% cotton, 2% elastane stretch denim", _DENIM_CARE, _DEFECTS_90D, 62),
    _p("CK-SHT-01", "Calvin Klein Shirt", "shirt", "Calvin Klein", 59.00, _APPAREL_SIZES,
       "100% cotton poplin", _SHIRT_CARE, _DEFECTS_90D, 80),
    _p("GU-BOOT-01", "Guess Boots", "boots", "Guess", 149.00, _BOOT_SIZES,
       "Suede upper, textile lining, stacked block heel, rubber sole",
       "Brush suede when dry, treat with a suede protector spray, avoid soaking.", _DEFECTS_1Y, 18),
    _p("GU-JKT-01", "Guess Jacket", "jacket", "Guess", 179.00, _APPAREL_SIZES,
       "Faux leather (polyurethane) shell, polyester lining",
       "Wipe with a damp cloth, do not machine wash or iron.", _DEFECTS_1Y, 9),
    _p("GU-JNS-01", "Guess Jeans", "jeans", "Guess", 98.00, _JEANS_SIZES,
       "99% cotton, 1% elastane denim", _DENIM_CARE, _DEFECTS_90D, 45),
    _p("GU-SHT-01", "Guess Shirt", "shirt", "Guess", 49.90, _APPAREL_SIZES,
       "100% cotton oxford", _SHIRT_CARE, _DEFECTS_90D, 57),
    _p("MK-BOOT-01", "Michael Kors Boots", "boots", "Michael Kors", 245.00, _BOOT_SIZES,
       "Polished leather upper, leather lining, rubber-injected heel", _LEATHER_CARE,
       _DEFECTS_1Y, 7),
    _p("MK-JKT-01", "Michael Kors Jacket", "jacket", "Michael Kors", 298.00, _APPAREL_SIZES,
       "Quilted nylon shell, 80% down / 20% feather fill",
       "Machine wash cold on a gentle cycle, tumble dry low with dryer balls.", _DEFECTS_1Y, 0),
    _p("MK-JNS-01", "Michael Kors Jeans", "jeans", "Michael Kors", 110.00, _JEANS_SIZES,
       "92% cotton, 6% polyester, 2% elastane denim", _DENIM_CARE, _DEFECTS_90D, 33),
    _p("MK-SHT-01", "Michael Kors Shirt", "shirt", "Michael Kors", 79.00, _APPAREL_SIZES,
       "97% cotton, 3% elastane stretch poplin", _SHIRT_CARE, _DEFECTS_90D, 41),
    _p("TH-BOOT-01", "Tommy Hilfiger Boots", "boots", "Tommy Hilfiger", 169.00, _BOOT_SIZES,
       "Nubuck leather upper, padded collar, lug rubber sole", _LEATHER_CARE, _DEFECTS_1Y, 21),
    _p("TH-JKT-01", "Tommy Hilfiger Jacket", "jacket", "Tommy Hilfiger", 199.00, _APPAREL_SIZES,
       "100% cotton twill shell, polyester lining",
       "Machine wash cold, hang to dry.", _DEFECTS_1Y, 26),
    _p("TH-JNS-01", "Tommy Hilfiger Jeans", "jeans", "Tommy Hilfiger", 89.00, _JEANS_SIZES,
       "99% cotton, 1% elastane denim", _DENIM_CARE, _DEFECTS_90D, 70),
    _p("TH-SHT-01", "Tommy Hilfiger Shirt", "shirt", "Tommy Hilfiger", 69.50, _APPAREL_SIZES,
       "100% organic cotton piqué", _SHIRT_CARE, _DEFECTS_90D, 92),
    _p("TL-HIKE-01", "Hiking Boots", "boots", "Threadline Outdoor", 139.99,
       "US 6-13, whole and half sizes; regular and wide widths",
       "Waterproof nubuck leather and mesh upper, breathable membrane, rubber lug outsole",
       "Brush off dirt, rinse with clean water, air-dry away from heat, re-wax the leather.",
       "2-year warranty on sole bonding and seams", 37),
    _p("TL-RAIN-01", "Rain Jacket", "jacket", "Threadline Outdoor", 119.00, _APPAREL_SIZES,
       "100% recycled nylon shell with waterproof coating, fully taped seams",
       "Machine wash cold, tumble dry low to refresh the water repellency.",
       "2-year warranty on seams and zips", 44),
    _p("TL-WOOL-01", "Wool Sweater", "sweater", "Threadline", 95.00, "XS, S, M, L, XL",
       "100% merino wool", "Hand wash cold, dry flat, do not wring.", _DEFECTS_90D, 28),
    _p("TL-CHEL-01", "Chelsea Boots", "boots", "Threadline", 159.00,
       "US 6-13, whole and half sizes; regular width",
       "Suede upper, elastic side panels, leather lining, rubber sole",
       "Brush suede when dry, treat with a suede protector spray, avoid soaking.",
       _DEFECTS_1Y, 19),
)

_ITEM_SIZES = {
    "boots": ("8", "9", "9.5", "10", "11"),
    "jacket": ("S", "M", "L", "XL"),
    "jeans": ("30x32", "32x32", "34x30", "36x32"),
    "shirt": ("S", "M", "L"),
    "sweater": ("M", "L"),
}
_CARRIERS = ("UPS", "FedEx", "USPS")


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
            created_at=ago(plan.created),
            shipped_at=ago(plan.shipped),
            delivered_at=ago(plan.delivered),
            carrier=carrier,
            tracking=tracking_number(order_id, carrier) if carrier else None,
            total=round(sum(i.unit_price * i.quantity for i in items), 2),
            final_sale=plan.final_sale,
        )
        orders.append((order, items))
    return orders
