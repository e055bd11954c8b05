"""`bot analytics export|report` on a real SQLTrackerStore filled with real Rasa events."""

import asyncio
import base64
import csv
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from matplotlib.image import imread
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import (
    ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot import analytics, analytics_report
from bot.cli import main

T0 = 1_700_000_000.0
EMAIL, PHONE = "alice.smith@example.com", "(555) 123-4567"
CARD, ADDRESS = "4111 1111 1111 1111", "742 Evergreen Terrace, Springfield, IL 62704"
SCRIPT = "<script>alert('x')</script>"
PLANTED = [EMAIL, PHONE, CARD, ADDRESS, "742 Evergreen", "4111"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def user(text, intent, confidence, score, at, label=None):
    parse_data = {"intent": {"name": intent, "confidence": confidence}}
    if score is not None:
        label = label or ("negative" if score < -0.05 else "positive" if score > 0.05 else "neutral")
        parse_data["sentiment"] = {"label": label, "score": score, "model": "vader"}
    return UserUttered(text, parse_data["intent"], parse_data=parse_data, timestamp=T0 + at,
                       input_channel="rest")


def bot(action, text, at):
    return [ActionExecuted(action, timestamp=T0 + at), BotUttered(text, timestamp=T0 + at)]


def listen(at):
    return ActionExecuted("action_listen", timestamp=T0 + at)


def start(at):
    return [ActionExecuted("action_session_start", timestamp=T0 + at),
            SessionStarted(timestamp=T0 + at), listen(at)]


CONVERSATIONS = {
    # angry, hands off; planted email + phone, and a script tag
    "alice": [
        *start(0),
        user(f"hi, I'm {EMAIL}", "greet", 0.97, 0.2, 1),
        *bot("utter_greet", "Hello! How can I help?", 2), listen(2),
        user(f"call me at {PHONE}, my order never came", "complaint", 0.88, -0.7, 3),
        *bot("utter_sorry", "I'm sorry to hear that.", 4),
        ActionExecuted("action_check_order", timestamp=T0 + 4), SlotSet("order_id", "ORD-10042"),
        listen(4),
        user(f"this is useless {SCRIPT}", "complaint", 0.91, -0.9, 5),
        ActionExecuted("action_handoff", timestamp=T0 + 6),
        BotUttered("Connecting you to a human.", timestamp=T0 + 6), listen(6),
        BotUttered(f"Alex here, I'll call you back on {PHONE}.", timestamp=T0 + 7,
                   metadata={"handoff_staff": "Alex Rivera"}),
    ],
    # happy; planted card number
    "bob": [
        *start(100),
        user(f"pay with {CARD}", "payment", 0.8, 0.0, 101),
        *bot("utter_payment_ok", "Payment noted.", 102), listen(102),
        user("thanks, great service", "thank", 0.99, 0.8, 103),
        *bot("utter_welcome", "You're welcome!", 104), listen(104),
    ],
    # mildly negative, no hand-off; planted street address; one turn without sentiment
    "carol": [
        *start(200),
        user(f"ship ORD-10001 to {ADDRESS}", "change_address", 0.75, -0.3, 201),
        *bot("utter_address_changed", "Done, the address of ORD-10001 is updated.", 202),
        listen(202),
        user("/affirm", "affirm", 1.0, None, 203),
        listen(203),
    ],
}


def endpoints_for(db_path, tmp_path):
    endpoints = tmp_path / f"endpoints-{db_path.stem}.yml"
    endpoints.write_text(
        f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {db_path}\n", encoding="utf-8"
    )
    return str(endpoints)


def fill(db_path, conversations):
    store = SQLTrackerStore(dialect="sqlite", db=str(db_path))
    for sender_id, events in conversations.items():
        asyncio.run(store.save(DialogueStateTracker.from_events(sender_id, events)))
    return store


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def store_files(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("analytics")
    db = tmp_path / "tracker.db"
    store = fill(db, CONVERSATIONS)
    endpoints = endpoints_for(db, tmp_path)
    out = tmp_path / "report"
    assert main(["analytics", "report", "--endpoints", endpoints, "--out", str(out)]) == 0
    return store, endpoints, out, tmp_path


def test_export_one_row_per_user_turn(store_files, tmp_path):
    _, endpoints, _, _ = store_files
    out = tmp_path / "export"
    assert main(["analytics", "export", "--endpoints", endpoints, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["turns.csv", "turns.parquet"]

    rows = read_csv(out / "turns.csv")
    assert list(rows[0]) == analytics.COLUMNS
    assert [(r["conversation_id"], r["turn"]) for r in rows] == [
        ("alice", "1"), ("alice", "2"), ("alice", "3"), ("bob", "1"), ("bob", "2"),
        ("carol", "1"), ("carol", "2"),
    ]
    first = rows[0]
    assert first == {
        "conversation_id": "alice", "timestamp": "2023-11-14T22:13:21+00:00", "turn": "1",
        "channel": "rest", "text": "hi, I'm [EMAIL]", "intent": "greet",
        "intent_confidence": "0.97", "sentiment_label": "positive", "sentiment_score": "0.2",
        "actions_after": "utter_greet", "handed_off": "true",
    }
    assert rows[1]["actions_after"] == "utter_sorry|action_check_order"
    assert rows[2]["actions_after"] == "action_handoff"
    assert rows[2]["text"] == f"this is useless {SCRIPT}"  # CSV is data, not HTML
    assert {r["handed_off"] for r in rows if r["conversation_id"] != "alice"} == {"false"}
    assert rows[3]["text"] == "pay with [CARD]"
    assert rows[5]["text"] == "ship ORD-10001 to [ADDRESS]"
    assert rows[6]["sentiment_score"] == "" and rows[6]["sentiment_label"] == ""
    assert rows[6]["actions_after"] == ""

    table = pq.read_table(out / "turns.parquet")
    assert table.schema.names == analytics.COLUMNS
    records = table.to_pylist()
    assert len(records) == 7
    assert records[0]["timestamp"].isoformat() == "2023-11-14T22:13:21+00:00"
    assert records[1]["text"] == "call me at [PHONE], my order never came"
    assert records[1]["sentiment_score"] == -0.7 and records[1]["intent_confidence"] == 0.88
    assert records[0]["handed_off"] is True and records[3]["handed_off"] is False
    assert records[6]["sentiment_score"] is None


def test_pii_masked_everywhere_but_kept_in_the_tracker_store(store_files):
    store, _, out, _ = store_files
    csv_text = (out / "turns.csv").read_text(encoding="utf-8")
    parquet_text = str(pq.read_table(out / "turns.parquet").to_pylist())
    html_text = (out / "report.html").read_text(encoding="utf-8")
    for planted in PLANTED:
        for name, text in [("csv", csv_text), ("parquet", parquet_text), ("html", html_text)]:
            assert planted not in text, f"{planted!r} leaked into the {name} output"
    for tag in ["[EMAIL]", "[PHONE]", "[CARD]", "[ADDRESS]"]:
        assert tag in csv_text and tag in parquet_text and tag in html_text

    alice = asyncio.run(store.retrieve_full_tracker("alice"))
    texts = [e.text for e in alice.events if isinstance(e, UserUttered)]
    assert texts[0] == f"hi, I'm {EMAIL}" and PHONE in texts[1]
    with sqlite3.connect(store.engine.url.database) as connection:
        stored = " ".join(row[0] for row in connection.execute("SELECT data FROM events"))
    assert all(planted in stored for planted in [EMAIL, PHONE, CARD, ADDRESS])


def test_a_colleagues_relayed_reply_is_shown_as_staff_in_the_transcript(store_files):
    _, _, out, _ = store_files
    html_text = (out / "report.html").read_text(encoding="utf-8")
    assert ("<b>staff</b>: Alex Rivera: Alex here, I&#x27;ll call you back on [PHONE]."
            in html_text)


def test_report_pngs_and_self_contained_html(store_files):
    _, _, out, _ = store_files
    html_text = (out / "report.html").read_text(encoding="utf-8")
    for name in analytics_report.CHART_FILES:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000
        height, width, _ = imread(out / name).shape
        assert height > 100 and width > 100
        assert f"data:image/png;base64,{base64.b64encode(data).decode('ascii')}" in html_text
    assert "<script" not in html_text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html_text
    assert "src=\"http" not in html_text and "<link" not in html_text
    assert "3 conversations, 7 user turns, 1 handed off" in html_text
    # the most negative conversation first, with bot turns and the hand-off in its transcript
    assert html_text.index(">alice<") < html_text.index(">carol<") < html_text.index(">bob<")
    assert "Connecting you to a human." in html_text and "handed off to a human" in html_text
    assert (out / "turns.csv").exists() and (out / "turns.parquet").exists()


def test_conversation_option_restricts_the_output(store_files, tmp_path):
    _, endpoints, _, _ = store_files
    out = tmp_path / "carol"
    assert main(["analytics", "report", "--endpoints", endpoints, "--out", str(out),
                 "--conversation", "carol"]) == 0
    assert {r["conversation_id"] for r in read_csv(out / "turns.csv")} == {"carol"}
    assert pq.read_table(out / "turns.parquet").num_rows == 2
    html_text = (out / "report.html").read_text(encoding="utf-8")
    assert "Conversation carol" in html_text and "ship ORD-10001 to [ADDRESS]" in html_text
    assert ">alice<" not in html_text and "[CARD]" not in html_text
    assert all((out / name).read_bytes().startswith(PNG_MAGIC) for name in analytics_report.CHART_FILES)

    missing = tmp_path / "missing"
    assert main(["analytics", "export", "--endpoints", endpoints, "--out", str(missing),
                 "--conversation", "nobody"]) == 1
    assert not missing.exists()


def test_handoff_rates_and_intent_summary(store_files):
    _, endpoints, _, _ = store_files
    conversations = analytics.load_conversations(Path(endpoints))
    rates = {r.group: (r.handed_off, r.conversations) for r in analytics_report.handoff_rates(conversations)}
    assert rates == {"all conversations": (1, 3), "mean sentiment < 0": (1, 2),
                     "mean sentiment >= 0": (0, 1)}
    by_intent = {i: (round(m, 3), n) for i, m, n in analytics_report.sentiment_by_intent(conversations)}
    assert by_intent["complaint"] == (-0.8, 2) and "affirm" not in by_intent


def test_empty_store_gives_header_only_outputs(tmp_path, capsys):
    db = tmp_path / "empty.db"
    SQLTrackerStore(dialect="sqlite", db=str(db))  # tables, no events
    out = tmp_path / "out"
    assert main(["analytics", "report", "--endpoints", endpoints_for(db, tmp_path),
                 "--out", str(out)]) == 0
    assert "no conversation" in capsys.readouterr().out
    assert (out / "turns.csv").read_text(encoding="utf-8").splitlines() == [",".join(analytics.COLUMNS)]
    table = pq.read_table(out / "turns.parquet")
    assert table.num_rows == 0 and table.schema.names == analytics.COLUMNS
    assert "No conversations in the tracker store." in (out / "report.html").read_text()
    assert all((out / name).read_bytes().startswith(PNG_MAGIC) for name in analytics_report.CHART_FILES)


def test_missing_sqlite_file_is_empty_and_not_created(tmp_path):
    db = tmp_path / "never-written.db"
    out = tmp_path / "out"
    assert main(["analytics", "export", "--endpoints", endpoints_for(db, tmp_path),
                 "--out", str(out)]) == 0
    assert not db.exists()
    assert len((out / "turns.csv").read_text().splitlines()) == 1


def test_endpoints_without_a_tracker_store_is_an_error(tmp_path):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("action_endpoint:\n  url: http://localhost:5055/webhook\n")
    assert main(["analytics", "export", "--endpoints", str(endpoints),
                 "--out", str(tmp_path / "out")]) == 1
    with pytest.raises(analytics.AnalyticsError, match="in memory only"):
        analytics.tracker_store_config(endpoints)


def test_relative_sqlite_path_is_taken_from_the_project_root(tmp_path):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: .data/tracker.db\n")
    config = analytics.tracker_store_config(endpoints)
    assert config.kwargs["db"] == str(analytics.ROOT / ".data" / "tracker.db")


def test_actions_after_skip_listen_and_session_start():
    conversation = analytics.conversation_from_events("x", [
        user("hello", "greet", 0.9, 0.1, 0),
        ActionExecuted("action_listen"),
        *start(10),
        user("again", "greet", 0.9, 0.1, 11),
        ActionExecuted("utter_greet"), ActionExecuted("action_handoff"),
    ])
    assert [t.actions_after for t in conversation.turns] == ["", "utter_greet|action_handoff"]
    assert conversation.handed_off and all(t.handed_off for t in conversation.turns)
