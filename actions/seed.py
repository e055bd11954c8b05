"""Create the demo store and fill it: ``python -m actions.seed [--db PATH] [--reset]``.

Idempotent by construction: every demo row is inserted with ``INSERT OR IGNORE``
on its natural key, so a second run adds nothing and keeps what the flows
changed (cancellations, returns). ``--reset`` deletes the file first and
re-dates every order relative to now.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import astuple, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Dict, List, Optional

from actions.config import resolve_db_path
from actions.demo_data import PRODUCTS, demo_customers, demo_orders
from actions.records import OrderStatus
from actions.schema import create_schema
from actions.store import Store, to_db_time, utc_now


@dataclass
class SeedReport:
    """What a seeding run did, for the command's output and for tests."""

    path: Path
    reset: bool
    inserted: Dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One human-readable paragraph."""
        prefix = f"Deleted and recreated {self.path}. " if self.reset else ""
        added = {table: n for table, n in self.inserted.items() if n}
        if not added:
            return (f"{prefix}{self.path} already holds the demo data; nothing inserted "
                    "(use --reset to start over).")
        parts = ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in added.items())
        return f"{prefix}Seeded {self.path}: inserted {parts}."


def _insert(conn, table: str, columns: List[str], rows: List[tuple]) -> int:
    """``INSERT OR IGNORE`` rows; returns how many were new."""
    placeholders = ", ".join("?" for _ in columns)
    sql = f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
    before = conn.total_changes
    conn.executemany(sql, rows)
    return conn.total_changes - before


def _time(value: Optional[datetime]) -> Optional[str]:
    return to_db_time(value) if value else None


def seed(path: Path, *, reset: bool = False, now: Optional[datetime] = None) -> SeedReport:
    """Create the schema at ``path`` and insert whatever demo rows are missing."""
    now = now or utc_now()
    path = Path(path)
    if reset:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = Store(path, create=True)
    with store.connect() as conn:
        create_schema(conn)
    report = SeedReport(path=store.path, reset=reset)
    orders = demo_orders(now)
    with store.transaction() as conn:
        report.inserted["customers"] = _insert(
            conn, "customers", ["id", "name", "email", "membership"],
            [astuple(c) for c in demo_customers()],
        )
        report.inserted["products"] = _insert(
            conn, "products",
            ["sku", "name", "category", "brand", "price", "sizes", "materials", "care",
             "warranty", "stock"],
            [astuple(p) for p in PRODUCTS],
        )
        report.inserted["orders"] = _insert(
            conn, "orders",
            ["order_id", "customer_id", "status", "created_at", "shipped_at", "delivered_at",
             "carrier", "tracking", "total", "final_sale"],
            [(o.order_id, o.customer_id, o.status.value, _time(o.created_at),
              _time(o.shipped_at), _time(o.delivered_at), o.carrier, o.tracking, o.total,
              int(o.final_sale)) for o, _ in orders],
        )
        report.inserted["order_items"] = _insert(
            conn, "order_items",
            ["order_id", "line_no", "sku", "size", "quantity", "unit_price"],
            [(i.order_id, i.line_no, i.sku, i.size, i.quantity, i.unit_price)
             for _, items in orders for i in items],
        )
        report.inserted["cancellations"] = _insert(
            conn, "cancellations", ["order_id", "cancelled_at", "refund_amount", "reason"],
            [(o.order_id, _time(o.created_at + timedelta(hours=6)), o.total, "customer request")
             for o, _ in orders if o.status is OrderStatus.CANCELLED],
        )
    return report


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; prints what it did."""
    parser = argparse.ArgumentParser(
        prog="python -m actions.seed", description="Create and fill the demo SQLite store."
    )
    parser.add_argument(
        "--db", type=Path, default=None,
        help="database file (default: $CSBOT_STORE_DB, else .data/store.db in the repository)",
    )
    parser.add_argument("--reset", action="store_true", help="delete the file first and start over")
    args = parser.parse_args(argv)
    path = args.db.expanduser().resolve() if args.db else resolve_db_path()
    report = seed(path, reset=args.reset)
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
