"""The seeded store holds exactly the contract's demo data, and seeding is repeatable."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from action_helpers import CONTRACT_CUSTOMERS, REPO_ROOT, dump, owner_email

from actions.seed import seed
from actions.store import Store

CONTRACT_PRODUCTS = {
    f"{brand} {kind}"
    for brand in ("calvin klein", "guess", "michael kors", "tommy hilfiger")
    for kind in ("boots", "jacket", "jeans", "shirt")
} | {"hiking boots", "rain jacket", "wool sweater", "chelsea boots"}


def _ago(value: str) -> timedelta:
    return datetime.now(timezone.utc) - datetime.fromisoformat(value)


def test_customers_are_the_contracts_in_order(db):
    rows = db.execute("SELECT id, name, email, membership FROM customers ORDER BY id").fetchall()
    assert [(r["name"], r["membership"]) for r in rows] == CONTRACT_CUSTOMERS
    assert [r["email"] for r in rows][:3] == [
        "alessandro.phoenix@example.com", "joyce.wu@example.com", "albert.sanders@example.com"]


def test_products_are_the_lookup_names_with_full_details(db):
    rows = db.execute("SELECT * FROM products").fetchall()
    assert {r["name"].lower() for r in rows} == CONTRACT_PRODUCTS
    for r in rows:
        assert r["price"] > 0 and r["sizes"] and r["materials"] and r["care"] and r["warranty"]
    boots = db.execute("SELECT * FROM products WHERE name = 'Hiking Boots'").fetchone()
    assert "6-13" in boots["sizes"] and "wide" in boots["sizes"]


@pytest.mark.parametrize(
    "first, last, status, delivered_days, final_sale",
    [
        (1, 10, "processing", None, 0),
        (11, 20, "shipped", None, 0),
        (21, 30, "delivered", 5, 0),
        (31, 35, "delivered", 60, 0),
        (36, 37, "cancelled", None, 0),
        (38, 40, "delivered", 3, 1),
    ],
)
def test_orders_follow_the_contract_table(db, first, last, status, delivered_days, final_sale):
    for number in range(first, last + 1):
        order_id = f"ORD-{10000 + number}"
        row = db.execute(
            "SELECT o.*, c.email FROM orders o JOIN customers c ON c.id = o.customer_id"
            " WHERE order_id = ?", (order_id,)).fetchone()
        assert row["status"] == status
        assert row["email"] == owner_email(order_id)
        assert row["final_sale"] == final_sale
        shipped = status in ("shipped", "delivered")
        assert bool(row["carrier"]) == shipped and bool(row["tracking"]) == shipped
        if delivered_days is None:
            assert row["delivered_at"] is None
        else:
            assert round(_ago(row["delivered_at"]).total_seconds() / 86400) == delivered_days
        items = db.execute(
            "SELECT quantity, unit_price FROM order_items WHERE order_id = ?", (order_id,)
        ).fetchall()
        assert 1 <= len(items) <= 3
        assert row["total"] == pytest.approx(sum(i["quantity"] * i["unit_price"] for i in items))
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 40


def test_shipped_orders_are_expected_in_two_days(store):
    order = store.get_order("ORD-10015")
    assert order.expected_delivery - datetime.now(timezone.utc) == pytest.approx(
        timedelta(days=2), abs=timedelta(minutes=5))


def test_seeding_twice_leaves_the_same_data(db_path: Path):
    before = dump(db_path)
    report = seed(db_path)
    assert dump(db_path) == before
    assert not any(report.inserted.values())
    assert "nothing inserted" in report.summary()


def test_reset_restores_the_demo_state(db_path: Path, store: Store):
    store.cancel_order("ORD-10004")
    seed(db_path)  # without --reset the flow's change is kept
    assert store.get_order("ORD-10004").status.value == "cancelled"
    seed(db_path, reset=True)
    assert store.get_order("ORD-10004").status.value == "processing"


def test_command_line_creates_fills_and_is_idempotent(tmp_path: Path):
    target = tmp_path / "sub" / "cli.db"
    command = [sys.executable, "-m", "actions.seed", "--db", str(target)]
    first = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert "inserted 10 customers, 20 products, 40 orders" in first.stdout
    once = dump(target)
    second = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert "nothing inserted" in second.stdout
    assert dump(target) == once
    third = subprocess.run(command + ["--reset"], cwd=REPO_ROOT, capture_output=True,
                           text=True, check=True)
    assert "Deleted and recreated" in third.stdout


