"""A local stand-in for Slack: the Web API subset the assistant uses, and a staff page.

Slack's cloud cannot be reached from a development machine or CI, so `bot start` (when no
real Slack tokens are in the environment) and the tests run this instead. It is a
development and test tool, not part of the product packages. It is a real HTTP peer on both
sides:

* towards the assistant it *is* Slack's Web API (`SLACK_API_URL` points slack_sdk and
  slack-bolt here): `auth.test`, `chat.postMessage`, `chat.update`, `conversations.replies`,
  `users.info`, checking the bot token and remembering every message;
* towards the Rasa server's Slack channel it plays Slack's Events API: what a colleague does
  on the staff page (reply in a thread, press a button, message the bot) is sent as a
  request signed with the signing secret, exactly as Slack would send it.

Only aiohttp and slack_sdk are used (both environments have them), so the action-server tests
can run it as a subprocess too. A bot in Socket Mode (`apps.connections.open` with the app
token) gets the events over a websocket instead. Test hooks: `GET /_standin/messages`,
`POST /_standin/outage` (`{"down": true}` makes every Web API call fail with HTTP 503, like an
outage), `POST /_standin/dm` (`{"text": …}`: the colleague messages the bot).

Its bot token, signing secret and app token come from SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET
and SLACK_APP_TOKEN (the variables the assistant reads, so one environment configures
both), else they are random for the run: no secret is a constant anyone could read here.

    python -m tools.slack_standin --port 5080 \\
        --events-url http://localhost:5005/webhooks/slack/events
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import os
import secrets
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

TEAM_ID = "T0CSBOT"
APP_ID = "A0CSBOT"
BOT_USER = "U0CSBOT"
BOT_ID = "B0CSBOT"
STAFF_CHANNEL = "C0STAFF"
STAFF_CHANNEL_NAME = "customer-care"
DM_CHANNEL = "D0STAFF"
#: The colleague the staff page acts as, and another one (the tests' second colleague).
STAFF_USER = {"id": "U0ALEX", "name": "alex", "real_name": "Alex Rivera"}
USERS = {user["id"]: user for user in (
    STAFF_USER, {"id": "U0SAM", "name": "sam", "real_name": "Sam Okafor"})}


@dataclass
class Message:
    """One message as Slack stores it (the fields conversations.replies returns)."""

    channel: str
    ts: str
    text: str
    user: Optional[str] = None
    bot_id: Optional[str] = None
    thread_ts: Optional[str] = None
    blocks: List[Dict[str, Any]] = field(default_factory=list)
    metadata: Optional[Dict[str, Any]] = None
    #: chat.postEphemeral: the only user who sees it
    ephemeral_to: Optional[str] = None

    def to_api(self) -> Dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v not in (None, [])}
        data["type"] = "message"
        return data


@dataclass
class SlackStandIn:
    """State and handlers; `app()` is the aiohttp application."""

    bot_token: str
    signing_secret: str
    events_url: Optional[str] = None
    app_token: str = field(default_factory=lambda: random_secret("xapp-"))
    messages: List[Message] = field(default_factory=list)
    ephemeral: List[Message] = field(default_factory=list)
    down: bool = False
    sockets: List[web.WebSocketResponse] = field(default_factory=list)
    acks: List[str] = field(default_factory=list)
    _clock: Any = field(default_factory=lambda: itertools.count(1))

    # ---------------------------------------------------------------- Web API
    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._clock):06d}"

    def _channel_id(self, channel: str) -> Optional[str]:
        if channel.lstrip("#") == STAFF_CHANNEL_NAME:
            return STAFF_CHANNEL
        return channel if channel in (STAFF_CHANNEL, DM_CHANNEL) else None

    def find(self, channel: str, ts: str) -> Optional[Message]:
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    async def web_api(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503, text="Slack is down (stand-in outage switch)")
        method = request.match_info["method"]
        token = self.app_token if method == "apps.connections.open" else self.bot_token
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method == "apps.connections.open":
            return web.json_response({"ok": True, "url": f"ws://{request.host}/_standin/socket"})
        if request.method == "GET":  # slack_sdk reads with GET (conversations.replies, …)
            args: Dict[str, Any] = dict(request.query)
        elif request.content_type == "application/json":
            args = await request.json()
        else:
            args = dict(await request.post())
        for key in ("blocks", "metadata"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        handler = {
            "auth.test": self._auth_test, "chat.postMessage": self._post_message,
            "chat.update": self._update, "conversations.replies": self._replies,
            "chat.postEphemeral": self._post_ephemeral,
            "users.info": self._users_info,
        }.get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(args))

    def _auth_test(self, _: Dict[str, Any]) -> Dict[str, Any]:
        return {"ok": True, "url": "http://standin.slack/", "team": "Threadline", "user": "csbot",
                "team_id": TEAM_ID, "user_id": BOT_USER, "bot_id": BOT_ID}

    def _post_message(self, args: Dict[str, Any]) -> Dict[str, Any]:
        channel = self._channel_id(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        message = Message(channel, self._next_ts(), args.get("text", ""), user=BOT_USER,
                          bot_id=BOT_ID, thread_ts=args.get("thread_ts") or None,
                          blocks=args.get("blocks") or [], metadata=args.get("metadata"))
        self.messages.append(message)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": message.to_api()}

    def _post_ephemeral(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """A message only `user` sees; never part of the channel's history."""
        channel = self._channel_id(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if args.get("user") not in USERS:
            return {"ok": False, "error": "user_not_in_channel"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        message = Message(channel, self._next_ts(), args.get("text", ""), user=BOT_USER,
                          bot_id=BOT_ID, thread_ts=args.get("thread_ts") or None,
                          ephemeral_to=args["user"])
        self.ephemeral.append(message)
        return {"ok": True, "message_ts": message.ts}

    def _update(self, args: Dict[str, Any]) -> Dict[str, Any]:
        message = self.find(self._channel_id(str(args.get("channel", ""))) or "", args.get("ts", ""))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.text = args.get("text", message.text)
        if "blocks" in args:
            message.blocks = args["blocks"] or []
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _replies(self, args: Dict[str, Any]) -> Dict[str, Any]:
        channel = self._channel_id(str(args.get("channel", ""))) or ""
        parent = self.find(channel, args.get("ts", ""))
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        thread = [parent] + [m for m in self.messages
                             if m.channel == channel and m.thread_ts == parent.ts]
        limit = int(args.get("limit") or 1000)
        include_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        listed = [m.to_api() for m in thread[:limit]]
        if not include_metadata:
            for item in listed:
                item.pop("metadata", None)
        return {"ok": True, "messages": listed, "has_more": len(thread) > limit}

    def _users_info(self, args: Dict[str, Any]) -> Dict[str, Any]:
        user = USERS.get(str(args.get("user")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {**user, "profile": {
            "real_name": user["real_name"], "display_name": user["name"]}}}

    # ------------------------------------------------------ Events API (to the bot)
    def signed_headers(self, body: str, timestamp: Optional[int] = None) -> Dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(self.signing_secret).generate_signature(
            timestamp=stamp, body=body)
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature or ""}

    def event_envelope(self, event: Dict[str, Any]) -> Dict[str, Any]:
        """An `event_callback` envelope around `event`, as Slack posts it."""
        return {
            "token": "unused", "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
            "type": "event_callback", "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER, "is_bot": True}],
        }

    def action_payload(self, message: Message, action: Dict[str, Any]) -> Dict[str, Any]:
        """A `block_actions` payload for a button pressed on `message`."""
        return {
            "type": "block_actions", "team": {"id": TEAM_ID}, "api_app_id": APP_ID,
            "user": {"id": STAFF_USER["id"], "username": STAFF_USER["name"],
                     "name": STAFF_USER["name"], "team_id": TEAM_ID},
            "container": {"type": "message", "message_ts": message.ts,
                          "channel_id": message.channel},
            "channel": {"id": message.channel}, "message": message.to_api(),
            "trigger_id": uuid.uuid4().hex, "response_url": "http://standin.slack/response",
            "actions": [{**action, "type": "button", "action_ts": str(time.time())}],
        }

    async def deliver(self, payload: Dict[str, Any]) -> None:
        """Sends an event envelope or an interaction payload to the bot: over a Socket Mode
        connection when the bot has one open, else as a signed request to --events-url."""
        if self.sockets:
            kind = "events_api" if payload.get("type") == "event_callback" else "interactive"
            envelope = {"envelope_id": uuid.uuid4().hex, "type": kind, "payload": payload,
                        "accepts_response_payload": False}
            await self.sockets[-1].send_json(envelope)
            return
        if not self.events_url:
            raise web.HTTPServiceUnavailable(text="no --events-url and no Socket Mode client")
        if payload.get("type") == "event_callback":
            body, content_type = json.dumps(payload), "application/json"
        else:
            body = urlencode({"payload": json.dumps(payload)})
            content_type = "application/x-www-form-urlencoded"
        headers = {"Content-Type": content_type, **self.signed_headers(body)}
        async with aiohttp.ClientSession() as session:
            async with session.post(self.events_url, data=body, headers=headers) as response:
                if response.status != 200:
                    raise web.HTTPBadGateway(text=f"the bot answered HTTP {response.status}")

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: the bot connects here (URL from apps.connections.open) and acks."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": len(self.sockets),
                            "connection_info": {"app_id": APP_ID}})
        try:
            async for frame in ws:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    envelope_id = json.loads(frame.data).get("envelope_id")
                    if envelope_id:
                        self.acks.append(envelope_id)
        finally:
            self.sockets.remove(ws)
        return ws

    def staff_message(self, channel: str, text: str, thread_ts: Optional[str]) -> Message:
        """Records what the colleague wrote (Slack stores it before telling the bot), with
        &, < and > escaped as Slack escapes them."""
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        message = Message(channel, self._next_ts(), text, user=STAFF_USER["id"],
                          thread_ts=thread_ts)
        self.messages.append(message)
        return message

    def message_event(self, message: Message) -> Dict[str, Any]:
        return {"type": "message", "channel": message.channel, "user": message.user,
                "text": message.text, "ts": message.ts, "event_ts": message.ts,
                "channel_type": "im" if message.channel == DM_CHANNEL else "channel",
                **({"thread_ts": message.thread_ts} if message.thread_ts else {})}

    # ---------------------------------------------------------------- staff page
    async def ui_reply(self, request: web.Request) -> web.Response:
        form = await request.post()
        text = str(form.get("text", "")).strip()
        if text:
            channel = str(form.get("channel", STAFF_CHANNEL))
            message = self.staff_message(channel, text, str(form.get("thread_ts") or "") or None)
            await self.deliver(self.event_envelope(self.message_event(message)))
        raise web.HTTPSeeOther("/")

    async def ui_click(self, request: web.Request) -> web.Response:
        form = await request.post()
        message = self.find(str(form.get("channel")), str(form.get("ts")))
        if message is None:
            raise web.HTTPNotFound(text="no such message")
        action = {"action_id": str(form.get("action_id")), "value": str(form.get("value", "")),
                  "block_id": str(form.get("block_id", ""))}
        await self.deliver(self.action_payload(message, action))
        raise web.HTTPSeeOther("/")

    async def page(self, _: web.Request) -> web.Response:
        return web.Response(text=render_page(self), content_type="text/html")

    async def state(self, _: web.Request) -> web.Response:
        return web.json_response({"messages": [m.to_api() for m in self.messages],
                                  "ephemeral": [m.to_api() for m in self.ephemeral],
                                  "down": self.down, "acks": self.acks})

    async def staff_dm(self, request: web.Request) -> web.Response:
        """Test hook: the colleague sends `{"text": …}` to the bot in a direct message."""
        message = self.staff_message(DM_CHANNEL, (await request.json())["text"], None)
        await self.deliver(self.event_envelope(self.message_event(message)))
        return web.json_response(message.to_api())

    async def outage(self, request: web.Request) -> web.Response:
        self.down = bool((await request.json()).get("down"))
        return web.json_response({"down": self.down})

    def app(self) -> web.Application:
        application = web.Application()
        application.add_routes([
            web.route("*", "/api/{method}", self.web_api),
            web.get("/", self.page),
            web.post("/ui/reply", self.ui_reply),
            web.post("/ui/click", self.ui_click),
            web.get("/_standin/messages", self.state),
            web.post("/_standin/outage", self.outage),
            web.post("/_standin/dm", self.staff_dm),
            web.get("/_standin/socket", self.socket),
        ])
        return application


