"""The production topology (`bot cluster up`, bot/cluster.py) under concurrency and faults.

One cluster for the module: 2 Rasa replicas and 2 action servers behind nginx, PostgreSQL
tracker store, Redis lock store, the trained model in models/. Messages go through nginx
(as customers' do) and straight to each replica (as if the balancer sent them there), the
Slack stand-in as Slack; what is checked is what a customer, a colleague and an operator
would see: every message answered once, every event stored once and in order in PostgreSQL,
a hand-off whose Slack replies reach the widget whichever replica gets them, conversations
that go on after a replica, the action servers, PostgreSQL or Redis went away.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import psycopg2
import pytest
import yaml

from bot.cluster import DB_NAME, DB_USER, Cluster, running_cluster
from bot.lock_store import AtomicRedisLockStore
from bot.services import LOOPBACK, MODELS_DIR, ROOT, ingest_knowledge, offline_env
from bot.testing import ensure_chromium
from tools.slack_peer import STAFF_CHANNEL, SlackPeer, wait_for
from tools.widget_client import WidgetCustomer

#: Short enough that a conversation whose message died with its replica goes on within
#: seconds (the dead replica's ticket expires), long enough for any message here.
LOCK_LIFETIME_S = 20
LOGS = ROOT / "artifacts" / "cluster"
TURNS = ["hi", "how much is shipping?", "how long does delivery take?",
         "are you a bot?", "thanks", "bye"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if not any(MODELS_DIR.glob("*.tar.gz")):
        pytest.fail("no trained model in models/: run `bot train` (bot test does) first")
    ingest_knowledge()
    # PostgreSQL runs as the postgres user: its folder must be reachable (pytest's tmp_path
    # is private to root)
    folder = Path(tempfile.mkdtemp(prefix="csbot-cluster-"))
    os.chmod(folder, 0o755)
    try:
        with running_cluster(replicas=2, actions=2, folder=folder / "cluster",
                             env={"TICKET_LOCK_LIFETIME": str(LOCK_LIFETIME_S)}) as running:
            yield running
    finally:  # the logs stay for a look after a failure
        shutil.rmtree(LOGS, ignore_errors=True)
        if (folder / "cluster" / "logs").exists():
            shutil.copytree(folder / "cluster" / "logs", LOGS)
        shutil.rmtree(folder, ignore_errors=True)


def post(url: str, sender: str, text: str, timeout: float = 240) -> Tuple[int, Any]:
    """A REST message; (HTTP status, the JSON answer or the error body)."""
    request = urllib.request.Request(
        f"{url}/webhooks/rest/webhook", data=json.dumps({"sender": sender, "message": text})
        .encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def stored(cluster: Cluster, sender: str) -> List[Dict[str, Any]]:
    """The conversation's events as PostgreSQL holds them, in the order they were stored."""
    with psycopg2.connect(host=LOOPBACK, port=cluster.postgres.port, dbname=DB_NAME,
                          user=DB_USER, password=cluster.postgres.password) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT data FROM events WHERE sender_id = %s ORDER BY id", (sender,))
            return [json.loads(data) for (data,) in cursor.fetchall()]


def user_texts(events: List[Dict[str, Any]]) -> List[str]:
    return [e["text"] for e in events if e["event"] == "user"]


def assert_answered_once_each(events: List[Dict[str, Any]]) -> None:
    """Every user turn is followed by its bot answer and one action_listen before the next
    user turn: no message processed twice, none interleaved with another of its
    conversation, no event stored twice."""
    keys = [(e["event"], e.get("timestamp"), e.get("name"), e.get("text")) for e in events]
    assert len(keys) == len(set(keys)), "an event is stored twice"
    turns: List[List[Dict[str, Any]]] = []
    for event in events:
        if event["event"] == "user":
            turns.append([])
        elif turns:
            turns[-1].append(event)
    for turn in turns:
        listens = [e for e in turn if e["event"] == "action" and e["name"] == "action_listen"]
        assert len(listens) == 1 and turn[-1] is listens[0], turn
        assert sum(e["event"] == "bot" for e in turn) >= 1, turn


def domain_text(response: str) -> str:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    return domain["responses"][response][0]["text"]


def replica_holding(cluster: Cluster, session: str) -> Any:
    """The replica whose turn log has the conversation (the one nginx sent it to)."""
    return wait_for(lambda: [r for i, r in enumerate(cluster.replicas) if session in (
        cluster.folder / "logs" / f"turns-{i}.jsonl").read_text()], 30, "the turn logged")[0]


