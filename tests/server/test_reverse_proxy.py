"""The production reverse proxy: Debian's nginx with the configuration `bot proxy nginx`
renders from deploy/nginx/, in front of the live Rasa server. The public channels go
through; the HTTP API stays closed even to a request that carries the right token."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.proxy import NginxSettings, render_nginx, start_nginx
from bot.services import free_port


class Proxy:
    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, path: str, body: Optional[str] = None,
                headers: Optional[Dict[str, str]] = None) -> Tuple[int, bytes]:
        """Sends `path` exactly as written (no client-side normalisation)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


@contextmanager
def nginx(work: Path, upstream_port: int, rest: bool = False) -> Iterator[Proxy]:
    """nginx as a foreground child process with its own prefix, pid and log files."""
    port = free_port()
    process = start_nginx(work, NginxSettings([f"127.0.0.1:{upstream_port}"],
                                              f"127.0.0.1:{port}", rest=rest), port)
    try:
        yield Proxy(port)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def proxy(assistant, tmp_path_factory) -> Iterator[Proxy]:
    with nginx(tmp_path_factory.mktemp("nginx"), assistant.port) as running:
        yield running


def test_the_widget_page_and_scripts_go_through(proxy):
    status, page = proxy.request("GET", "/webhooks/widget/chat")
    assert status == 200 and b"embed.js" in page
    status, script = proxy.request("GET", "/webhooks/widget/embed.js")
    assert status == 200 and b"socket" in script.lower()
    status, bundle = proxy.request("GET", "/webhooks/widget/webchat.js")
    assert status == 200 and len(bundle) > 10_000


def test_socket_io_goes_through_with_polling_and_a_websocket_upgrade(proxy):
    status, body = proxy.request("GET", "/socket.io/?EIO=4&transport=polling")
    assert status == 200
    handshake = json.loads(body[body.index(b"{"):])
    assert handshake["sid"] and "websocket" in handshake["upgrades"]
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        sock.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                      f"Host: 127.0.0.1:{proxy.port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 101"), status_line


def test_slack_events_go_through_and_are_still_checked_by_the_channel(proxy, assistant):
    body = json.dumps({"type": "url_verification", "challenge": "proxy-check", "token": "x"})
    stamp = str(int(time.time()))
    signature = SignatureVerifier(assistant.slack.signing_secret).generate_signature(
        timestamp=stamp, body=body)
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp}
    status, answer = proxy.request("POST", "/webhooks/slack/events", body,
                                   {**headers, "X-Slack-Signature": signature})
    assert status == 200 and b"proxy-check" in answer
    status, _ = proxy.request("POST", "/webhooks/slack/events", body,
                              {**headers, "X-Slack-Signature": "v0=" + "0" * 64})
    assert status == 401  # the channel's answer, not the proxy's


@pytest.mark.parametrize("method,path", [
    ("GET", "/conversations/{sender}/tracker?token={token}"),
    ("POST", "/conversations/{sender}/tracker/events?token={token}"),
    ("PUT", "/model?token={token}"),
    ("DELETE", "/model?token={token}"),
    ("GET", "/status?token={token}"),
    ("GET", "/version"),
    ("GET", "/domain?token={token}"),
    ("GET", "/"),
    ("POST", "/webhooks/rest/webhook"),
    ("POST", "/webhooks/callback/webhook"),
])
def test_everything_else_is_closed_even_with_the_token(proxy, assistant, method, path):
    url = path.format(sender="proxy-customer", token=assistant.token)
    body = json.dumps({"event": "slot", "name": "email", "value": "x@evil.example"})
    status, answer = proxy.request(method, url, body, {"Content-Type": "application/json"})
    assert status == 404, (method, url, status)
    assert b"events" not in answer and b"rasa" not in answer.lower()


@pytest.mark.parametrize("path", [
    "/webhooks/widget/../../conversations/{sender}/tracker?token={token}",
    "/webhooks/widget/%2e%2e/%2E%2E/conversations/{sender}/tracker?token={token}",
    "/conversations/{sender}/tracker/..%2f..%2f..%2fwebhooks/widget/chat?token={token}",
    "/socket.io/..%2Fstatus?token={token}",
])
def test_paths_that_change_meaning_once_decoded_are_refused(proxy, assistant, path):
    status, answer = proxy.request(
        "GET", path.format(sender="proxy-customer", token=assistant.token))
    assert status == 400 and b"sender_id" not in answer


def test_the_rest_channel_is_exposed_only_when_asked_for(assistant, tmp_path):
    body = json.dumps({"sender": "proxy-rest", "message": "hello"})
    with nginx(tmp_path / "nginx-rest", assistant.port, rest=True) as with_rest:
        status, answer = with_rest.request("POST", "/webhooks/rest/webhook", body,
                                           {"Content-Type": "application/json"})
        assert status == 200 and json.loads(answer)[0]["text"]
        status, _ = with_rest.request("GET", f"/status?token={assistant.token}")
        assert status == 404


def test_several_upstream_servers_are_balanced_with_sticky_socket_io_clients():
    config = render_nginx(NginxSettings(["10.0.0.1:5005", "10.0.0.2:5005"], "8080"))
    http = config[config.index("upstream csbot_rasa {"):]
    http = http[:http.index("}")]
    assert "least_conn;" in http
    sockets = config[config.index("upstream csbot_rasa_socketio {"):]
    sockets = sockets[:sockets.index("}")]
    assert "hash $remote_addr consistent;" in sockets
    for upstream in (http, sockets):
        assert "server 10.0.0.1:5005 " in upstream and "server 10.0.0.2:5005 " in upstream
    with pytest.raises(ValueError, match="HOST:PORT"):
        NginxSettings(["10.0.0.1:5005; include /etc/passwd"])
