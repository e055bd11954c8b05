"""No secret is a constant: an Events API request signed with any string found in the
repository's tracked files is refused by a server whose signing secret was made for the run,
and nothing happens; signed with the run's secret, the same request is answered."""

from __future__ import annotations

import ast
import http.client
import json
import re
import subprocess
import time
import uuid
import urllib.request
from typing import Any, Dict, Iterator, List, Set

import yaml
from slack_sdk.signature import SignatureVerifier

from bot.services import ROOT
from tools.slack_peer import wait_for

SUFFIXES = {".py", ".yml", ".yaml", ".md", ".mjs", ".js", ".json", ".toml", ".sh", ".html",
            ".cfg", ".ini", ".txt", ".in", ".lock", ".conf", ".template", ""}
QUOTED = re.compile(r"""(["'`])((?:(?!\1)[^\n\\]|\\.){8,}?)\1""")
MIN_LENGTH = 8


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a parsed YAML/JSON document, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def literals_of(path: str, text: str) -> Set[str]:
    """Quoted strings (any file), string constants (Python), scalars (YAML, JSON)."""
    found = {match.group(2) for match in QUOTED.finditer(text)}
    try:
        if path.endswith(".py"):
            found |= {node.value for node in ast.walk(ast.parse(text))
                      if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        elif path.endswith((".yml", ".yaml")):
            for document in yaml.safe_load_all(text):
                found |= set(_strings(document))
        elif path.endswith(".json"):
            found |= set(_strings(json.loads(text)))
    except (SyntaxError, yaml.YAMLError, ValueError):
        pass  # a file that does not parse still had its quoted strings collected
    return {value.strip() for value in found if len(value.strip()) >= MIN_LENGTH}


def repository_literals() -> List[str]:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    literals: Set[str] = set()
    for name in filter(None, files):
        path = ROOT / name
        if path.suffix not in SUFFIXES or not path.is_file() or "node_modules" in path.parts:
            continue
        if path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        literals |= literals_of(name, text)
    return sorted(literals)


def test_the_collector_finds_the_kinds_of_literals_a_secret_could_hide_in():
    text = 'a = "double-quoted"\nb = \'single-quoted\'\nc = """triple-\nquoted"""\n'
    assert {"double-quoted", "single-quoted", "triple-\nquoted"} <= literals_of("x.py", text)
    assert {"unquoted-yaml-value", "key-long-enough"} <= literals_of(
        "x.yml", "key-long-enough: unquoted-yaml-value\n")
    assert "code-span-in-markdown" in literals_of("x.md", "see `code-span-in-markdown`")
    assert "short" not in literals_of("x.py", 'x = "short"')


class Signed:
    """Signs one body with many secrets and posts it on one keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, body: str, secret: str) -> int:
        stamp = str(int(time.time()))
        signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
        self.connection.request("POST", "/webhooks/slack/events", body=body, headers={
            "Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature})
        response = self.connection.getresponse()
        response.read()
        return response.status


def dm_event(text: str) -> Dict[str, Any]:
    ts = f"{int(time.time())}.{uuid.uuid4().int % 1_000_000:06d}"
    return {"token": "x", "team_id": "T0CSBOT", "api_app_id": "A0CSBOT",
            "type": "event_callback", "event_id": f"Ev{uuid.uuid4().hex[:12]}",
            "event_time": int(time.time()), "event": {
                "type": "message", "channel": "D0STAFF", "channel_type": "im",
                "user": "U0ALEX", "text": text, "ts": ts, "event_ts": ts}}


def bot_replies(assistant, thread_ts: str) -> List[Dict[str, Any]]:
    with urllib.request.urlopen(f"{assistant.slack.url}/_standin/messages") as response:
        messages = json.load(response)["messages"]
    return [m for m in messages if m.get("bot_id") and m.get("thread_ts") == thread_ts]


def test_a_request_signed_with_any_string_of_the_repository_is_refused(assistant):
    literals = repository_literals()
    assert len(literals) > 1000, "the collector found suspiciously few strings"
    assert assistant.slack.signing_secret not in literals
    forged = dm_event("how much does shipping cost?")
    body = json.dumps(forged)
    client = Signed(assistant.port)
    accepted = [secret for secret in literals if client.post(body, secret) != 401]
    assert accepted == [], f"{len(accepted)} repository strings were accepted as the secret"
    time.sleep(2)
    assert bot_replies(assistant, forged["event"]["ts"]) == []  # nothing was answered

    # the control: the same request signed with this run's secret is answered
    genuine = dm_event("how much does shipping cost?")
    assert client.post(json.dumps(genuine), assistant.slack.signing_secret) == 200
    wait_for(lambda: bot_replies(assistant, genuine["event"]["ts"]), 120,
             "the answer to the genuinely signed request")
