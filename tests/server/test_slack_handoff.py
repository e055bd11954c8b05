"""Slack for staff and the human hand-off, against real peers: the Rasa server with the
slack-bolt channel, the action server, the local Slack stand-in as Slack's Web API, signed
Events API requests as Slack sends them, and a customer on the widget's socket.io channel.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable, Dict

import pytest

from tools.slack_peer import BOT_USER, DM_CHANNEL, STAFF_CHANNEL, STAFF_USER, SlackPeer, wait_for
from tools.widget_client import WidgetCustomer

OTHER_COLLEAGUE = "U0SAM"  # the stand-in's second colleague


@pytest.fixture(scope="module")
def slack(assistant) -> SlackPeer:
    return SlackPeer(assistant.url("/webhooks/slack/events"), assistant.slack.url,
                     assistant.slack.signing_secret)


def test_staff_chat_with_the_assistant_in_a_direct_message(slack):
    event = slack.message(DM_CHANNEL, "how much does shipping cost?", channel_type="im")
    assert slack.send(slack.event(event)) == 200
    replies = wait_for(lambda: slack.bot_posts(DM_CHANNEL, thread_ts=event["ts"]),
                       what="the assistant's answer in the DM thread")
    assert "$5.99" in replies[0]["text"] and "$50" in replies[0]["text"]


def test_mention_in_a_channel_is_answered_in_its_thread(slack):
    event = {**slack.message(STAFF_CHANNEL, f"<@{BOT_USER}> can I return a final sale item?"),
             "type": "app_mention"}
    assert slack.send(slack.event(event)) == 200
    replies = wait_for(lambda: slack.bot_posts(STAFF_CHANNEL, thread_ts=event["ts"]),
                       what="a threaded answer to the mention")
    assert replies[0]["text"].strip()


def test_buttons_in_a_staff_chat_are_answered_by_clicking_them(slack):
    sam = "U0SAM"  # a colleague with a conversation of their own
    event = slack.message(DM_CHANNEL, "I'd like to leave some feedback about my last delivery",
                          channel_type="im", user=sam)
    assert slack.send(slack.event(event)) == 200
    offer = wait_for(lambda: [m for m in slack.bot_posts(DM_CHANNEL, thread_ts=event["ts"])
                              if m.get("blocks")], what="the offer of a colleague, with buttons")[0]
    buttons = {e["text"]["text"]: e for block in offer["blocks"] if block["type"] == "actions"
               for e in block["elements"]}
    assert set(buttons) == {"Yes, please", "No, thanks"}
    assert slack.click(offer, buttons["No, thanks"]["action_id"], buttons["No, thanks"]["value"],
                       user=sam) == 200
    wait_for(lambda: [m for m in slack.bot_posts(DM_CHANNEL, thread_ts=event["ts"])
                      if "anything else" in m["text"].lower()], what="the answer to the click")


def test_a_retried_event_is_answered_once(slack):
    event = slack.message(DM_CHANNEL, "hello", channel_type="im")
    body = slack.event(event, event_id="EvRETRIED0001")
    assert slack.send(body) == 200
    wait_for(lambda: slack.bot_posts(DM_CHANNEL, thread_ts=event["ts"]), what="first answer")
    time.sleep(3)  # an answer may be several messages
    answered = len(slack.bot_posts(DM_CHANNEL, thread_ts=event["ts"]))
    assert slack.send(body, headers={"X-Slack-Retry-Num": "1",
                                     "X-Slack-Retry-Reason": "http_timeout"}) == 200
    time.sleep(5)
    assert len(slack.bot_posts(DM_CHANNEL, thread_ts=event["ts"])) == answered


@pytest.mark.parametrize("case", ["wrong signature", "no signature", "stale timestamp",
                                  "malformed body"])
def test_bad_requests_get_an_http_error_and_change_nothing(slack, assistant, case):
    event = slack.message(DM_CHANNEL, "where is my order ORD-10012?", channel_type="im")
    body = slack.event(event)
    before = len(slack.messages())
    if case == "wrong signature":
        status = slack.send(body, headers={"X-Slack-Signature": "v0=" + "0" * 64})
    elif case == "no signature":
        status = slack.send(body, headers={"X-Slack-Signature": ""})
    elif case == "stale timestamp":  # correctly signed, but 10 minutes old (a replay)
        status = slack.send(body, timestamp=int(time.time()) - 600)
    else:
        status = slack.send("{not json", content_type="application/json")
    assert 400 <= status < 500
    time.sleep(3)
    assert len(slack.messages()) == before
    assert not any(e["event"] == "user" for e in assistant.events(f"slack-{STAFF_USER}")
                   if "ORD-10012" in (e.get("text") or ""))


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


def test_handoff_round_trip_between_the_widget_and_a_slack_thread(slack, assistant):
    async def scenario() -> None:
        async with WidgetCustomer(assistant.url("")) as customer:
            await customer.say("I want to talk to a real person")
            await customer.wait_for_text("asked a colleague")
            posts = await _in_thread(wait_for, lambda: [
                m for m in slack.bot_posts(STAFF_CHANNEL) if (m.get("metadata") or {})
                .get("event_payload", {}).get("conversation_id") == customer.session_id],
                30, "the hand-off message in the staff channel")
            handoff = posts[0]
            assert "asked for a person" in handoff["text"]
            shown = json.dumps(handoff["blocks"])
            assert "I want to talk to a real person" in shown and "Take conversation" in shown

            # before anyone takes it, the customer's messages already reach the thread
            customer.received.clear()
            await customer.say("my order ORD-10012 never arrived")
            await _in_thread(wait_for, lambda: slack.bot_posts(
                STAFF_CHANNEL, thread_ts=handoff["ts"], text="*Customer:* my order ORD-10012 "
                "never arrived"), 30, "the customer's message in the thread")
            await asyncio.sleep(2)
            assert customer.received == []  # the assistant stayed quiet

            assert await _in_thread(slack.click, handoff, "handoff_take", customer.session_id) == 200
            await customer.wait_for_text("Alex Rivera from our customer care team has joined")

            reply = slack.message(STAFF_CHANNEL, "Hi, I'm Alex. I'm checking with the courier "
                                  "now &amp; will update you.", thread_ts=handoff["ts"])
            assert await _in_thread(slack.send, slack.event(reply)) == 200
            await customer.wait_for_text("I'm checking with the courier now & will update you.")

            give_back = slack.message(STAFF_CHANNEL, "!return", thread_ts=handoff["ts"])
            assert await _in_thread(slack.send, slack.event(give_back)) == 200
            await customer.wait_for_text("You're back with the Threadline virtual assistant")

            customer.received.clear()
            relayed = len(slack.bot_posts(STAFF_CHANNEL, thread_ts=handoff["ts"]))
            await customer.say("how much does shipping cost?")
            await customer.wait_for_text("$5.99")  # the assistant answers again
            assert len(slack.bot_posts(STAFF_CHANNEL, thread_ts=handoff["ts"])) == relayed

        events = assistant.events(customer.session_id)
        staff_lines = [e for e in events if e["event"] == "bot"
                       and (e.get("metadata") or {}).get("handoff_staff") == "Alex Rivera"]
        assert [e["text"] for e in staff_lines] == [
            "Hi, I'm Alex. I'm checking with the courier now & will update you."]
        parent = next(m for m in slack.messages() if m["ts"] == handoff["ts"])
        assert "Handed back to the assistant" in json.dumps(parent["blocks"])

    asyncio.run(scenario())


def test_a_thread_reply_before_taking_is_not_sent_to_the_customer(slack, assistant):
    sender = f"untaken-{uuid.uuid4().hex[:8]}"
    assistant.say(sender, "can I speak to a human agent")
    handoff = wait_for(lambda: [m for m in slack.bot_posts(STAFF_CHANNEL)
                                if (m.get("metadata") or {}).get("event_payload", {})
                                .get("conversation_id") == sender], what="the hand-off")[0]
    reply = slack.message(STAFF_CHANNEL, "hello from staff", thread_ts=handoff["ts"])
    assert slack.send(slack.event(reply)) == 200
    wait_for(lambda: [m for m in slack.bot_posts(STAFF_CHANNEL, thread_ts=handoff["ts"])
                      if "Take conversation* first" in m["text"]], what="the reminder")
    assert not any(e["event"] == "bot" and e.get("text") == "hello from staff"
                   for e in assistant.events(sender))


def test_slack_outage_keeps_the_request_and_posts_it_later(slack, assistant):
    sender = f"outage-{uuid.uuid4().hex[:8]}"
    slack.outage(True)
    try:
        texts = [m.get("text", "") for m in assistant.say(sender, "get me a person please")]
        assert any("can't reach our customer care team" in t and "HO-" in t for t in texts)
        # the assistant keeps helping meanwhile
        assert any("$5.99" in m.get("text", "")
                   for m in assistant.say(sender, "how much does shipping cost?"))
        time.sleep(2)
        with sqlite3.connect(assistant.store) as db:
            # waiting, or claimed for a moment by the retry task's next (failing) attempt
            assert db.execute("SELECT status FROM handoffs WHERE conversation_id = ?",
                              (sender,)).fetchall() in ([("waiting",)], [("posting",)])
    finally:
        slack.outage(False)
    wait_for(lambda: [m for m in slack.bot_posts(STAFF_CHANNEL)
                      if (m.get("metadata") or {}).get("event_payload", {})
                      .get("conversation_id") == sender], 30, "the queued hand-off posted")
    with sqlite3.connect(assistant.store) as db:
        assert db.execute("SELECT status FROM handoffs WHERE conversation_id = ?",
                          (sender,)).fetchall() == [("posted",)]


def test_only_the_colleague_who_took_it_answers_or_hands_it_back(slack, assistant):
    sender = f"held-{uuid.uuid4().hex[:8]}"
    assistant.say(sender, "I want to talk to a real person")
    handoff = wait_for(lambda: [m for m in slack.bot_posts(STAFF_CHANNEL)
                                if (m.get("metadata") or {}).get("event_payload", {})
                                .get("conversation_id") == sender], what="the hand-off")[0]
    thread = handoff["ts"]

    def slots() -> Dict[str, Any]:
        with urllib.request.urlopen(assistant.api(f"/conversations/{sender}/tracker")) as answer:
            return json.load(answer)["slots"]

    assert slack.click(handoff, "handoff_take", sender) == 200
    wait_for(lambda: slots()["handoff_status"] == "held", what="Alex holding it")
    wait_for(lambda: [m for m in slack.bot_posts(STAFF_CHANNEL, thread_ts=thread)
                      if "took this conversation" in m["text"]], what="the take notice")
    public = len(slack.bot_posts(STAFF_CHANNEL, thread_ts=thread))
    events = len(assistant.events(sender))
    notice = "Alex Rivera holds this conversation."  # credentials.yml's held_notice

    attempts = [
        lambda: slack.send(slack.event(slack.message(
            STAFF_CHANNEL, "hi, Sam here, I'll take over", thread, user=OTHER_COLLEAGUE))),
        lambda: slack.send(slack.event(slack.message(
            STAFF_CHANNEL, "!return", thread, user=OTHER_COLLEAGUE))),
        lambda: slack.click(handoff, "handoff_return", sender, user=OTHER_COLLEAGUE),
        lambda: slack.click(handoff, "handoff_take", sender, user=OTHER_COLLEAGUE),
    ]
    for number, attempt in enumerate(attempts, 1):
        assert attempt() == 200
        wait_for(lambda number=number: len(slack.ephemeral(OTHER_COLLEAGUE, thread)) == number,
                 what=f"Sam's notice #{number}")
    assert slack.ephemeral(OTHER_COLLEAGUE, thread) == [notice] * len(attempts)
    assert slack.ephemeral(STAFF_USER, thread) == []
    time.sleep(2)
    # nothing reached the customer or the channel, and Alex still holds it
    assert len(assistant.events(sender)) == events
    assert len(slack.bot_posts(STAFF_CHANNEL, thread_ts=thread)) == public
    assert (slots()["handoff_status"], slots()["handoff_staff"]) == ("held", "Alex Rivera")

    # the holder still answers and hands back
    reply = slack.message(STAFF_CHANNEL, "Alex here, all sorted.", thread)
    assert slack.send(slack.event(reply)) == 200
    wait_for(lambda: any(e["event"] == "bot" and e.get("text") == "Alex here, all sorted."
                         for e in assistant.events(sender)), what="Alex's reply")
    assert slack.send(slack.event(slack.message(STAFF_CHANNEL, "!return", thread))) == 200
    wait_for(lambda: slots()["handoff_status"] == "returned", what="the hand-back")
    assert not any(e["event"] == "bot" and "Sam here" in (e.get("text") or "")
                   for e in assistant.events(sender))
