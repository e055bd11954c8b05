"""Every user turn's sentiment is stored in the SQLite tracker store and survives a restart."""

import json
import sqlite3


def stored_user_events(tracker_db, sender):
    with sqlite3.connect(tracker_db) as connection:
        rows = connection.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id", (sender,)
        ).fetchall()
    return [json.loads(row[0]) for row in rows]


def test_each_turn_has_its_sentiment_in_the_store_and_after_a_restart(assistant):
    sender = "sentiment-storage"
    texts = ["hi there", "thanks, you've been really helpful!", "this is a joke, I'm so annoyed with you"]
    for text in texts:
        assert assistant.say(sender, text), f"no reply to {text!r}"

    rows = stored_user_events(assistant.tracker_db, sender)
    assert [row["text"] for row in rows] == texts
    sentiments = [row["parse_data"]["sentiment"] for row in rows]
    for sentiment in sentiments:
        assert sentiment["label"] in ("negative", "neutral", "positive")
        assert -1.0 <= sentiment["score"] <= 1.0 and sentiment["model"]
    assert sentiments[1]["label"] == "positive" and sentiments[2]["label"] == "negative"

    assistant.restart()
    after = [e["parse_data"]["sentiment"] for e in assistant.events(sender) if e["event"] == "user"]
    assert after == sentiments
    # the conversation goes on after the restart (the angry turn may have handed it to a
    # colleague, who then gets this message instead of the assistant answering it)
    assistant.say(sender, "ok, where is my order?")
    latest = stored_user_events(assistant.tracker_db, sender)[-1]
    assert latest["text"] == "ok, where is my order?" and latest["parse_data"]["sentiment"]
