"""Slack for support staff: a Rasa input channel built on slack-bolt.

In `credentials.yml` as `bot.slack.SlackBoltInput`; every setting may also come from the
environment (which wins over an empty value in the file):

    bot_token       SLACK_BOT_TOKEN        xoxb-… (chat:write, app_mentions:read, im:history,
                                           channels:history, users:read)
    signing_secret  SLACK_SIGNING_SECRET   checks every HTTP request (HMAC, 5-minute window)
    socket_mode     SLACK_SOCKET_MODE      "true": connect out over Socket Mode (no public URL)
    app_token       SLACK_APP_TOKEN        xapp-… for Socket Mode
    api_url         SLACK_API_URL          Web API base URL (default Slack's; a local stand-in)
    held_notice     SLACK_HELD_NOTICE      what a colleague alone sees (an ephemeral message)
                                           when someone else holds the conversation they
                                           answer or hand back; `{holder}` is that someone

HTTP mode: point the Slack app's Event Subscriptions *and* Interactivity URLs at
`https://<host>/webhooks/slack/events`. Staff can message the assistant directly or mention it
in a channel and get, in a thread, the answers customers get. Slack retries an event it thinks
went unanswered; each `event_id` is handled once. Colleagues take and hand back conversations
with the buttons on the hand-off message (posted by the action server), and their replies in
that thread reach the customer (`bot/handoff.py`). Staff messages to the assistant pass the
channel limits of `bot/limits.py` (`limits:` in credentials.yml). Without a bot token the
channel answers 503 and says what to set, so a Rasa server without Slack still starts.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text
from urllib.parse import parse_qs

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_bolt import BoltResponse
from slack_bolt.adapter.sanic import AsyncSlackRequestHandler
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.handoff import HandoffRelay, HeldByOther
from bot.limits import ChannelLimits

logger = logging.getLogger(__name__)

HANDOFF_EVENT_TYPE = "csbot_handoff"  # the metadata actions/handoff_summary.py posts
TAKE, GIVE_BACK, BUTTON = "handoff_take", "handoff_return", re.compile(r"^csbot_button_\d+$")
GIVE_BACK_COMMAND = "!return"
SEEN_EVENTS = 1000


@dataclass
class SlackSettings:
    bot_token: Optional[str] = None
    signing_secret: Optional[str] = None
    socket_mode: bool = False
    app_token: Optional[str] = None
    api_url: Optional[str] = None
    held_notice: str = "{holder} holds this conversation."

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SlackSettings":
        credentials = credentials or {}
        values: Dict[str, Any] = {}
        for item in fields(cls):
            value = os.environ.get(f"SLACK_{item.name.upper()}") or credentials.get(item.name)
            if item.name == "socket_mode":
                values[item.name] = str(value).lower() in ("1", "true", "yes")
            elif value:
                values[item.name] = value
        return cls(**values)

    def missing(self) -> List[str]:
        """Environment variables still needed for the chosen mode."""
        needed = {"SLACK_BOT_TOKEN": self.bot_token}
        needed.update({"SLACK_APP_TOKEN": self.app_token} if self.socket_mode
                      else {"SLACK_SIGNING_SECRET": self.signing_secret})
        return [name for name, value in needed.items() if not value]


def to_mrkdwn(text: str) -> str:
    """Rasa responses are Markdown; Slack wants mrkdwn with &, <, > escaped."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r"<\2|\1>", text)
    return re.sub(r"\*\*(.+?)\*\*", r"*\1*", text)