def routes(cluster: Cluster) -> List[str]:
    """nginx and each replica directly."""
    return [cluster.url, *(f"http://{LOOPBACK}:{r.port}" for r in cluster.replicas)]


def test_interleaved_conversations_through_every_replica(cluster):
    senders = [f"interleaved-{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    urls = routes(cluster)

    def conversation(index: int) -> List[int]:
        # turn k of conversation i goes through route (i + k) % 3: consecutive turns of one
        # conversation reach different replicas
        return [post(urls[(index + k) % len(urls)], senders[index], text)[0]
                for k, text in enumerate(TURNS[:4])]

    with ThreadPoolExecutor(len(senders)) as pool:
        statuses = list(pool.map(conversation, range(len(senders))))
    assert statuses == [[200] * 4] * len(senders)
    # two messages of one conversation at the same moment, to both replicas: the lock
    # store serialises them
    racing = senders[0]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda url: post(url, racing, "thanks"), urls[1:]))
    assert [status for status, _ in answers] == [200, 200]
    assert all(messages for _, messages in answers), answers
    for sender in senders:
        events = stored(cluster, sender)
        expected = TURNS[:4] + (["thanks", "thanks"] if sender == racing else [])
        assert user_texts(events) == expected
        assert_answered_once_each(events)
        for event in events:
            if event["event"] == "user":  # the sentiment of each turn is stored with it
                sentiment = event["parse_data"]["sentiment"]
                assert sentiment["label"] in ("negative", "neutral", "positive")
                assert -1.0 <= sentiment["score"] <= 1.0 and sentiment["model"]


def test_the_widget_gets_replies_through_nginx_and_from_either_replica(cluster):
    async def scenario() -> None:
        async with WidgetCustomer(cluster.url) as customer:
            # the heartbeat timeout the handshake gave (credentials.yml): a replica that
            # queues many customers' messages may be late with the heartbeat
            assert customer.sio.eio.ping_timeout == 60
            await customer.say("hi")
            await customer.wait_until(lambda got: got)
            # a bot message sent by each replica (Rasa's API, as an external event or a
            # colleague's reply would be): one of them does not hold the socket
            for replica in cluster.replicas:
                before = len(customer.received)
                request = urllib.request.Request(
                    f"http://{LOOPBACK}:{replica.port}/conversations/{customer.session_id}"
                    f"/trigger_intent?output_channel=latest&token={cluster.token}",
                    data=json.dumps({"name": "bot_challenge"}).encode(),
                    headers={"Content-Type": "application/json"})
                await asyncio.to_thread(urllib.request.urlopen, request, timeout=120)
                await customer.wait_until(lambda got, n=before: len(got) > n, timeout=60)

    asyncio.run(scenario())


def test_a_slack_hand_off_through_nginx_and_either_replica(cluster):
    """The customer on the widget (one replica holds the socket) asks for a person; the
    colleague takes the conversation in Slack and replies through each replica in turn: every
    reply reaches the customer, and is stored once."""
    assert cluster.slack is not None
    slack = SlackPeer(f"{cluster.url}/webhooks/slack/events", cluster.slack.url,
                      cluster.slack.signing_secret)
    replies = [f"Hi, this is Alex on replica {i}." for i in range(len(cluster.replicas))]

    async def scenario() -> str:
        async with WidgetCustomer(cluster.url) as customer:
            await customer.say("I want to talk to a real person")
            await customer.wait_for_text("asked a colleague")
            handoff = (await asyncio.to_thread(wait_for, lambda: [
                m for m in slack.bot_posts(STAFF_CHANNEL) if (m.get("metadata") or {})
                .get("event_payload", {}).get("conversation_id") == customer.session_id],
                60, "the hand-off message in the staff channel"))[0]
            assert await asyncio.to_thread(
                slack.click, handoff, "handoff_take", customer.session_id) == 200
            await customer.wait_for_text("has joined")
            for replica, text in zip(cluster.replicas, replies):
                peer = SlackPeer(f"http://{LOOPBACK}:{replica.port}/webhooks/slack/events",
                                 cluster.slack.url, cluster.slack.signing_secret)
                event = slack.event(slack.message(STAFF_CHANNEL, text, thread_ts=handoff["ts"]))
                assert await asyncio.to_thread(peer.send, event) == 200
                await customer.wait_for_text(text)
            return customer.session_id

    session = asyncio.run(scenario())
    staff_lines = [e["text"] for e in stored(cluster, session) if e["event"] == "bot"
                   and (e.get("metadata") or {}).get("handoff_staff")]
    assert staff_lines == replies


