"""Hand-offs to a human: recorded in the store, posted to the staff channel (the local Slack
stand-in as Slack's Web API), kept when Slack is down, and the customer's messages relayed."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, Dict, List

import pytest
from rasa_sdk import Tracker

from action_helpers import make_tracker, owner_email, run
from actions.handoff import ActionHandoff, ActionRelayToStaff
from actions.staff_channel import StaffChannel, StaffChannelSettings, post_waiting_handoffs
from actions.store import Store, utc_now


def posted(url: str) -> List[Dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/_standin/messages") as response:
        return json.load(response)["messages"]


def outage(url: str, down: bool) -> None:
    request = urllib.request.Request(f"{url}/_standin/outage", json.dumps({"down": down}).encode(),
                                     {"Content-Type": "application/json"})
    urllib.request.urlopen(request).close()


@pytest.fixture
def settings(slack_standin: str, slack_bot_token: str) -> StaffChannelSettings:
    outage(slack_standin, False)
    return StaffChannelSettings(token=slack_bot_token, channel="#customer-care",
                                api_url=f"{slack_standin}/api/", timeout_s=3)


def angry_tracker(sender_id: str) -> Tracker:
    """Three turns that went badly, with the scores the sentiment component stores."""
    turns = [("where is my order ORD-10012", "order_status", 0.0),
             ("that's not good enough <!channel>", "complaint", -0.5),
             ("I want to talk to a real person", "request_human", -0.8)]
    events: List[Dict[str, Any]] = []
    for text, intent, score in turns:
        events += [{"event": "user", "text": text, "parse_data": {
            "intent": {"name": intent}, "sentiment": {"label": "negative", "score": score}}},
            {"event": "bot", "text": f"answer to {intent}"}]
    events.pop()  # the hand-off is the answer to the last turn
    slots = {"order_id": "ORD-10012", "email": owner_email("ORD-10012")}
    latest = {"text": turns[-1][0], "intent": {"name": "request_human"}, "entities": []}
    return Tracker(sender_id, slots, latest, events, False, None, {}, "action_listen")


def test_without_a_staff_channel_the_handoff_is_queued_in_the_store(db, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    tracker = make_tracker(text="I want to talk to a real person", intent="request_human",
                           sender_id="conv-42")
    texts, events = run(ActionHandoff(), tracker)
    row = db.execute("SELECT * FROM handoffs").fetchone()
    assert (row["conversation_id"], row["intent"], row["last_message"], row["status"]) == (
        "conv-42", "request_human", "I want to talk to a real person", "waiting")
    assert events == [{"event": "slot", "timestamp": None, "name": "handoff_status",
                       "value": "queued"}]
    assert texts[0].endswith(f"Your reference is HO-{row['id']}.")


def test_handoff_posts_who_why_last_turns_and_sentiment_to_staff(db, settings, slack_standin):
    texts, events = run(ActionHandoff(settings=settings), angry_tracker("conv-staff"))
    assert "asked a colleague" in texts[0]
    assert events[0]["name"] == "handoff_status" and events[0]["value"] == "requested"
    message = [m for m in posted(slack_standin)
               if m.get("metadata", {}).get("event_payload", {}).get("conversation_id")
               == "conv-staff"][-1]
    shown = json.dumps(message["blocks"], ensure_ascii=False)
    row = db.execute("SELECT * FROM handoffs WHERE conversation_id = 'conv-staff'").fetchone()
    assert message["text"] == f"Hand-off HO-{row['id']}: asked for a person"
    assert "Joyce Wu &lt;joyce.wu@example.com&gt; (silver member)" in shown
    assert "order ORD-10012" in shown
    assert "+0.00 → -0.50 → -0.80 (falling)" in shown
    assert "that's not good enough &lt;!channel&gt;" in shown  # cannot ping the channel
    assert "Take conversation" in shown
    assert (row["status"], row["slack_channel"], row["slack_ts"]) == (
        "posted", message["channel"], message["ts"])


def test_when_slack_is_down_the_request_waits_and_is_posted_later(db, store, settings,
                                                                  slack_standin):
    outage(slack_standin, True)
    texts, events = run(ActionHandoff(settings=settings), angry_tracker("conv-outage"))
    assert "can't reach our customer care team" in texts[0]
    assert owner_email("ORD-10012") in texts[0]
    assert events[0]["value"] == "queued"
    row = db.execute("SELECT * FROM handoffs WHERE conversation_id = 'conv-outage'").fetchone()
    assert row["status"] == "waiting" and json.loads(row["staff_message"])["blocks"]
    assert row["claimed_by"] is None  # the failed post gave its claim back

    outage(slack_standin, False)
    assert asyncio.run(post_waiting_handoffs(StaffChannel(settings), store)) == 0
    row = db.execute("SELECT * FROM handoffs WHERE conversation_id = 'conv-outage'").fetchone()
    assert row["status"] == "posted"
    assert any(m["ts"] == row["slack_ts"] for m in posted(slack_standin))


def test_customer_messages_are_relayed_into_the_handoff_thread(db, settings, slack_standin):
    run(ActionHandoff(settings=settings), angry_tracker("conv-relay"))
    thread = db.execute("SELECT slack_ts FROM handoffs WHERE conversation_id = 'conv-relay'"
                        ).fetchone()["slack_ts"]
    tracker = make_tracker(text="it was due <b>Monday</b>", intent="order_status",
                           sender_id="conv-relay")
    texts, _ = run(ActionRelayToStaff(settings=settings), tracker)
    assert texts == []  # the assistant says nothing; the colleague answers
    replies = [m for m in posted(slack_standin) if m.get("thread_ts") == thread]
    assert replies[-1]["text"] == "*Customer:* it was due &lt;b&gt;Monday&lt;/b&gt;"


def test_relay_without_a_posted_handoff_tells_the_customer(db, settings):
    tracker = make_tracker(text="hello?", intent="greet", sender_id="never-handed-off")
    texts, _ = run(ActionRelayToStaff(settings=settings), tracker)
    assert texts == ["I couldn't pass that on to our colleague just now. Please send it again "
                     "in a moment."]


POSTERS = 12


def _poster(db_path: Path, settings: StaffChannelSettings,
            start: "threading.Barrier | None" = None) -> int:
    """One poster (an action or a retry task, in its own thread or process)."""
    if start is not None:
        start.wait()
    return asyncio.run(post_waiting_handoffs(StaffChannel(settings), Store(db_path)))


@pytest.mark.parametrize("posters", ["threads", "processes"])
def test_concurrent_posters_post_each_waiting_handoff_exactly_once(
        db, db_path, store, settings, slack_standin, posters):
    marker = uuid.uuid4().hex[:8]
    references = []
    for n in range(20):
        reference = store.record_handoff(f"conv-{marker}-{n}", "request_human", "help")
        store.attach_staff_message(reference, json.dumps({"text": f"{marker} HO-{reference}"}))
        references.append(reference)
    if posters == "threads":
        start = threading.Barrier(POSTERS)
        with ThreadPoolExecutor(POSTERS) as pool:
            waiting = list(pool.map(lambda _: _poster(db_path, settings, start), range(POSTERS)))
    else:  # several action servers on one SQLite file
        with ProcessPoolExecutor(POSTERS) as pool:
            waiting = list(pool.map(_poster, [db_path] * POSTERS, [settings] * POSTERS))
    assert waiting == [0] * POSTERS
    texts = sorted(m["text"] for m in posted(slack_standin) if m["text"].startswith(marker))
    assert texts == sorted(f"{marker} HO-{reference}" for reference in references)
    rows = db.execute("SELECT id, status, slack_ts, claimed_by FROM handoffs WHERE id IN (%s)"
                      % ",".join("?" * len(references)), references).fetchall()
    assert {(r["status"], r["claimed_by"]) for r in rows} == {("posted", None)}
    posted_ts = {m["ts"] for m in posted(slack_standin) if m["text"].startswith(marker)}
    assert {r["slack_ts"] for r in rows} == posted_ts


def test_a_claim_is_exclusive_until_released_or_stale(store):
    reference = store.record_handoff("conv-claim", "request_human", "help")
    assert store.claim_handoff(reference, stale_after_s=60) is None  # nothing to post yet
    store.attach_staff_message(reference, json.dumps({"text": "HO"}))
    claim = store.claim_handoff(reference, stale_after_s=60)
    assert claim and store.claim_handoff(reference, stale_after_s=60) is None
    store.release_handoff(reference, "someone-else's-claim")  # only the holder releases
    assert store.claim_handoff(reference, stale_after_s=60) is None
    store.release_handoff(reference, claim)
    again = store.claim_handoff(reference, stale_after_s=60)
    assert again and again != claim
    # a poster that died mid-post: after stale_after_s another may take the request over
    later = utc_now() + timedelta(seconds=61)
    taken_over = store.claim_handoff(reference, stale_after_s=60, now=later)
    assert taken_over and taken_over != again
    store.mark_handoff_posted(reference, again, "C0STAFF", "1.000001")  # the old claim: no-op
    assert store.claim_handoff(reference, stale_after_s=60, now=later) is None
    store.mark_handoff_posted(reference, taken_over, "C0STAFF", "1.000002")
    assert store.unposted_handoffs() == []