def from_mrkdwn(text: str) -> str:
    """A colleague's Slack text as plain Markdown for the customer (links kept, ids dropped)."""
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"[\2](\1)", text)
    text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
    text = re.sub(r"<[@#!][^>]*>", "", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()
    # the widget renders Markdown links of any scheme: only http(s) may become one
    return re.sub(r"\]\((?!https?://)", r"]\\(", text)


def well_formed(request: Request) -> bool:
    """Slack sends JSON (events) or a form with a JSON `payload` (button clicks); anything
    else gets a 400 rather than an exception inside bolt."""
    try:
        if request.content_type.startswith("application/json"):
            return isinstance(json.loads(request.body or b""), dict)
        payload = parse_qs(request.body.decode("utf-8")).get("payload")
        return payload is None or isinstance(json.loads(payload[0]), dict)
    except (ValueError, UnicodeDecodeError):
        return False


class SlackBoltOutput(OutputChannel):
    """Replies in the Slack thread the staff member wrote in."""

    @classmethod
    def name(cls) -> Text:
        return "slack"

    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str) -> None:
        self.client, self.channel, self.thread_ts = client, channel, thread_ts

    async def _post(self, **message: Any) -> None:
        await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts,
                                           **message)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self._post(text=to_mrkdwn(text))

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self._post(text=image, blocks=[{"type": "image", "image_url": image,
                                              "alt_text": "image"}])

    async def send_text_with_buttons(self, recipient_id: Text, text: Text,
                                     buttons: List[Dict[Text, Any]], **kwargs: Any) -> None:
        elements = [{"type": "button", "action_id": f"csbot_button_{i}",
                     "text": {"type": "plain_text", "text": b["title"][:75]},
                     "value": b["payload"]} for i, b in enumerate(buttons)]
        await self._post(text=to_mrkdwn(text), blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": to_mrkdwn(text)}},
            {"type": "actions", "elements": elements}])

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any],
                               **kwargs: Any) -> None:
        """Knowledge answers carry their sources; anything else is passed to Slack as is."""
        sources = json_message.get("sources")
        if sources is None:
            await self._post(**json_message)
            return
        cited = [f"[{s['n']}] <{s['url']}|{to_mrkdwn(s['title'])}>" if s.get("url")
                 else f"[{s['n']}] {to_mrkdwn(s['title'])}" for s in sources]
        await self._post(text="Sources: " + "; ".join(cited), blocks=[
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Sources: "
                                              + "  ".join(cited)}]}])


