"""The per-turn JSON log and the analytics report on conversations held over REST."""

import csv
import json

from bot.cli import main as bot


def test_turn_log_is_redacted_while_the_store_keeps_the_original(assistant):
    sender = "pii-customer"
    text = "my email is jane.doe@example.com and my phone is +1 415 555 0134"
    assistant.say(sender, text)
    lines = [json.loads(line) for line in assistant.turn_log.read_text().splitlines()]
    mine = [line for line in lines if line["conversation_id"] == sender]
    assert len(mine) == 1
    assert "jane.doe@example.com" not in mine[0]["text"] and "[EMAIL]" in mine[0]["text"]
    assert "[PHONE]" in mine[0]["text"]
    assert mine[0]["sentiment_label"] in ("negative", "neutral", "positive")
    assert mine[0]["intent"] and mine[0]["channel"] == "rest"
    stored = [e["text"] for e in assistant.events(sender) if e["event"] == "user"]
    assert stored == [text]


def test_analytics_report_on_real_conversations(assistant, tmp_path):
    sender = "angry-customer"
    for text in ["where is my order?", "I want a human right now"]:
        assistant.say(sender, text)
    out = tmp_path / "report"
    assert bot(["analytics", "report", "--endpoints", str(assistant.endpoints), "--out", str(out)]) == 0
    with open(out / "turns.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["conversation_id"] == sender]
    assert [r["text"] for r in rows] == ["where is my order?", "I want a human right now"]
    assert rows[-1]["handed_off"] == "true" and "action_handoff" in rows[-1]["actions_after"]
    assert all(r["sentiment_label"] for r in rows)
    for name in ("sentiment_by_turn.png", "sentiment_by_intent.png", "handoff_rate.png", "report.html"):
        assert (out / name).stat().st_size > 1000
