"""The customer web widget: Rasa's socket.io channel, serving rasa-webchat from our own origin.

In credentials.yml as ``bot.web_widget.WebWidgetInput``. Besides the socket.io server (at
``/socket.io``) it serves, under ``/webhooks/widget/``:

* ``embed.js``: the one-line snippet for any page; it loads ``webchat.js`` from the same
  server and points the widget's socket at that server (conversation kept in localStorage);
* ``webchat.js``: rasa-webchat's bundle, installed from the npm registry by scripts/setup.sh
  into ``bot/web/node_modules`` (no CDN);
* ``chat``: a small demo shop page with the widget on it.

It works around two problems of Rasa 3.6's ``SocketIOInput`` / ``SocketIOOutput``:

1. ``session_request`` calls ``sio.enter_room(...)`` without ``await``; in python-socketio 5
   that is a coroutine, so the client never joins its session's room and, with
   ``session_persistence``, every bot reply (emitted to the room) is lost. We register the
   handler again with the call awaited.
2. ``send_custom_json`` passes the JSON as keyword arguments to ``sio.emit`` and fails on
   anything but emit's own parameters, such as the knowledge answers'
   ``{"sources": [...], "answer_kind": ...}``. Our output renders the sources as a
   Markdown list of links (the widget renders bot text as Markdown) and sends any other
   custom JSON as one bot message, which rasa-webchat hands to its ``customComponent``.

With a ``jwt_key`` in credentials.yml (Rasa's own option, e.g. ``jwt_key: ${WIDGET_JWT_KEY}``),
only clients with a JWT signed with that key connect, sent as socket.io's ``auth.token`` (Rasa's
way) or as ``?token=`` on the socket URL (the widget's way: rasa-webchat cannot set ``auth``;
``embed.js`` takes it from the script tag's ``data-token``). A token whose payload names a
conversation (``{"user": {"username": <session id>}}``, the claim Rasa's HTTP API checks for
the ``user`` role) binds the socket to it: that session is the only one it is confirmed and
the only one whose messages it may send.

Empty messages are dropped: rasa-webchat sends one when a conversation starts and no
``initPayload`` is set, and Rasa would answer it with the "I don't know" fallback. Every
other message passes the channel limits of ``bot/limits.py`` (``limits:`` in
credentials.yml) first.

With several Rasa replicas, a bot message can come from a replica other than the one that
holds the customer's socket (a colleague's Slack reply, a replica that took over). With
``redis_url`` in this channel's credentials (or ``CSBOT_SOCKETIO_REDIS_URL`` in the
environment) the replicas share python-socketio's ``AsyncRedisManager``: an emit to a
conversation's room reaches its socket whichever replica holds it.

A replica that queues many customers' messages sends its socket.io heartbeat late; with
engineio's ``ping_timeout`` of 20 s, client and server then give each other up (the
python client after ping interval + timeout + 5 s; a browser likewise) and the messages of
those sockets are lost (1,000 customers × 5 messages through the 2-replica cluster: 3,917
of 5,000 lost). ``ping_timeout`` in credentials.yml (default ``PING_TIMEOUT``, 60 s) is
what the handshake tells every client, so both sides wait that long.

``name()`` stays ``socketio`` so Rasa finds the output channel of a conversation by the
tracker's latest input channel; ``url_prefix()`` moves the HTTP routes to ``widget``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text
from urllib.parse import parse_qs

from rasa.core.channels.channel import OutputChannel, UserMessage, decode_bearer_token
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from socketio import AsyncRedisManager
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.limits import ChannelLimits

WEB_DIR = Path(__file__).resolve().parent / "web"
WEBCHAT_BUNDLE = WEB_DIR / "node_modules" / "rasa-webchat" / "lib" / "index.js"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~-])")
_CITATION = re.compile(r"\[(\d+)\](?!\()")
logger = logging.getLogger(__name__)


def sources_markdown(sources: List[Dict[str, Any]]) -> Text:
    """The knowledge answer's sources as a Markdown list: linked titles, plain without a URL.

    Titles are escaped (they are data) and only http(s) URLs become links, because the
    widget's Markdown renderer does not filter link schemes such as ``javascript:``.
    """
    lines = ["Sources:"]
    for number, source in enumerate(sources, 1):
        title = _MARKDOWN_SPECIAL.sub(
            r"\\\1", str(source.get("title") or source.get("source") or "source"))
        url = str(source.get("url") or "")
        if re.match(r"https?://[^\s()<>]+$", url):
            title = f"[{title}]({url})"
        lines.append(f"- \\[{source.get('n', number)}\\] {title}")
    return "\n".join(lines)


class WebWidgetOutput(SocketIOOutput):
    """Rasa's socket.io output, with custom JSON sent the way rasa-webchat renders it."""

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        # The widget renders bot text as Markdown, where a citation "[1]" is a reference
        # link and would lose its brackets.
        await super().send_text_message(recipient_id, _CITATION.sub(r"\\[\1\\]", text), **kwargs)

    async def send_custom_json(
        self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any
    ) -> None:
        sources = json_message.get("sources")
        await self._send_message(
            recipient_id, {"text": sources_markdown(sources)} if sources else json_message)


@dataclass(frozen=True)
class WidgetSettings:
    """What the customer sees, from this channel's entry in credentials.yml: the widget's
    texts, and the HTML page served at /webhooks/widget/chat (relative to the directory Rasa
    runs in; none by default, the demo names its shop page)."""

    title: str = "Customer support"
    subtitle: str = ""
    input_hint: str = "Type a message..."
    page: Optional[str] = None


#: Seconds a socket may go without a heartbeat answer before either side closes it.
PING_TIMEOUT = 60.0


