"""The real action server, started as Rasa's docs say, answering Rasa-format HTTP requests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from action_helpers import DOMAIN, REPO_ROOT, owner_email, rendered

CONTRACT_ACTIONS = {
    "action_order_status", "action_cancel_order", "action_start_return", "action_answer_product_question",
    "action_handoff", "validate_order_status_form", "validate_cancel_order_form",
    "validate_return_form",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _post(url: str, body: Dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def server(db_path: Path, tmp_path: Path) -> Iterator[str]:
    """``python -m rasa_sdk --actions actions`` on a free port, using the seeded store."""
    port = _free_port()
    env = {**os.environ, "CSBOT_STORE_DB": str(db_path), "SANIC_HOST": "127.0.0.1"}
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"action server exited: {(tmp_path / 'server.log').read_text()}")
            try:
                if _get(f"{base}/health") == {"status": "ok"}:
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"action server did not start: {(tmp_path / 'server.log').read_text()}")
            time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its Sanic worker only
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


def rasa_request(action: str, slots: Dict[str, Any], *, text: str, intent: str = "inform",
                 candidates: Optional[Dict[str, Any]] = None,
                 active_loop: Optional[str] = None) -> Dict[str, Any]:
    """The body Rasa 3.6 POSTs to /webhook (tracker state with all events, and the domain)."""
    now = time.time()
    events: List[Dict[str, Any]] = [
        {"event": "action", "timestamp": now - 3, "name": "action_session_start"},
        {"event": "session_started", "timestamp": now - 3},
        {"event": "action", "timestamp": now - 2, "name": "action_listen"},
        {"event": "user", "timestamp": now - 1, "text": text,
         "parse_data": {"intent": {"name": intent, "confidence": 0.97}, "entities": [],
                        "text": text}, "input_channel": "rest"},
        {"event": "user_featurization", "timestamp": now - 1, "use_text_for_featurization": False},
    ]
    events += [{"event": "slot", "timestamp": now, "name": k, "value": v}
               for k, v in (candidates or {}).items()]
    all_slots = {"order_id": None, "email": None, "product": None, "return_reason": None,
                 "confirm_cancel": None, "requested_slot": None, **slots, **(candidates or {})}
    return {
        "next_action": action,
        "sender_id": "webhook-test",
        "version": "3.6.21",
        "tracker": {
            "sender_id": "webhook-test",
            "slots": all_slots,
            "latest_message": {"intent": {"name": intent, "confidence": 0.97}, "entities": [],
                               "text": text, "message_id": "m1", "metadata": {}},
            "latest_event_time": now,
            "followup_action": None,
            "paused": False,
            "events": events,
            "latest_input_channel": "rest",
            "active_loop": {"name": active_loop} if active_loop else {},
            "latest_action": {"action_name": "action_listen"},
            "latest_action_name": "action_listen",
        },
        "domain": {"version": "3.1", **DOMAIN, "actions": sorted(CONTRACT_ACTIONS)},
    }


def test_lists_every_contract_action(server):
    names = {item["name"] for item in _get(f"{server}/actions")}
    assert CONTRACT_ACTIONS <= names


def test_order_status_over_http(server):
    body = rasa_request("action_order_status",
                        {"order_id": "ORD-10012", "email": owner_email("ORD-10012")},
                        text="where is my order?", intent="order_status")
    result = _post(f"{server}/webhook", body)
    assert result["events"] == []
    [response] = result["responses"]
    assert rendered(response, body["tracker"]["slots"]).startswith(
        "Good news: order ORD-10012 is on its way!")


def test_form_validation_over_http(server):
    body = rasa_request("validate_cancel_order_form", {}, text="it's ord 10009",
                        candidates={"order_id": "ord 10009"}, active_loop="cancel_order_form")
    result = _post(f"{server}/webhook", body)
    assert result["responses"] == []
    assert {"event": "slot", "timestamp": None, "name": "order_id", "value": "ORD-10009"} in [
        {**e, "timestamp": None} for e in result["events"]]


def test_cancel_over_http_changes_the_store(server, db):
    body = rasa_request("action_cancel_order",
                        {"order_id": "ORD-10010", "email": owner_email("ORD-10010"),
                         "confirm_cancel": True}, text="yes", intent="affirm")
    result = _post(f"{server}/webhook", body)
    assert rendered(result["responses"][0], body["tracker"]["slots"]).startswith(
        "Done: order ORD-10010 is cancelled.")
    assert [(e["event"], e["name"], e["value"]) for e in result["events"]] == [
        ("slot", "confirm_cancel", None)]
    assert db.execute("SELECT status FROM orders WHERE order_id = 'ORD-10010'").fetchone()[0] == (
        "cancelled")
