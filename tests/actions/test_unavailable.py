"""When the store cannot be reached, every action apologises instead of failing."""

from __future__ import annotations

import sqlite3

import pytest
from action_helpers import dump, make_tracker, owner_email, run, slot_values

from actions.handoff import ActionHandoff
from actions.orders import ActionCancelOrder, ActionOrderStatus, ActionStartReturn
from actions.store import Store

ORDER_SYSTEM_DOWN = ("I'm sorry, I can't reach our order system right now. Please try again in a "
                     "few minutes, or ask for a colleague and they'll help you.")
SLOTS = {"order_id": "ORD-10001", "email": owner_email("ORD-10001"), "confirm_cancel": True,
         "return_reason": "too big", "product": "hiking boots"}


@pytest.mark.parametrize(
    "action, reply, slot_events",
    [
        (ActionOrderStatus, ORDER_SYSTEM_DOWN, {}),
        (ActionCancelOrder, ORDER_SYSTEM_DOWN, {"confirm_cancel": None}),
        (ActionStartReturn, ORDER_SYSTEM_DOWN, {"return_reason": None}),
        (ActionHandoff, "I'm sorry, I couldn't pass you to a colleague just now", {}),
    ],
)
def test_missing_database_file(tmp_path, monkeypatch, action, reply, slot_events):
    monkeypatch.setenv("CSBOT_STORE_DB", str(tmp_path / "gone" / "store.db"))
    texts, events = run(action(), make_tracker(SLOTS, text="hello"))
    assert len(texts) == 1 and texts[0].startswith(reply)
    assert "Traceback" not in texts[0] and "sqlite" not in texts[0].lower()
    assert slot_values(events) == slot_events
    assert not (tmp_path / "gone").exists()


def test_database_without_tables(tmp_path, monkeypatch):
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    monkeypatch.setenv("CSBOT_STORE_DB", str(empty))
    texts, _ = run(ActionOrderStatus(), make_tracker(SLOTS))
    assert texts == [ORDER_SYSTEM_DOWN]


def test_locked_database_is_not_changed(db_path):
    before = dump(db_path)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        action = ActionCancelOrder(store=Store(db_path, timeout_s=0.2))
        texts, events = run(action, make_tracker(SLOTS))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert texts == [ORDER_SYSTEM_DOWN]
    assert slot_values(events) == {"confirm_cancel": None}
    assert dump(db_path) == before
