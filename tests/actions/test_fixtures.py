"""``python -m actions.fixtures``: the per-test-case store data the e2e runner pipes in.

The orders it writes must behave in the real store exactly as the demo's do (the actions
then cancel and return them), a case must be able to run again from the same state, and a
bad fixture must change nothing and say why.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from action_helpers import REPO_ROOT

from actions.fixtures import FixtureError, apply
from actions.records import CancelOutcome, OrderStatus, ReturnOutcome
from actions.store import Store


def fixture(**data):
    return [{"name": "f", "data": data}]


def test_a_new_customer_and_a_delivered_order_can_be_returned(db_path):
    apply(db_path, fixture(
        customers=[{"name": "Ada Tester", "email": "Ada.Tester@example.com",
                    "membership": "gold"}],
        orders=[{"order_id": "ord-20001", "email": "ada.tester@example.com",
                 "status": "delivered", "items": ["CK-BOOT-01", "GU-SHT-01"]}]))
    store = Store(db_path)
    order = store.get_order("ORD-20001")
    assert order.status is OrderStatus.DELIVERED and order.carrier == "UPS" and order.tracking
    assert order.total == pytest.approx(189.00 + 49.90)
    assert store.email_matches("ORD-20001", "ada.tester@example.com")
    assert store.create_return("ORD-20001", "too big").outcome is ReturnOutcome.CREATED


def test_applying_again_restores_an_order_a_case_changed(db_path):
    orders = fixture(orders=[{"order_id": "ORD-20002", "email": "joyce.wu@example.com"}])
    apply(db_path, orders)
    store = Store(db_path)
    assert store.cancel_order("ORD-20002").outcome is CancelOutcome.CANCELLED
    assert store.cancel_order("ORD-20002").outcome is CancelOutcome.ALREADY_CANCELLED
    apply(db_path, orders)
    assert store.get_order("ORD-20002").status is OrderStatus.PROCESSING
    assert store.cancel_order("ORD-20002").outcome is CancelOutcome.CANCELLED


def test_delivered_days_ago_moves_an_order_out_of_the_return_window(db_path):
    apply(db_path, fixture(orders=[{"order_id": "ORD-20003", "email": "joyce.wu@example.com",
                                    "status": "delivered", "delivered_days_ago": 45,
                                    "final_sale": False}]))
    assert Store(db_path).create_return("ORD-20003", "late").outcome is ReturnOutcome.TOO_LATE


@pytest.mark.parametrize("data,message", [
    ({"orders": [{"order_id": "ORD-20004", "email": "nobody@example.com"}]},
     "no customer with email 'nobody@example.com'"),
    ({"orders": [{"order_id": "ORD-20004", "email": "joyce.wu@example.com",
                  "status": "lost"}]}, "unknown status 'lost'"),
    ({"orders": [{"order_id": "ORD-20004", "email": "joyce.wu@example.com",
                  "items": ["NOPE-1"]}]}, "unknown SKU(s) NOPE-1"),
    ({"orders": [{"order_id": "ORD-20004", "email": "joyce.wu@example.com", "colour": "red"}]},
     "unknown key(s) colour"),
    ({"slots": {"email": "x"}}, "unknown key(s) slots"),
])
def test_a_bad_fixture_changes_nothing_and_says_why(db_path, data, message):
    good = {"order_id": "ORD-20005", "email": "joyce.wu@example.com"}
    data = {**data, "orders": [good, *data.get("orders", [])]}
    with pytest.raises(FixtureError) as error:
        apply(db_path, fixture(**data))
    assert "fixture 'f'" in str(error.value) and message in str(error.value)
    assert Store(db_path).get_order("ORD-20005") is None  # the good order was rolled back too


def test_the_command_reads_json_on_stdin_and_fails_with_the_reason(db_path):
    command = [sys.executable, "-m", "actions.fixtures", "--db", str(db_path)]
    ok = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, input=json.dumps(
        {"test_case": "t", "fixtures": fixture(orders=[{"order_id": "ORD-20006",
                                                         "email": "joyce.wu@example.com"}])}))
    assert ok.returncode == 0, ok.stderr
    assert Store(db_path).get_order("ORD-20006") is not None
    bad = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                         input="not json")
    assert bad.returncode == 1 and "expected a JSON object on stdin" in bad.stderr
