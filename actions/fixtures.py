"""Test fixtures for the demo store: ``python -m actions.fixtures --db PATH < fixtures.json``.

The end-to-end runner (``bot test e2e``) pipes each test case's fixtures to this command
before the case starts, as ``{"test_case": …, "fixtures": [{"name": …, "data": …}]}``. A
fixture's data adds customers and (re)creates orders, so a case that cancels or returns an
order owns that order and can run again (``--repeat``) from the same state::

    customers:                       # optional; matched by email, created when new
      - {name: Ada Test, email: ada@example.com, membership: gold}
    orders:
      - order_id: ORD-20001          # replaced with its items, returns and cancellation
        email: ada@example.com       # the customer it belongs to (must exist)
        status: delivered            # processing | shipped | delivered | cancelled
        delivered_days_ago: 45       # optional; otherwise the demo's dates for the status
        final_sale: false            # optional
        items: [CK-SHT-01]           # optional catalogue SKUs (default: one Calvin Klein shirt)

Everything is written in one transaction: a fixture that names an unknown customer, status,
SKU or key changes nothing and exits 1 with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional

from actions.config import resolve_db_path
from actions.demo_data import CUSTOMERS, PRODUCTS, OrderPlan, order_plan, tracking_number
from actions.normalise import normalise_email, normalise_order_id
from actions.records import OrderStatus
from actions.schema import create_schema
from actions.store import Store, StoreError, to_db_time, utc_now

#: The demo's dates for each status (days ago), from its first order in that state.
PLANS = {plan.status: plan for plan in (order_plan(n) for n in (1, 11, 21, 36))}
ORDER_KEYS = {"order_id", "email", "status", "delivered_days_ago", "final_sale", "items",
              "carrier"}
CUSTOMER_KEYS = {"name", "email", "membership"}
MEMBERSHIPS = sorted({tier for _, tier in CUSTOMERS})
PRICES = {p.sku: p.price for p in PRODUCTS}


class FixtureError(ValueError):
    """A fixture that cannot be applied; the message names the fixture and the problem."""


def _keys(entry: Any, allowed: set, what: str) -> Dict[str, Any]:
    if not isinstance(entry, dict):
        raise FixtureError(f"{what} must be a mapping, got {entry!r}")
    unknown = set(entry) - allowed
    if unknown:
        raise FixtureError(f"{what}: unknown key(s) {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(sorted(allowed))})")
    return entry


def _plan(order: Dict[str, Any]) -> OrderPlan:
    try:
        status = OrderStatus(order.get("status", "processing"))
    except ValueError:
        raise FixtureError(f"order {order.get('order_id')}: unknown status "
                           f"{order.get('status')!r}") from None
    plan = replace(PLANS[status], final_sale=bool(order.get("final_sale", False)))
    if "delivered_days_ago" in order:
        if status is not OrderStatus.DELIVERED:
            raise FixtureError(f"order {order['order_id']}: delivered_days_ago needs "
                               "status delivered")
        days = float(order["delivered_days_ago"])
        plan = replace(plan, delivered=days, shipped=days + 2, created=days + 4)
    return plan


def _apply_customer(conn, entry: Dict[str, Any]) -> None:
    email = normalise_email(entry.get("email"))
    if email is None or not entry.get("name"):
        raise FixtureError(f"customer {entry!r} needs a name and a valid email")
    membership = entry.get("membership", "guest")
    if membership not in MEMBERSHIPS:
        raise FixtureError(f"customer {email}: membership is one of {', '.join(MEMBERSHIPS)}")
    conn.execute("INSERT INTO customers (name, email, membership) VALUES (?, ?, ?) "
                 "ON CONFLICT(email) DO UPDATE SET name = excluded.name, "
                 "membership = excluded.membership", (entry["name"], email, membership))


def _apply_order(conn, entry: Dict[str, Any], now: datetime) -> None:
    order_id = normalise_order_id(entry.get("order_id"))
    if order_id is None:
        raise FixtureError(f"order {entry.get('order_id')!r}: not an order id like ORD-12345")
    row = conn.execute("SELECT id FROM customers WHERE email = ?",
                       (normalise_email(entry.get("email")) or "",)).fetchone()
    if row is None:
        raise FixtureError(f"order {order_id}: no customer with email {entry.get('email')!r}")
    skus = entry.get("items") or ["CK-SHT-01"]
    unknown = [sku for sku in skus if sku not in PRICES]
    if unknown:
        raise FixtureError(f"order {order_id}: unknown SKU(s) {', '.join(map(str, unknown))}")
    plan = _plan(entry)

    def ago(days: Optional[float]) -> Optional[str]:
        return None if days is None else to_db_time(now - timedelta(days=days))

    carrier = entry.get("carrier", "UPS") if plan.shipped is not None else None
    for table in ("returns", "cancellations", "order_items"):
        conn.execute(f"DELETE FROM {table} WHERE order_id = ?", (order_id,))
    total = round(sum(PRICES[sku] for sku in skus), 2)
    conn.execute(
        "INSERT OR REPLACE INTO orders (order_id, customer_id, status, created_at, shipped_at, "
        "delivered_at, carrier, tracking, total, final_sale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (order_id, row["id"], plan.status.value, ago(plan.created), ago(plan.shipped),
         ago(plan.delivered), carrier, tracking_number(order_id, carrier) if carrier else None,
         total, int(plan.final_sale)))
    conn.executemany(
        "INSERT INTO order_items (order_id, line_no, sku, size, quantity, unit_price) "
        "VALUES (?, ?, ?, 'M', 1, ?)",
        [(order_id, line, sku, PRICES[sku]) for line, sku in enumerate(skus, start=1)])
    if plan.status is OrderStatus.CANCELLED:
        conn.execute("INSERT INTO cancellations (order_id, cancelled_at, refund_amount, reason) "
                     "VALUES (?, ?, ?, 'customer request')", (order_id, ago(plan.created), total))


def apply(path: Path, fixtures: List[Dict[str, Any]], now: Optional[datetime] = None) -> int:
    """Applies every fixture in one transaction; returns how many orders were written."""
    now = now or utc_now()
    store = Store(path)
    with store.connect() as conn:
        create_schema(conn)
    written = 0
    with store.transaction() as conn:
        for fixture in fixtures:
            name = fixture.get("name", "?") if isinstance(fixture, dict) else "?"
            try:
                data = _keys(fixture.get("data") if isinstance(fixture, dict) else None,
                             {"customers", "orders"}, "the fixture")
                for customer in data.get("customers") or []:
                    _apply_customer(conn, _keys(customer, CUSTOMER_KEYS, "a customer"))
                for order in data.get("orders") or []:
                    _apply_order(conn, _keys(order, ORDER_KEYS, "an order"), now)
                    written += 1
            except FixtureError as error:
                raise FixtureError(f"fixture {name!r}: {error}") from None
    return written


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actions.fixtures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=None,
                        help="database file (default: $CSBOT_STORE_DB, else .data/store.db)")
    args = parser.parse_args(argv)
    path = args.db.expanduser().resolve() if args.db else resolve_db_path()
    try:
        request = json.load(sys.stdin)
        written = apply(path, request.get("fixtures") or [])
    except (json.JSONDecodeError, AttributeError) as error:
        print(f"fixtures: expected a JSON object on stdin: {error}", file=sys.stderr)
        return 1
    except (FixtureError, StoreError) as error:
        print(f"fixtures: {error}", file=sys.stderr)
        return 1
    print(f"fixtures: {written} order(s) written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