class SlackBoltInput(InputChannel):
    """Staff chat with the assistant, and the staff side of a hand-off."""

    @classmethod
    def name(cls) -> Text:
        return "slack"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls(SlackSettings.from_credentials(credentials),
                   ChannelLimits.from_credentials(credentials))

    def __init__(self, settings: SlackSettings, limits: Optional[ChannelLimits] = None) -> None:
        self.settings = settings
        self.limits = limits or ChannelLimits()
        self.client = AsyncWebClient(token=settings.bot_token,
                                     base_url=settings.api_url or AsyncWebClient.BASE_URL)
        self._seen: "OrderedDict[str, None]" = OrderedDict()
        self._relay: Optional[HandoffRelay] = None
        self._socket_mode: Optional[AsyncSocketModeHandler] = None  # when configured

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        blueprint = Blueprint("slack_bolt_webhook", __name__)
        missing = self.settings.missing()

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if not missing else "not configured",
                                  "missing": missing})

        if missing:
            logger.warning("Slack channel not configured; set %s", ", ".join(missing))

            @blueprint.route("/events", methods=["POST"])
            async def not_configured(_: Request) -> HTTPResponse:
                return response.json({"error": "Slack is not configured: set "
                                      + ", ".join(missing)}, status=503)

            return blueprint

        bolt = self.bolt_app(on_new_message)
        handler = AsyncSlackRequestHandler(bolt)

        @blueprint.listener("after_server_start")
        async def connect(app: Any, _: Any) -> None:
            self._relay = HandoffRelay(app.ctx.agent, app.ctx.input_channels)
            if self.settings.socket_mode:
                self._socket_mode = AsyncSocketModeHandler(bolt, self.settings.app_token)
                await self._socket_mode.connect_async()

        @blueprint.route("/events", methods=["POST"])
        async def events(request: Request) -> HTTPResponse:
            if not well_formed(request):
                return response.json({"error": "malformed request body"}, status=400)
            return await handler.handle(request)

        return blueprint

    # ------------------------------------------------------------------ bolt app
    def bolt_app(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> AsyncApp:
        """The slack-bolt app: staff chat, retries answered once, the hand-off buttons."""
        bolt = AsyncApp(client=self.client, signing_secret=self.settings.signing_secret or "",
                        # socket mode has no HTTP requests to sign
                        request_verification_enabled=not self.settings.socket_mode)

        @bolt.middleware
        async def once_per_event(body: Dict[str, Any], next: Callable[[], Awaitable[None]]
                                 ) -> Optional[BoltResponse]:
            """Slack retries events it thinks went unanswered: answer each event_id once."""
            event_id = body.get("event_id")
            if event_id in self._seen:
                return BoltResponse(status=200, body="")
            if event_id:
                self._seen[event_id] = None
                while len(self._seen) > SEEN_EVENTS:
                    self._seen.popitem(last=False)
            await next()
            return None

        guarded = self.limits.guard(on_new_message)

        async def chat(event: Dict[str, Any], text: str, user: str) -> None:
            thread = event.get("thread_ts") or event["ts"]
            output = SlackBoltOutput(self.client, event["channel"], thread)
            await guarded(UserMessage(
                text, output, sender_id=f"slack-{user}", input_channel=self.name(),
                metadata={"slack": {"channel": event["channel"], "thread_ts": thread}}))

        @bolt.event("app_mention")
        async def mentioned(event: Dict[str, Any]) -> None:
            await chat(event, from_mrkdwn(event.get("text", "")), event["user"])

        @bolt.event("message")
        async def message(event: Dict[str, Any]) -> None:
            if event.get("subtype") or not event.get("user"):
                return  # edits, joins, other bots
            if event.get("channel_type") == "im":
                await chat(event, from_mrkdwn(event.get("text", "")), event["user"])
            elif event.get("thread_ts") and event["thread_ts"] != event["ts"]:
                await self._staff_reply(event)

        @bolt.action(TAKE)
        async def take(ack: Callable, body: Dict[str, Any]) -> None:
            await ack()
            await self._take(body)

        @bolt.action(GIVE_BACK)
        async def give_back(ack: Callable, body: Dict[str, Any]) -> None:
            await ack()
            container = body["container"]
            await self._give_back(container["channel_id"], container["message_ts"],
                                  body["user"]["id"])

        @bolt.action(BUTTON)
        async def button(ack: Callable, body: Dict[str, Any]) -> None:
            await ack()
            event = {"channel": body["container"]["channel_id"],
                     "ts": body["container"]["message_ts"],
                     "thread_ts": body["message"].get("thread_ts")}
            await chat(event, body["actions"][0]["value"], body["user"]["id"])

        return bolt

    # ------------------------------------------------------------------ hand-off
    @property
    def relay(self) -> HandoffRelay:
        if self._relay is None:
            raise RuntimeError("the Rasa server has not started the Slack channel yet")
        return self._relay

    async def _staff_name(self, user_id: str) -> str:
        info = await self.client.users_info(user=user_id)
        profile = info["user"].get("profile") or {}
        return profile.get("real_name") or info["user"].get("real_name") or info["user"]["name"]

    async def _handoff_parent(self, channel: str, ts: str) -> Optional[Dict[str, Any]]:
        """The hand-off message a thread hangs off, or None if it is another thread."""
        replies = await self.client.conversations_replies(
            channel=channel, ts=ts, limit=1, include_all_metadata=True)
        parent = (replies.get("messages") or [None])[0]
        metadata = (parent or {}).get("metadata") or {}
        return parent if metadata.get("event_type") == HANDOFF_EVENT_TYPE else None

    async def _note(self, channel: str, thread_ts: str, text: str) -> None:
        await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)

    async def _held_by_other(self, channel: str, thread_ts: str, user: str,
                             error: HeldByOther) -> None:
        """Tells only `user` (an ephemeral message) who holds the conversation."""
        notice = self.settings.held_notice.format(holder=error.holder)
        await self.client.chat_postEphemeral(channel=channel, thread_ts=thread_ts, user=user,
                                             text=notice)

    async def _retitle(self, channel: str, parent: Dict[str, Any], note: str,
                       button: Optional[Dict[str, Any]]) -> None:
        """Replaces the parent's buttons with who holds the conversation now."""
        blocks = [b for b in parent.get("blocks", []) if b.get("type") != "actions"
                  and b.get("block_id") != "handoff_state"]
        blocks.append({"type": "context", "block_id": "handoff_state",
                       "elements": [{"type": "mrkdwn", "text": note}]})
        if button:
            blocks.append({"type": "actions", "block_id": "handoff", "elements": [button]})
        await self.client.chat_update(channel=channel, ts=parent["ts"], text=parent["text"],
                                      blocks=blocks)

    async def _take(self, body: Dict[str, Any]) -> None:
        channel, ts = body["container"]["channel_id"], body["container"]["message_ts"]
        user = body["user"]["id"]
        parent = await self._handoff_parent(channel, ts)
        if parent is None:
            return
        conversation = parent["metadata"]["event_payload"]["conversation_id"]
        name = await self._staff_name(user)
        try:
            taken = await self.relay.take(conversation, user, name)
        except HeldByOther as error:
            await self._held_by_other(channel, ts, user, error)
            return
        if not taken:
            status = await self.relay.status(conversation)
            await self._note(channel, ts, f"<@{user}>: this conversation is not waiting for "
                             f"a colleague (status: {status or 'none'}).")
            return
        await self._retitle(channel, parent, f"Taken by <@{user}>", {
            "type": "button", "action_id": GIVE_BACK, "value": conversation,
            "text": {"type": "plain_text", "text": "Hand back to the assistant"}})
        await self._note(channel, ts, f"<@{user}> took this conversation. Replies in this "
                         f"thread go to the customer; press *Hand back to the assistant* or "
                         f"write `{GIVE_BACK_COMMAND}` to give it back.")

    async def _give_back(self, channel: str, ts: str, user: str) -> None:
        parent = await self._handoff_parent(channel, ts)
        if parent is None:
            return
        conversation = parent["metadata"]["event_payload"]["conversation_id"]
        try:
            given_back = await self.relay.give_back(conversation, user)
        except HeldByOther as error:
            await self._held_by_other(channel, ts, user, error)
            return
        if not given_back:
            await self._note(channel, ts, f"<@{user}>: nobody holds this conversation.")
            return
        await self._retitle(channel, parent, f"Handed back to the assistant by <@{user}>", None)
        await self._note(channel, ts, "The assistant has the conversation again.")

    async def _staff_reply(self, event: Dict[str, Any]) -> None:
        """A colleague wrote in a thread: relay it if it is a hand-off thread they hold."""
        channel, thread = event["channel"], event["thread_ts"]
        parent = await self._handoff_parent(channel, thread)
        if parent is None:
            return
        text = from_mrkdwn(event.get("text", ""))
        if text == GIVE_BACK_COMMAND:
            await self._give_back(channel, thread, event["user"])
            return
        conversation = parent["metadata"]["event_payload"]["conversation_id"]
        if not text:
            return
        name = await self._staff_name(event["user"])
        try:
            sent = await self.relay.staff_says(conversation, event["user"], name, text)
        except HeldByOther as error:
            await self._held_by_other(channel, thread, event["user"], error)
            return
        if not sent:
            await self._note(channel, thread, "Not sent: press *Take conversation* first "
                             "(the customer only sees replies while you hold it).")
