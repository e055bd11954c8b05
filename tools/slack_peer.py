"""Slack's side of the Events API, for tests: signed event and button-click posts as Slack
sends them, and what the bot posted, read from the Slack stand-in (tools/slack_standin.py).
The channel and user ids are the stand-in's."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from tools import slack_standin

STAFF_CHANNEL, DM_CHANNEL = slack_standin.STAFF_CHANNEL, slack_standin.DM_CHANNEL
BOT_USER, STAFF_USER = slack_standin.BOT_USER, slack_standin.STAFF_USER["id"]


def wait_for(condition: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Polls `condition` until it returns something true, which it returns."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


class SlackPeer:
    """Plays Slack towards a Rasa server (or nginx in front) at `events_url`; reads what the
    bot posted from the stand-in at `standin_url`; requests are signed with `signing_secret`."""

    def __init__(self, events_url: str, standin_url: str, signing_secret: str) -> None:
        self.events_url, self.standin_url = events_url, standin_url
        self.secret = signing_secret
        self._ts = int(time.time() * 1000)

    def messages(self) -> List[Dict[str, Any]]:
        with urllib.request.urlopen(f"{self.standin_url}/_standin/messages") as response:
            return json.load(response)["messages"]

    def ephemeral(self, user: str, thread_ts: str) -> List[str]:
        """The texts only `user` saw in the thread (chat.postEphemeral)."""
        with urllib.request.urlopen(f"{self.standin_url}/_standin/messages") as response:
            return [m["text"] for m in json.load(response)["ephemeral"]
                    if m["ephemeral_to"] == user and m.get("thread_ts") == thread_ts]

    def bot_posts(self, channel: str, **match: Any) -> List[Dict[str, Any]]:
        return [m for m in self.messages() if m["channel"] == channel and m.get("bot_id")
                and all(m.get(k) == v for k, v in match.items())]

    def outage(self, down: bool) -> None:
        request = urllib.request.Request(f"{self.standin_url}/_standin/outage",
                                         data=json.dumps({"down": down}).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request).close()

    def next_ts(self) -> str:
        self._ts += 1
        return f"{self._ts // 1000}.{self._ts % 1000:06d}"

    def send(self, body: str, content_type: str = "application/json",
             headers: Optional[Dict[str, str]] = None, timestamp: Optional[int] = None) -> int:
        """POSTs `body` to the Slack channel, signed unless `headers` says otherwise."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(self.secret).generate_signature(timestamp=stamp, body=body)
        signed = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature or ""}
        request = urllib.request.Request(
            self.events_url, data=body.encode(),
            headers={"Content-Type": content_type, **signed, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def event(self, event: Dict[str, Any], event_id: Optional[str] = None) -> str:
        return json.dumps({"token": "x", "team_id": "T0CSBOT", "api_app_id": "A0CSBOT",
                           "type": "event_callback", "event": event,
                           "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}",
                           "event_time": int(time.time())})

    def message(self, channel: str, text: str, thread_ts: Optional[str] = None,
                channel_type: str = "channel", user: str = STAFF_USER) -> Dict[str, Any]:
        ts = self.next_ts()
        return {"type": "message", "channel": channel, "channel_type": channel_type,
                "user": user, "text": text, "ts": ts, "event_ts": ts,
                **({"thread_ts": thread_ts} if thread_ts else {})}

    def click(self, message: Dict[str, Any], action_id: str, value: str,
              user: str = STAFF_USER) -> int:
        payload = {"type": "block_actions", "team": {"id": "T0CSBOT"}, "api_app_id": "A0CSBOT",
                   "user": {"id": user, "username": user.lower(), "name": user.lower()},
                   "container": {"type": "message", "message_ts": message["ts"],
                                 "channel_id": message["channel"]},
                   "channel": {"id": message["channel"]}, "message": message,
                   "trigger_id": "t", "response_url": "http://standin.slack/response",
                   "actions": [{"action_id": action_id, "value": value, "type": "button",
                                "block_id": "handoff", "action_ts": str(time.time())}]}
        return self.send(urlencode({"payload": json.dumps(payload)}),
                         "application/x-www-form-urlencoded")
