"""Rasa's HTTP API is locked by default: without the token it refuses and changes nothing,
with it it works; the Rasa server, the action server and the Slack stand-in listen on this
machine's loopback interface only, and browsers may call Rasa only from the configured
origins."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import subprocess
import urllib.error
import urllib.request
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlparse

import psutil
import pytest
import yaml


def call(url: str, method: str = "GET", body: Optional[Any] = None,
         headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
    request = urllib.request.Request(
        url, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def tracker_rows(tracker_db) -> Tuple[int, str]:
    """How many events the tracker store holds, and a digest of all of them."""
    with sqlite3.connect(tracker_db) as connection:
        rows = connection.execute("SELECT * FROM events ORDER BY id").fetchall()
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture(scope="module")
def conversation(assistant) -> str:
    """A conversation with a turn in the tracker store."""
    sender = "api-lock-customer"
    assistant.say(sender, "hello")
    return sender


def slot_event(value: str) -> Dict[str, Any]:
    return {"event": "slot", "name": "email", "value": value}


@pytest.mark.parametrize("token", [None, "", "wrong-token"], ids=["none", "empty", "wrong"])
def test_without_the_token_the_api_refuses_and_changes_nothing(assistant, conversation, token):
    query = "" if token is None else f"?token={token}"
    before = tracker_rows(assistant.tracker_db)
    _, _, status_before = call(assistant.api("/status"))
    requests = [
        ("GET", f"/conversations/{conversation}/tracker", None),
        ("POST", f"/conversations/{conversation}/tracker/events", slot_event("x@evil.example")),
        ("PUT", f"/conversations/{conversation}/tracker/events", [slot_event("x@evil.example")]),
        ("POST", f"/conversations/{conversation}/messages", {"text": "hi", "sender": "user"}),
        ("PUT", "/model", {"model_file": "/tmp/attacker-model.tar.gz"}),
        ("DELETE", "/model", None),
    ]
    for method, path, body in requests:
        status, _, answer = call(assistant.url(path + query), method, body)
        assert status == 401, (method, path, status, answer[:200])
        assert b"events" not in answer and b"x@evil" not in answer
    assert tracker_rows(assistant.tracker_db) == before
    assert call(assistant.api("/status"))[2] == status_before  # the same model is loaded
    assert assistant.say(conversation, "hello")  # and it still answers


def test_with_the_token_the_api_works(assistant, conversation):
    status, _, answer = call(assistant.api(f"/conversations/{conversation}/tracker"))
    assert status == 200 and json.loads(answer)["sender_id"] == conversation
    rows, _ = tracker_rows(assistant.tracker_db)
    status, _, answer = call(assistant.api(f"/conversations/{conversation}/tracker/events"),
                             "POST", slot_event("owner@example.com"))
    assert status == 200 and json.loads(answer)["slots"]["email"] == "owner@example.com"
    assert tracker_rows(assistant.tracker_db)[0] == rows + 1
    # Past the lock, PUT /model reaches Rasa's handler, which names the model it cannot load
    # (a model that does not exist, so the running one stays).
    status, _, answer = call(assistant.api("/model"), "PUT",
                             {"model_file": "/nonexistent/model.tar.gz"})
    assert status == 400 and "/nonexistent/model.tar.gz" in json.loads(answer)["message"]


def _other_addresses() -> list:
    output = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout
    return [address for address in output.split() if not address.startswith("127.")]


def _listening(port: int) -> set:
    return {c.laddr.ip for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


def test_the_servers_listen_on_the_loopback_interface_only(assistant):
    served = {c.laddr for c in psutil.Process(assistant.server.pid).net_connections("inet")
              if c.status == psutil.CONN_LISTEN}
    assert {address.port for address in served} == {assistant.port}
    action_url = yaml.safe_load(assistant.endpoints.read_text())["action_endpoint"]["url"]
    ports = {"Rasa": assistant.port, "action server": urlparse(action_url).port,
             "Slack stand-in": assistant.slack.port}
    for name, port in ports.items():
        assert _listening(port) == {"127.0.0.1"}, name
        for address in _other_addresses():  # this machine's other addresses (hostname -I)
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            with socket.socket(family) as sock:
                sock.settimeout(5)
                with pytest.raises(ConnectionRefusedError):
                    sock.connect((address, port))


@pytest.mark.parametrize("path", ["/webhooks/rest/webhook", "/socket.io/?EIO=4&transport=polling"])
def test_browsers_may_call_it_from_the_configured_origins_only(assistant, path):
    own = f"http://localhost:{assistant.port}"
    for origin, allowed in ((own, True), (f"http://127.0.0.1:{assistant.port}", True),
                            ("http://evil.example", False), ("null", False)):
        _, headers, _ = call(assistant.url(path), "OPTIONS", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        allow = headers.get("Access-Control-Allow-Origin")
        assert (allow == origin) if allowed else (allow is None), (origin, allow)
