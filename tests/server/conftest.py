"""A real assistant for the tests in this folder: the trained model in models/, the action
server on a freshly seeded store, `rasa run` with the channels of credentials.yml (REST,
socket.io, Slack), a SQLite tracker store and the per-turn log, and the local Slack stand-in
both servers talk to, all on free local ports. `bot test` trains before it runs these.

The channels' rate limit runs with a short window here (`TEST_RATE_LIMIT`), so the tests see
a flooding sender refused and served again within seconds; the message-size limit and the
replies are those of credentials.yml.
Rasa's HTTP API is locked with a token made for the session (`Assistant.token`).
"""

import json
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml

from bot.services import (
    MODELS_DIR, ROOT, Endpoints, SlackStandIn, action_server, free_port, ingest_knowledge,
    new_token,
    rasa_server, seed_store,
)

TEST_RATE_LIMIT = {"max_messages": 10, "window_s": 20}
PUBLIC_CHANNELS = ("bot.rest.RestChannel", "bot.web_widget.WebWidgetInput",
                   "bot.slack.SlackBoltInput")


def credentials_with_test_window(path: Path) -> Path:
    """credentials.yml with the short test window for every public channel's rate limit."""
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text())
    for channel in PUBLIC_CHANNELS:
        settings = credentials.get(channel) or {}
        settings["limits"] = {**(settings.get("limits") or {}), **TEST_RATE_LIMIT}
        credentials[channel] = settings
    path.write_text(yaml.safe_dump(credentials, sort_keys=False))
    return path


@dataclass
class Assistant:
    """Talks to the running Rasa server the way a channel and an operator would."""

    port: int
    endpoints: Path
    tracker_db: Path
    turn_log: Path
    log_file: Path
    store: Path
    slack: SlackStandIn
    credentials: Path
    token: str

    def url(self, path: str) -> str:
        return f"http://localhost:{self.port}{path}"

    def api(self, path: str) -> str:
        """The URL of an HTTP API endpoint, with the token."""
        return self.url(f"{path}{'&' if '?' in path else '?'}token={self.token}")

    def say(self, sender: str, text: str) -> List[Dict[str, Any]]:
        """Sends one message over the REST channel; returns the bot's messages."""
        request = urllib.request.Request(
            self.url("/webhooks/rest/webhook"),
            data=json.dumps({"sender": sender, "message": text}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)

    def events(self, sender: str) -> List[Dict[str, Any]]:
        url = self.api(f"/conversations/{sender}/tracker")
        with urllib.request.urlopen(url, timeout=60) as response:
            return json.load(response)["events"]


@pytest.fixture(scope="session")
def assistant(tmp_path_factory):
    if not any(MODELS_DIR.glob("*.tar.gz")):
        pytest.fail("no trained model in models/: run `bot train` (bot test does) first")
    work = tmp_path_factory.mktemp("assistant")
    store = work / "store.db"
    seed_store(store, reset=True)
    ingest_knowledge()
    action_port, rasa_port = free_port(), free_port()
    endpoints = Endpoints(action_port, work / "tracker.db", work / "turns.jsonl")
    slack = SlackStandIn(free_port(), rasa_port)
    instance = Assistant(rasa_port, endpoints.write(work / "endpoints.yml"), work / "tracker.db",
                         work / "turns.jsonl", work / "rasa.log", store, slack,
                         credentials_with_test_window(work / "credentials.yml"), new_token())
    with ExitStack() as stack:
        stack.enter_context(slack.run(work / "slack-standin.log"))
        # a short retry interval, so the outage test sees the queued hand-off posted
        stack.enter_context(action_server(action_port, store, work / "actions.log",
                                          env={**slack.env(), "SLACK_RETRY_S": "1"}))
        instance.server = stack.enter_context(
            rasa_server(rasa_port, instance.endpoints, instance.log_file, env=slack.env(),
                        credentials=instance.credentials, token=instance.token))
        instance.restart = lambda *args, **kwargs: _restart(stack, instance, *args, **kwargs)
        yield instance


def _restart(stack: ExitStack, instance: Assistant, credentials: Optional[Path] = None,
             env: Optional[Dict[str, str]] = None) -> None:
    """Stops the Rasa server and starts a new one on the same tracker store (with other
    channel settings and environment variables, if given)."""
    instance.server.terminate()
    instance.server.wait(timeout=30)
    instance.server = stack.enter_context(rasa_server(
        instance.port, instance.endpoints, instance.log_file,
        env={**instance.slack.env(), **(env or {})}, token=instance.token,
        credentials=credentials or instance.credentials))
