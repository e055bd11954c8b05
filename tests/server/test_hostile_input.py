"""Hostile input against the live servers (issue 10, item 6), and the public-channel limits.

Every case gets a clear answer, and what must not change does not: the tracker store and the
demo store are compared row for row, the per-turn log and the knowledge index byte for byte,
before and after. The servers are the session's (conftest.py): the trained model, the action
server on a seeded store, the Slack stand-in; the rate limit runs with the short test window.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import yaml
from slack_sdk.signature import SignatureVerifier

from bot.limits import LimitSettings
from bot.services import ROOT, knowledge, offline_env
from tools.slack_peer import wait_for
from tools.widget_client import WidgetCustomer

REST, WIDGET, SLACK = "bot.rest.RestChannel", "bot.web_widget.WebWidgetInput", \
    "bot.slack.SlackBoltInput"
INDEX = ROOT / ".data" / "knowledge-index"


# ---------------------------------------------------------------- snapshots
def rows(database: Path) -> Dict[str, List[Tuple]]:
    """Every row of every table, read-only."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        tables = [name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {table: db.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
                for table in tables}


def files(folder: Path) -> Dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def snapshot(assistant) -> Dict[str, Any]:
    return {"tracker store": rows(assistant.tracker_db), "demo store": rows(assistant.store),
            "turn log": assistant.turn_log.read_bytes() if assistant.turn_log.exists() else b""}


@contextmanager
def nothing_changes(assistant, settle_s: float = 2.0) -> Iterator[None]:
    """Asserts the stores and the turn log are the same after the block as before it."""
    before = snapshot(assistant)
    yield
    time.sleep(settle_s)  # anything handed on asynchronously (Slack events) has landed
    after = snapshot(assistant)
    for part in before:
        assert after[part] == before[part], f"the {part} changed"


@pytest.fixture(scope="module", autouse=True)
def index_untouched():
    """No case in this module may change the live knowledge index."""
    before = files(INDEX)
    yield
    assert files(INDEX) == before


@pytest.fixture(scope="module")
def limits(assistant) -> Dict[str, LimitSettings]:
    """The limits each channel of the running server was started with."""
    credentials = yaml.safe_load(assistant.credentials.read_text())
    return {name: LimitSettings.from_credentials(credentials[name])
            for name in (REST, WIDGET, SLACK)}


def user_texts(assistant, sender: str) -> List[str]:
    return [e["text"] for e in assistant.events(sender) if e["event"] == "user"]


# ---------------------------------------------------------------- REST
def post(assistant, body: bytes, content_type: str = "application/json") -> Tuple[int, Any]:
    request = urllib.request.Request(assistant.url("/webhooks/rest/webhook"), data=body,
                                     headers={"Content-Type": content_type})
    try:
        # long: a burst of one sender's messages is answered one after the other
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def say(assistant, sender: str, message: Any) -> Tuple[int, Any]:
    return post(assistant, json.dumps({"sender": sender, "message": message}).encode())


@pytest.mark.parametrize("body,problem", [
    (b'{"sender": "hostile-json", "message": ', "must be a JSON object"),
    (b'{"sender": "hostile-utf8", "message": "where is \xff\xfe my order"}',
     "must be a JSON object"),
    (b"", "must be a JSON object"),
    (b'["hostile-list", "hi"]', "must be a JSON object"),
    (b'{"message": "where is my order ORD-10012?"}', '"sender" must be a non-empty text'),
    (b'{"sender": {"$ne": null}, "message": "hi"}', '"sender" must be a non-empty text'),
    (b'{"sender": "hostile-type", "message": {"$gt": ""}}', '"message" must be a text'),
    (b'{"sender": "hostile-meta", "message": "hi", "metadata": "x"}', '"metadata" must be'),
], ids=["malformed JSON", "invalid UTF-8", "empty body", "not an object", "no sender",
        "sender not text", "message not text", "metadata not an object"])
def test_an_unreadable_rest_request_gets_400_with_the_reason_and_changes_nothing(
        assistant, body, problem):
    with nothing_changes(assistant, settle_s=0):
        status, answer = post(assistant, body)
    assert status == 400
    assert problem in answer["error"]


@pytest.mark.parametrize("message", ["", "   \n\t ", None], ids=["empty", "whitespace", "absent"])
def test_an_empty_message_gets_a_clear_answer_and_is_not_stored(assistant, limits, message):
    sender = f"hostile-empty-{uuid.uuid4().hex[:8]}"
    with nothing_changes(assistant, settle_s=0):
        status, answer = say(assistant, sender, message)
    assert (status, answer) == (200, [{"recipient_id": sender,
                                       "text": limits[REST].empty_reply}])