class WebWidgetInput(SocketIOInput):
    """Socket.io channel for the rasa-webchat widget, plus the widget's page and scripts."""

    widget = WidgetSettings()

    def __init__(self, *args: Any, limits: Optional[ChannelLimits] = None,
                 redis_url: Optional[str] = None, ping_timeout: float = PING_TIMEOUT,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits or ChannelLimits()
        self.redis_url = redis_url or os.environ.get("CSBOT_SOCKETIO_REDIS_URL") or None
        self.ping_timeout = ping_timeout

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WebWidgetInput":
        """Rasa's socket.io options, plus `limits`, `redis_url`, `ping_timeout` and the
        `WidgetSettings` ones."""
        credentials = dict(credentials or {})
        own = {f.name: credentials.pop(f.name) for f in fields(WidgetSettings)
               if f.name in credentials}
        redis_url = credentials.pop("redis_url", None)
        given = credentials.pop("ping_timeout", PING_TIMEOUT)
        try:
            ping_timeout = float(given)
        except (TypeError, ValueError):
            ping_timeout = 0.0
        if not ping_timeout > 0:
            raise ValueError(f"the widget's ping_timeout must be a positive number of "
                             f"seconds, not {given!r}")
        channel = super().from_credentials(credentials)
        channel.limits = ChannelLimits.from_credentials(credentials)
        channel.widget = WidgetSettings(**own)
        channel.redis_url = redis_url or channel.redis_url
        channel.ping_timeout = ping_timeout
        return channel

    def url_prefix(self) -> Text:
        return "widget"

    def get_output_channel(self) -> Optional[OutputChannel]:
        if self.sio is None:
            return super().get_output_channel()  # warns and returns None
        return WebWidgetOutput(self.sio, self.bot_message_evt)

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        guarded = self.limits.guard(on_new_message)

        async def handle_widget_message(message: UserMessage) -> None:
            if not message.text:  # UserMessage strips the text
                return  # rasa-webchat's init payload when none is configured; nobody typed it
            # Rasa's message handler builds a plain SocketIOOutput; replies go through ours.
            message.output_channel = self.get_output_channel()
            await guarded(message)

        blueprint = super().blueprint(handle_widget_message)
        sio = self.sio
        sio.eio.ping_timeout = self.ping_timeout  # read at each handshake
        if self.redis_url:  # before any client connects: the manager starts on first use
            sio.manager = AsyncRedisManager(self.redis_url)
            sio.manager.set_server(sio)
        handle_message = sio.handlers[self.namespace or "/"][self.user_message_evt]

        @sio.on("connect", namespace=self.namespace)  # replaces Rasa's handler
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict] = None) -> bool:
            if not self.jwt_key:
                return True
            token = auth.get("token") if isinstance(auth, dict) else None
            token = token or parse_qs(environ.get("QUERY_STRING", "")).get("token", [None])[0]
            payload = token and decode_bearer_token(token, self.jwt_key, self.jwt_algorithm)
            if not payload:
                logger.info("socket.io connection %s refused: no valid JWT", sid)
                return False
            user = payload.get("user")
            bound = user.get("username") if isinstance(user, dict) else None
            await sio.save_session(sid, {"session_id": bound}, namespace=self.namespace)
            return True

        async def bound_session(sid: Text) -> Optional[Text]:
            """The conversation this socket's JWT names, if any."""
            if not self.jwt_key:
                return None
            return (await sio.get_session(sid, namespace=self.namespace)).get("session_id")

        @sio.on(self.user_message_evt, namespace=self.namespace)  # guards Rasa's handler
        async def user_message(sid: Text, data: Dict) -> None:
            bound = await bound_session(sid)
            if bound and (not isinstance(data, dict) or data.get("session_id") != bound):
                logger.warning("socket %s sent a message for a session its JWT does not name",
                               sid)
                return
            await handle_message(sid, data)

        @sio.on("session_request", namespace=self.namespace)  # replaces Rasa's handler
        async def session_request(sid: Text, data: Optional[Dict]) -> None:
            session_id = data.get("session_id") if isinstance(data, dict) else None
            if not isinstance(session_id, str) or not session_id:
                session_id = uuid.uuid4().hex
            session_id = await bound_session(sid) or session_id
            if self.session_persistence:
                await sio.enter_room(sid, session_id, namespace=self.namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

        @blueprint.route("/embed.js", methods=["GET"])
        async def embed(_: Request) -> HTTPResponse:
            script = (WEB_DIR / "embed.js").read_text()
            for placeholder, value in (("__SOCKET_PATH__", self.socketio_path),
                                       ("__TITLE__", self.widget.title),
                                       ("__SUBTITLE__", self.widget.subtitle),
                                       ("__INPUT_HINT__", self.widget.input_hint)):
                script = script.replace(f'"{placeholder}"', json.dumps(value))
            return response.text(script, content_type="application/javascript; charset=utf-8")

        @blueprint.route("/webchat.js", methods=["GET"])
        async def webchat(_: Request) -> HTTPResponse:
            if not WEBCHAT_BUNDLE.exists():
                return response.text(
                    f"rasa-webchat is not installed ({WEBCHAT_BUNDLE}); run scripts/setup.sh",
                    status=503)
            return await response.file(WEBCHAT_BUNDLE, mime_type="application/javascript")

        @blueprint.route("/chat", methods=["GET"])
        async def chat(_: Request) -> HTTPResponse:
            if not self.widget.page:
                return response.text("no page configured (`page:` of this channel in "
                                     "credentials.yml)", status=404)
            return await response.file(Path(self.widget.page), mime_type="text/html")

        return blueprint