def _mrkdwn(text: str) -> str:
    """Slack text (already &-escaped by the sender) as safe HTML; *bold* kept readable."""
    return html.escape(html.unescape(text)).replace("\n", "<br>")


def _render_message(message: Message) -> str:
    author = "csbot (app)" if message.bot_id else STAFF_USER["real_name"]
    parts = [f'<div class="msg"><b>{html.escape(author)}</b> '
             f'<small>{html.escape(message.ts)}</small>']
    texts = [b["text"]["text"] for b in message.blocks
             if b.get("type") in ("header", "section") and b.get("text")]
    parts.append(f"<p>{'<br>'.join(_mrkdwn(t) for t in texts) or _mrkdwn(message.text)}</p>")
    for block in message.blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            parts.append(
                f'<form method="post" action="/ui/click" class="inline">'
                f'<input type="hidden" name="channel" value="{html.escape(message.channel)}">'
                f'<input type="hidden" name="ts" value="{html.escape(message.ts)}">'
                f'<input type="hidden" name="block_id" value="{html.escape(block.get("block_id", ""))}">'
                f'<input type="hidden" name="action_id" value="{html.escape(element["action_id"])}">'
                f'<input type="hidden" name="value" value="{html.escape(element.get("value", ""))}">'
                f'<button>{html.escape(element["text"]["text"])}</button></form>')
    return "".join(parts) + "</div>"