@pytest.mark.parametrize("size", [None, 100 * 1024], ids=["one over", "100 KB"])
def test_a_message_over_the_size_limit_is_refused_whole_and_nothing_is_stored(
        assistant, limits, size):
    sender = f"hostile-long-{uuid.uuid4().hex[:8]}"
    settings = limits[REST]
    size = size or settings.max_message_chars + 1
    text = ("where is my order ORD-10012? " * (size // 29 + 1))[:size - 1] + "?"
    with nothing_changes(assistant, settle_s=0):
        status, answer = say(assistant, sender, text)
    assert (status, answer) == (200, [{"recipient_id": sender, "text": settings.reply(
        settings.too_long_reply)}])
    assert f"{settings.max_message_chars} characters" in answer[0]["text"]
    # the same sender is served normally straight after (a refusal does not count)
    status, answer = say(assistant, sender, "hi")
    assert status == 200 and "Threadline" in answer[0]["text"]
    assert user_texts(assistant, sender) == ["hi"]


def test_a_message_at_the_size_limit_is_answered_and_stored_whole(assistant, limits):
    sender = f"hostile-limit-{uuid.uuid4().hex[:8]}"
    text = ("how much does shipping cost? " * 80)[:limits[REST].max_message_chars]
    status, answer = say(assistant, sender, text)
    # a knowledge answer comes as its text plus a custom message with its sources
    assert status == 200 and any(m.get("text") for m in answer)
    assert all(m.get("text") or m.get("custom") for m in answer)
    assert user_texts(assistant, sender) == [text.strip()]


@pytest.mark.parametrize("text,stored", [
    ("where is my order\x00 ORD-10012?\x07\x1b[31m\x08\x7f thanks\tand\nbye",
     "where is my order ORD-10012?[31m thanks\tand\nbye"),
    ("📦🙏 where is my order ORD-10012? 😡👎🏽", None),
    ("مرحبا، أين طلبي ORD-10012؟ شكرا", None),
    ("where is my order \u202eORD-10012\u202c? \u200f\u200e thanks", None),
    ("<script>alert(1)</script><img src=x onerror=alert(1)> where is my order?", None),
], ids=["control characters", "emoji", "right-to-left", "bidi overrides", "HTML and script"])
def test_odd_but_valid_text_is_answered_and_stored_as_sent(assistant, text, stored):
    """Stored exactly as sent, except that control characters are dropped (a NUL breaks
    PostgreSQL and the CSV export); tab, line breaks and bidi marks stay."""
    sender = f"hostile-text-{uuid.uuid4().hex[:8]}"
    status, answer = say(assistant, sender, text)
    assert status == 200 and answer and all(m.get("text") for m in answer)
    assert user_texts(assistant, sender) == [stored or text]
    logged = [json.loads(line) for line in assistant.turn_log.read_text().splitlines()]
    assert any(line.get("conversation_id") == sender for line in logged)


def test_sql_in_form_slots_is_data(assistant):
    """The return form's email and free-text reason carry SQL; the store only gains the one
    return the customer asked for, with the reason exactly as typed."""
    sender = f"hostile-sql-{uuid.uuid4().hex[:8]}"
    before = rows(assistant.store)
    reason = "it's too small'); DROP TABLE orders; --"

    def texts(message: str) -> str:
        status, answer = say(assistant, sender, message)
        assert status == 200, answer
        return "\n".join(m.get("text") or "" for m in answer)

    assert "email" in texts("I want to return ORD-10030").lower()
    for attack in ("my email is x'OR'1'='1'--@example.com", "' OR 1=1 --",
                   '"; DROP TABLE customers; --'):
        reply = texts(attack)
        assert "RMA-" not in reply and "norman" not in reply.lower(), reply
    assert rows(assistant.store) == before
    texts("norman.bouchard@example.com")
    assert "RMA-" in texts(reason)
    after = rows(assistant.store)
    assert {t: r for t, r in after.items() if t != "returns"} == \
        {t: r for t, r in before.items() if t != "returns"}
    new = [row for row in after["returns"] if row not in before["returns"]]
    assert [(row[1], row[2]) for row in new] == [("ORD-10030", reason)]


# ---------------------------------------------------------------- Slack and the widget
def slack_post(assistant, body: str, secret: Optional[str], timestamp: Optional[int] = None
               ) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        headers.update({"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature":
                        SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)})
    request = urllib.request.Request(assistant.url("/webhooks/slack/events"),
                                     data=body.encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def slack_dm(user: str, text: str) -> Tuple[str, str]:
    """An Events API body for a direct message to the assistant, and its ts (= the thread)."""
    ts = f"{time.time():.6f}"
    event = {"type": "message", "channel": "D0STAFF", "channel_type": "im", "user": user,
             "text": text, "ts": ts, "event_ts": ts}
    return json.dumps({"token": "x", "team_id": "T0CSBOT", "api_app_id": "A0CSBOT",
                       "type": "event_callback", "event": event,
                       "event_id": f"Ev{uuid.uuid4().hex[:12]}",
                       "event_time": int(time.time())}), ts


def slack_replies(assistant, thread_ts: str) -> List[str]:
    with urllib.request.urlopen(f"{assistant.slack.url}/_standin/messages") as response:
        messages = json.load(response)["messages"]
    return [m["text"] for m in messages if m.get("bot_id") and m.get("thread_ts") == thread_ts]


@pytest.mark.parametrize("case", ["wrong secret", "no signature", "stale timestamp"])
def test_a_slack_request_with_a_bad_missing_or_stale_signature_is_refused(assistant, case):
    body, thread = slack_dm("U0HOSTILE", "where is my order ORD-10012?")
    secret = {"wrong secret": uuid.uuid4().hex, "no signature": None,
              "stale timestamp": assistant.slack.signing_secret}[case]
    stamp = int(time.time()) - 600 if case == "stale timestamp" else None
    with nothing_changes(assistant):
        assert slack_post(assistant, body, secret, stamp) == 401
    assert slack_replies(assistant, thread) == []


def test_the_size_limit_holds_on_the_widget_and_slack(assistant, limits):
    async def widget() -> str:
        async with WidgetCustomer(assistant.url("")) as customer:
            await customer.say("x" * (limits[WIDGET].max_message_chars + 1))
            await customer.wait_until(lambda got: got)
            await asyncio.sleep(1)
            assert customer.texts == [limits[WIDGET].reply(limits[WIDGET].too_long_reply)]
            return customer.session_id

    with nothing_changes(assistant):
        session = asyncio.run(widget())
        body, thread = slack_dm("U0HOSTILE2", "y" * (limits[SLACK].max_message_chars + 1))
        assert slack_post(assistant, body, assistant.slack.signing_secret) == 200
        replies = wait_for(lambda: slack_replies(assistant, thread), 120, "the Slack reply")
    assert replies == [limits[SLACK].reply(limits[SLACK].too_long_reply)]
    assert user_texts(assistant, session) == [] and user_texts(assistant, "slack-U0HOSTILE2") == []


def test_a_flooding_sender_is_refused_on_every_channel_then_served_again(assistant, limits):
    """One sender per channel sends one message more than the window allows, at once:
    one gets the rate-limit reply and is not stored, the rest are answered; other senders are
    not slowed down; once the window has passed each is served again."""
    rest_sender, slack_user = f"hostile-flood-{uuid.uuid4().hex[:8]}", "U0HOSTILEFLOOD"
    refusal = {name: settings.reply(settings.rate_limited_reply)
               for name, settings in limits.items()}
    refused_at: List[float] = []  # when each refusal was seen: its check was earlier still

    def rest_burst() -> List[Any]:
        def one(n: int) -> Any:
            answer = say(assistant, rest_sender, f"hi there {n}")[1]
            if answer == [{"recipient_id": rest_sender, "text": refusal[REST]}]:
                refused_at.append(time.monotonic())
            return answer

        with ThreadPoolExecutor(limits[REST].max_messages + 1) as pool:
            return list(pool.map(one, range(limits[REST].max_messages + 1)))

    def slack_burst() -> List[List[str]]:
        threads = []
        for n in range(limits[SLACK].max_messages + 1):
            body, thread = slack_dm(slack_user, f"hello {n}")
            assert slack_post(assistant, body, assistant.slack.signing_secret) == 200
            threads.append(thread)
        replies = wait_for(lambda: [slack_replies(assistant, t) for t in threads] if all(
            slack_replies(assistant, t) for t in threads) else None, 300, "every Slack answer")
        refused_at.append(time.monotonic())
        return replies

    def served_again() -> Dict[str, str]:
        body, thread = slack_dm(slack_user, "how much does shipping cost?")
        assert slack_post(assistant, body, assistant.slack.signing_secret) == 200
        rest = say(assistant, rest_sender, "how much does shipping cost?")[1]
        return {REST: rest[0]["text"], SLACK: wait_for(
            lambda: slack_replies(assistant, thread), 300, "the Slack answer")[0]}

    async def scenario() -> Tuple[List[Any], List[List[str]], Dict[str, str], str]:
        async with WidgetCustomer(assistant.url("")) as customer:
            for n in range(limits[WIDGET].max_messages + 1):
                await customer.say(f"hello there {n}")
            await customer.wait_until(lambda got: refusal[WIDGET] in got)
            refused_at.append(time.monotonic())
            # one channel at a time, each burst answered before the next: Rasa's NLU holds
            # the event loop, so a busy server would spread one burst's checks over the window
            await customer.wait_until(lambda got: len(got) >= limits[WIDGET].max_messages + 1)
            rest_answers = await asyncio.to_thread(rest_burst)
            slack_threads = await asyncio.to_thread(slack_burst)
            # another customer at the same moment is answered as usual
            bystander = await asyncio.to_thread(say, assistant, f"bystander-{uuid.uuid4().hex}",
                                                "hi")
            assert "Threadline" in bystander[1][0]["text"]
            window = max(settings.window_s for settings in limits.values())
            await asyncio.sleep(max(0.0, max(refused_at) + window + 0.5 - time.monotonic()))
            customer.received.clear()
            await customer.say("how much does shipping cost?")
            await customer.wait_until(lambda got: any("$5.99" in t for t in got))
            again = await asyncio.to_thread(served_again)
            return rest_answers, slack_threads, again, customer.session_id

    rest_answers, slack_threads, again, session = asyncio.run(scenario())
    assert len(refused_at) == 3
    assert sum(a == [{"recipient_id": rest_sender, "text": refusal[REST]}]
               for a in rest_answers) == 1
    assert sum(replies == [refusal[SLACK]] for replies in slack_threads) == 1
    assert "$5.99" in again[REST] and "$5.99" in again[SLACK]
    for sender, name in ((rest_sender, REST), (session, WIDGET), (f"slack-{slack_user}", SLACK)):
        stored = user_texts(assistant, sender)
        assert len(stored) == limits[name].max_messages + 1, (name, stored)
        assert stored[-1] == "how much does shipping cost?"


# ---------------------------------------------------------------- files
def test_a_tampered_index_is_refused_and_left_as_it_is(tmp_path):
    tampered = tmp_path / "index"
    shutil.copytree(INDEX, tampered)
    faiss_file = tampered / "index.faiss"
    data = bytearray(faiss_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    faiss_file.write_bytes(bytes(data))
    before = files(tampered)
    for command in (["verify"], ["ask", "Are the Hiking Boots waterproof?", "--backend",
                                 "extractive"]):
        result = subprocess.run(knowledge(*command, "--index", str(tampered)), cwd=ROOT,
                                env=offline_env(), capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "refusing to load the knowledge index" in result.stderr
        assert "index.faiss was modified" in result.stderr
        assert "Traceback" not in result.stderr
    assert files(tampered) == before


BROKEN_LINE = 5


@pytest.mark.parametrize("broken", ["domain.yml", "config.yml", "data/rules.yml"])
def test_broken_yaml_names_the_file_and_the_line(tmp_path, broken):
    """`bot train` on a copy of the project whose file has a tab-indented line 5 stops before
    training anything, with the file, the line and the column."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "bot", project / "bot", ignore=shutil.ignore_patterns(
        "node_modules", "__pycache__"))
    for name in ("domain.yml", "config.yml", "data"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, project / name)
    lines = (project / broken).read_text().splitlines(keepends=True)
    lines.insert(BROKEN_LINE - 1, "\tbroken: indented with a tab\n")
    (project / broken).write_text("".join(lines))
    before = files(project)
    env = {**offline_env(), "PYTHONPATH": str(project)}  # the copy's bot/, not this one
    result = subprocess.run([sys.executable, "-m", "bot", "train"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert f"Failed to read '{project / broken}'" in output, output[-3000:]
    assert f"line {BROKEN_LINE}, column 1" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert {k: v for k, v in files(project).items() if "__pycache__" not in k} == before
