"""Hand-offs to a human."""

from __future__ import annotations

from action_helpers import run, make_tracker

from actions.handoff import ActionHandoff


def test_handoff_is_recorded(db):
    tracker = make_tracker(text="I want to talk to a real person", intent="request_human",
                           sender_id="conv-42")
    texts, events = run(ActionHandoff(), tracker)
    assert events == []
    rows = db.execute("SELECT * FROM handoffs").fetchall()
    assert len(rows) == 1
    row = rows[0]
    assert (row["conversation_id"], row["intent"], row["last_message"], row["status"]) == (
        "conv-42", "request_human", "I want to talk to a real person", "waiting")
    assert texts == [
        "Of course! I'm passing you to a colleague from our customer care team. They'll see our "
        "conversation so far, so you won't have to repeat yourself, and someone will be with you "
        f"shortly. Your reference is HO-{row['id']}."
    ]