def test_a_replica_killed_mid_load_loses_no_stored_turn(cluster):
    senders = [f"killed-{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    results: Dict[str, List[Tuple[str, int]]] = {s: [] for s in senders}
    half_done = threading.Barrier(len(senders) + 1)

    def conversation(sender: str) -> None:
        for k, text in enumerate(TURNS):
            if k == 2:
                half_done.wait(timeout=300)  # the kill comes now, while messages fly
            results[sender].append((text, post(cluster.url, sender, text)[0]))

    with ThreadPoolExecutor(len(senders)) as pool:
        futures = [pool.submit(conversation, s) for s in senders]
        half_done.wait(timeout=300)
        before = {s: stored(cluster, s) for s in senders}
        time.sleep(0.5)
        victim = cluster.replicas[0]
        victim.kill()
        for future in futures:
            future.result()
    try:
        for sender in senders:
            statuses = [status for _, status in results[sender]]
            # a message the dead replica was processing gets nginx's 502 (nginx never resends
            # a request that may have been processed); every other one is answered, none
            # waits for the dead replica's lock until it times out (504)
            assert statuses[:2] == [200, 200] and statuses.count(502) <= 1, statuses
            assert [s for s in statuses if s != 502] == [200] * (len(TURNS) - statuses.count(502)), statuses
            events = stored(cluster, sender)
            assert events[:len(before[sender])] == before[sender]  # nothing stored was lost
            answered = [text for text, status in results[sender] if status == 200]
            texts = user_texts(events)
            assert [t for t in texts if t in answered] == answered, (texts, answered)
            assert_answered_once_each(events)
        for sender in senders:  # every conversation goes on, on the replica left
            status, messages = post(cluster.url, sender, "thanks")
            assert status == 200 and messages, (sender, status)
            assert user_texts(stored(cluster, sender))[-1] == "thanks"
    finally:
        victim.restart()
    # the replica restarted: the conversations it served go on with their history
    sender = senders[0]
    status, messages = post(f"http://{LOOPBACK}:{victim.port}", sender, "bye")
    assert status == 200 and messages
    events = stored(cluster, sender)
    assert user_texts(events)[-2:] == ["thanks", "bye"]
    assert_answered_once_each(events)


def test_a_waiting_message_outlives_a_dead_holders_lock(cluster):
    """The lock of a replica that died while holding it: the next message, which took its
    ticket a moment after, is served once the dead ticket expires, and not left waiting for
    ever (its own ticket would expire in the same second in Rasa's RedisLockStore)."""
    store = AtomicRedisLockStore(host=LOOPBACK, port=cluster.redis.port,
                                 password=cluster.redis.password)
    conversation = f"dead-holder-{uuid.uuid4().hex[:6]}"
    lifetime = 2.0
    dead = store.issue_ticket(conversation, lifetime)  # its process never comes back

    async def waiter() -> float:
        started = time.monotonic()
        async with store.lock(conversation, lifetime, wait_time_in_seconds=0.5) as lock:
            assert not lock.is_locked(dead + 1)
            return time.monotonic() - started

    time.sleep(0.3)  # the waiter's ticket would expire 0.3 s after the dead one
    waited = asyncio.run(asyncio.wait_for(waiter(), timeout=20))
    assert lifetime - 0.5 <= waited <= lifetime + 2
    assert store.get_lock(conversation) is None  # released and removed


def test_concurrent_tickets_are_all_distinct(cluster):
    """Issued at once from many threads (two replicas' worth), every ticket is different."""
    store = AtomicRedisLockStore(host=LOOPBACK, port=cluster.redis.port,
                                 password=cluster.redis.password)
    conversation = f"tickets-{uuid.uuid4().hex[:6]}"
    with ThreadPoolExecutor(16) as pool:
        tickets = list(pool.map(lambda _: store.issue_ticket(conversation, 60), range(300)))
    assert sorted(tickets) == list(range(300))
    for ticket in tickets:
        store.cleanup(conversation, ticket)
    assert store.get_lock(conversation) is None


def test_the_widget_customer_goes_on_after_their_replica_is_killed(cluster):
    """What a customer does when the widget's connection drops: it connects again (nginx
    sends it to a live replica) with the same session, and the conversation goes on."""
    source = "127.0.0.77"

    async def chat(session: Optional[str], text: str) -> str:
        async with WidgetCustomer(cluster.url, session, source=source) as customer:
            await customer.say(text)
            await customer.wait_until(lambda got: got)
            return customer.session_id

    session = asyncio.run(chat(None, "hi"))
    holder = replica_holding(cluster, session)
    holder.kill()
    try:
        asyncio.run(chat(session, "how much is shipping?"))
        events = stored(cluster, session)
        assert user_texts(events) == ["hi", "how much is shipping?"]
        assert_answered_once_each(events)
    finally:
        holder.restart()


def test_a_browser_customer_keeps_chatting_when_their_replica_is_killed(cluster):
    """The widget in headless Chromium through nginx (tests/browser/cluster_failover.mjs):
    after the first reply the replica holding the conversation is killed; the page stays
    open, the widget reconnects by itself and the next message is answered in the same
    conversation, stored once, in order."""
    browser = subprocess.Popen(
        ["node", str(ROOT / "tests" / "browser" / "cluster_failover.mjs")], cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=offline_env(CHROMIUM=str(ensure_chromium()),
                        WIDGET_URL=f"{cluster.url}/webhooks/widget/chat"))
    assert browser.stdin is not None and browser.stdout is not None
    try:
        first = browser.stdout.readline()  # the script's own timeouts bound the wait
        assert first, browser.communicate(timeout=30)[1]
        session = json.loads(first)["session"]
        holder = replica_holding(cluster, session)
        holder.kill()
        try:
            browser.stdin.write("killed\n")
            browser.stdin.flush()
            out, err = browser.communicate(timeout=300)
            assert browser.returncode == 0, err
            assert any("shipping" in reply.lower() for reply in json.loads(out)["replies"])
            events = stored(cluster, session)
            assert user_texts(events) == ["hi", "how much is shipping?"]
            assert_answered_once_each(events)
        finally:
            holder.restart()
    finally:
        if browser.poll() is None:
            browser.kill()


def test_action_servers_all_down_then_back(cluster):
    sender = f"actions-down-{uuid.uuid4().hex[:6]}"
    assert post(cluster.url, sender, "hi")[0] == 200
    for server in cluster.actions:
        server.kill()
    status, messages = post(cluster.url, sender, "I want to talk to a real person")
    assert status == 200
    assert [m.get("text") for m in messages] == [domain_text("utter_actions_unavailable")]
    cluster.actions[0].restart()
    time.sleep(6)  # nginx tries a failed server again after its fail_timeout (5 s)
    status, messages = post(cluster.url, sender, "I want to talk to a real person")
    assert status == 200 and messages
    assert domain_text("utter_actions_unavailable") not in [m.get("text") for m in messages]
    assert any("colleague" in (m.get("text") or "") for m in messages), messages
    cluster.actions[1].restart()


def test_postgres_restarted_the_next_message_is_stored(cluster):
    sender = f"pg-restart-{uuid.uuid4().hex[:6]}"
    for url in routes(cluster)[1:]:  # both replicas hold pooled connections
        assert post(url, sender, "hi")[0] == 200
    cluster.postgres.restart()
    for url in routes(cluster)[1:]:
        status, messages = post(url, sender, "how much is shipping?")
        assert status == 200 and messages
    events = stored(cluster, sender)
    assert user_texts(events) == ["hi", "hi", "how much is shipping?", "how much is shipping?"]
    assert_answered_once_each(events)


def test_redis_down_is_a_clear_error_and_never_a_double_answer(cluster):
    sender = f"redis-down-{uuid.uuid4().hex[:6]}"
    assert post(cluster.url, sender, "hi")[0] == 200
    assert cluster.redis.process is not None
    cluster.redis.process.terminate()
    cluster.redis.process.wait()
    try:
        status, body = post(cluster.url, sender, "how much is shipping?")
        assert status == 503 and "lock store" in body
        assert user_texts(stored(cluster, sender)) == ["hi"]  # not processed at all
    finally:
        cluster.redis.start()
    status, messages = post(cluster.url, sender, "how much is shipping?")
    assert status == 200 and messages
    events = stored(cluster, sender)
    assert user_texts(events) == ["hi", "how much is shipping?"]
    assert_answered_once_each(events)