def _reply_form(channel: str, thread_ts: Optional[str], label: str) -> str:
    return (f'<form method="post" action="/ui/reply"><input type="hidden" name="channel" '
            f'value="{channel}"><input type="hidden" name="thread_ts" '
            f'value="{html.escape(thread_ts or "")}"><input name="text" size="60" '
            f'placeholder="{label}"><button>Send</button></form>')


def render_page(standin: SlackStandIn) -> str:
    """The staff channel with its threads, and a direct-message box to the bot."""
    sections = []
    for channel, title in ((STAFF_CHANNEL, f"#{STAFF_CHANNEL_NAME}"), (DM_CHANNEL, "DM with csbot")):
        roots = [m for m in standin.messages if m.channel == channel and not m.thread_ts]
        body = []
        for root in roots:
            replies = [m for m in standin.messages + standin.ephemeral if m.channel == channel
                       and m.thread_ts == root.ts and m.ephemeral_to in (None, STAFF_USER["id"])]
            replies.sort(key=lambda m: m.ts)
            body.append('<div class="thread">' + _render_message(root)
                        + "".join(_render_message(r) for r in replies)
                        + _reply_form(channel, root.ts, "Reply in thread…") + "</div>")
        if channel == DM_CHANNEL:
            body.append(_reply_form(channel, None, "Message the assistant…"))
        sections.append(f"<h2>{title}</h2>" + ("".join(body) or "<p><i>nothing yet</i></p>"))
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Slack stand-in: {STAFF_CHANNEL_NAME}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:auto}} .thread{{border:1px solid #ccc;
padding:.5em;margin:.5em 0}} .msg{{margin:.3em 0 .3em 1em}} form.inline{{display:inline}}</style>
</head><body><h1>Slack stand-in</h1><p>You are {html.escape(STAFF_USER["real_name"])}, a
colleague in customer care. The page refreshes when something new arrives.</p>
{"".join(sections)}
<script>const n={len(standin.messages)};setInterval(async()=>{{const r=await fetch(
'/_standin/messages');const s=await r.json();if(s.messages.length!==n&&
!document.activeElement.value)location.reload();}},2000);</script></body></html>"""


def random_secret(prefix: str = "") -> str:
    """A secret made for this run (Slack's token prefixes kept, so they look like Slack's)."""
    return prefix + secrets.token_urlsafe(32)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=5080)
    parser.add_argument("--events-url", help="the Rasa server's Slack events URL")
    args = parser.parse_args(argv)
    standin = SlackStandIn(
        os.environ.get("SLACK_BOT_TOKEN") or random_secret("xoxb-"),
        os.environ.get("SLACK_SIGNING_SECRET") or random_secret(), args.events_url,
        os.environ.get("SLACK_APP_TOKEN") or random_secret("xapp-"))
    web.run_app(standin.app(), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
