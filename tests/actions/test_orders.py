"""Order status, cancellation and returns against the seeded store."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from action_helpers import dump, make_tracker, owner_email, run, slot_values

from actions.orders import ActionCancelOrder, ActionOrderStatus, ActionStartReturn
from actions.store import Store


def order_slots(order_id: str, **extra):
    return {"order_id": order_id, "email": owner_email(order_id), **extra}


def status_of(order_id: str):
    texts, events = run(ActionOrderStatus(), make_tracker(order_slots(order_id)))
    assert events == []
    assert len(texts) == 1
    return texts[0]


def test_status_processing(db_path):
    text = status_of("ORD-10003")
    assert text.startswith("Order ORD-10003 is being prepared in our warehouse and hasn't shipped yet")


def test_status_shipped_has_carrier_tracking_and_expected_date(db, db_path):
    row = db.execute("SELECT carrier, tracking FROM orders WHERE order_id = 'ORD-10014'").fetchone()
    text = status_of("ORD-10014")
    assert text.startswith("Good news: order ORD-10014 is on its way!")
    assert row["carrier"] in text and row["tracking"] in text
    assert "expected to arrive on" in text


def test_status_delivered(db_path):
    assert status_of("ORD-10022").startswith("Order ORD-10022 was delivered by")


def test_status_cancelled(db_path):
    assert status_of("ORD-10037").startswith("Order ORD-10037 was cancelled, so it won't be shipped.")


def test_status_needs_the_matching_email(db_path):
    texts, _ = run(ActionOrderStatus(), make_tracker(
        {"order_id": "ORD-10014", "email": "joyce.wu@example.com"}))
    assert texts == ["Sorry, that email address doesn't match the one on order ORD-10014. "
                     "Please give me the email address you used when you placed the order."]


def test_status_of_unknown_order(db_path):
    texts, _ = run(ActionOrderStatus(), make_tracker(
        {"order_id": "ORD-55555", "email": "joyce.wu@example.com"}))
    assert texts[0].startswith("I couldn't find order ORD-55555.")


def cancel(order_id: str, confirm=True):
    return run(ActionCancelOrder(), make_tracker(order_slots(order_id, confirm_cancel=confirm)))


def test_cancel_processing_order(db, db_path):
    total = db.execute("SELECT total FROM orders WHERE order_id = 'ORD-10005'").fetchone()[0]
    texts, events = cancel("ORD-10005")
    assert texts == [f"Done: order ORD-10005 is cancelled. Your refund of ${total:,.2f} goes back "
                     "to your original payment method within 5-7 business days."]
    assert slot_values(events) == {"confirm_cancel": None}
    assert db.execute("SELECT status FROM orders WHERE order_id = 'ORD-10005'").fetchone()[0] == "cancelled"
    rows = db.execute("SELECT refund_amount FROM cancellations WHERE order_id = 'ORD-10005'").fetchall()
    assert [r[0] for r in rows] == [total]


@pytest.mark.parametrize(
    "order_id, reply",
    [
        ("ORD-10016", "I'm sorry, order ORD-10016 has already shipped, so it can't be cancelled any more."),
        ("ORD-10026", "Order ORD-10026 has already been delivered, so it can't be cancelled. You can return it"),
        ("ORD-10036", "Order ORD-10036 is already cancelled, so there's nothing more to do."),
    ],
)
def test_cancel_is_refused_after_shipping(db_path, order_id, reply):
    before = dump(db_path)
    texts, events = cancel(order_id)
    assert len(texts) == 1 and texts[0].startswith(reply)
    assert slot_values(events) == {"confirm_cancel": None}
    assert dump(db_path) == before


@pytest.mark.parametrize("answer", [False, None])
def test_no_at_confirmation_changes_nothing(db_path, answer):
    before = dump(db_path)
    texts, events = cancel("ORD-10006", confirm=answer)
    assert texts == ["No problem, I haven't cancelled anything: order ORD-10006 stays as it is."]
    assert slot_values(events) == {"confirm_cancel": None}
    assert dump(db_path) == before


def test_cancel_with_wrong_email_changes_nothing(db_path):
    before = dump(db_path)
    texts, events = run(ActionCancelOrder(), make_tracker(
        {"order_id": "ORD-10007", "email": "joyce.wu@example.com", "confirm_cancel": True}))
    assert "doesn't match the one on order ORD-10007" in texts[0]
    assert slot_values(events) == {"confirm_cancel": None}
    assert dump(db_path) == before


def start_return(order_id: str, reason="too small"):
    return run(ActionStartReturn(), make_tracker(order_slots(order_id, return_reason=reason)))


def test_return_within_window_gets_an_rma(db):
    texts, events = start_return("ORD-10027", reason="wrong colour")
    assert slot_values(events) == {"return_reason": None}
    match = re.match(r"I've opened return (RMA-\d+) for order ORD-10027\. Next steps:", texts[0])
    assert match, texts
    row = db.execute("SELECT * FROM returns WHERE order_id = 'ORD-10027'").fetchone()
    assert (row["rma_id"], row["reason"], row["status"]) == (match.group(1), "wrong colour", "open")


def test_second_return_for_the_same_order_is_refused(db):
    first, _ = start_return("ORD-10028")
    rma = re.search(r"RMA-\d+", first[0]).group(0)
    texts, events = start_return("ORD-10028")
    assert texts == [f"There's already an open return for order ORD-10028: {rma}. Just send the "
                     "parcel with that number on it; there's no need to start another one."]
    assert slot_values(events) == {"return_reason": None}
    assert db.execute("SELECT count(*) FROM returns WHERE order_id = 'ORD-10028'").fetchone()[0] == 1


@pytest.mark.parametrize(
    "order_id, reply",
    [
        ("ORD-10032", "I'm sorry, order ORD-10032 was delivered on"),
        ("ORD-10039", "I'm sorry, order ORD-10039 was a final-sale purchase, so it can't be returned"),
        ("ORD-10017", "Order ORD-10017 hasn't been delivered yet, so it can't be returned yet"),
        ("ORD-10008", "Order ORD-10008 hasn't been delivered yet, so there's nothing to return."),
        ("ORD-10037", "Order ORD-10037 was cancelled, so there's nothing to return."),
    ],
)
def test_ineligible_returns_are_refused_with_the_reason(db_path, order_id, reply):
    before = dump(db_path)
    texts, events = start_return(order_id)
    assert len(texts) == 1 and texts[0].startswith(reply), texts
    assert slot_values(events) == {"return_reason": None}
    assert dump(db_path) == before


def test_too_late_names_the_return_window(db_path):
    texts, _ = start_return("ORD-10033")
    assert "outside our 30-day return window" in texts[0]


def test_concurrent_cancellations_cancel_once(db_path, db):
    store = Store(db_path)
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: store.cancel_order("ORD-10009").outcome.value, range(8)))
    assert sorted(outcomes) == ["already_cancelled"] * 7 + ["cancelled"]
    assert db.execute("SELECT count(*) FROM cancellations WHERE order_id = 'ORD-10009'").fetchone()[0] == 1


def test_concurrent_returns_open_one_rma(db_path, db):
    store = Store(db_path)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: store.create_return("ORD-10029", "too big"), range(8)))
    assert sorted(r.outcome.value for r in results) == ["already_open"] * 7 + ["created"]
    assert len({r.rma_id for r in results}) == 1
    assert db.execute("SELECT count(*) FROM returns WHERE order_id = 'ORD-10029'").fetchone()[0] == 1
