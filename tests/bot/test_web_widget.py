"""The web widget's channel: what it emits for rasa-webchat, and its session handling.

The browser test (tests/browser/) checks the same through the real widget and server; these
pin the message shapes rasa-webchat recognises (it renders a bot message as text only when
its keys are exactly ``text``, as buttons when they are ``text`` + ``quick_replies``).
"""

import asyncio
from pathlib import Path
from typing import Any, Dict, List, Tuple
from unittest.mock import AsyncMock

import pytest

import rasa.shared.utils.io
from rasa.core.run import _create_single_channel

from bot.web_widget import WebWidgetInput, WebWidgetOutput, sources_markdown

CHANNEL = "bot.web_widget.WebWidgetInput"
CREDENTIALS = Path(__file__).resolve().parents[2] / "credentials.yml"
SOURCES = [
    {"n": 1, "title": "Hiking Boots", "url": "https://shop.threadline.example/p/TL-HIKE-01",
     "source": "products.csv"},
    {"n": 2, "title": "Returns [policy]", "url": "", "source": "policies/returns.md"},
]


class FakeServer:
    """Records what an AsyncServer would emit."""

    def __init__(self) -> None:
        self.emitted: List[Dict[str, Any]] = []

    async def emit(self, event: str, data: Any = None, **kwargs: Any) -> None:
        self.emitted.append({"event": event, "data": data, **kwargs})


def widget_output() -> Tuple[WebWidgetOutput, FakeServer]:
    server = FakeServer()
    return WebWidgetOutput(server, "bot_uttered"), server


def test_sources_render_as_a_markdown_list_of_links():
    assert sources_markdown(SOURCES) == (
        "Sources:\n"
        "- \\[1\\] [Hiking Boots](https://shop.threadline.example/p/TL-HIKE-01)\n"
        "- \\[2\\] Returns \\[policy\\]"
    )


def test_only_web_links_become_links():
    text = sources_markdown([{"n": 1, "title": "x", "url": "javascript:alert(1)"}])
    assert text.endswith("- \\[1\\] x")


def test_a_knowledge_answer_is_text_then_its_sources():
    output, server = widget_output()
    asyncio.run(output.send_response("session-1", {
        "text": "They are waterproof [1].",
        "custom": {"sources": SOURCES, "answer_kind": "extractive"},
    }))
    assert server.emitted == [
        {"event": "bot_uttered", "data": {"text": "They are waterproof \\[1\\]."},
         "room": "session-1"},
        {"event": "bot_uttered", "data": {"text": sources_markdown(SOURCES)}, "room": "session-1"},
    ]


def test_other_custom_json_is_one_bot_message():
    output, server = widget_output()
    asyncio.run(output.send_custom_json("session-1", {"type": "handoff", "queue": "returns"}))
    assert server.emitted == [{"event": "bot_uttered", "room": "session-1",
                               "data": {"type": "handoff", "queue": "returns"}}]


def test_buttons_are_quick_replies():
    output, server = widget_output()
    asyncio.run(output.send_response("session-1", {
        "text": "Shall I get a colleague?",
        "buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}],
    }))
    [message] = server.emitted
    assert message["data"] == {"text": "Shall I get a colleague?", "quick_replies": [
        {"content_type": "text", "title": "Yes", "payload": "/affirm"},
        {"content_type": "text", "title": "No", "payload": "/deny"},
    ]}


def widget_channel() -> WebWidgetInput:
    """The channel as Rasa creates it from credentials.yml."""
    credentials = rasa.shared.utils.io.read_config_file(str(CREDENTIALS))[CHANNEL]
    channel = _create_single_channel(CHANNEL, credentials)
    assert isinstance(channel, WebWidgetInput)
    return channel


def test_credentials_enable_the_widget_with_session_persistence():
    channel = widget_channel()
    assert channel.session_persistence
    assert channel.name() == "socketio"  # how Rasa finds the output channel of a conversation
    assert channel.url_prefix() == "widget"


def test_the_heartbeat_timeout_is_the_configured_one():
    """engineio's own 20 s drops the sockets of a busy replica, and their messages; the
    handshake tells each client the server's value (the cluster test checks a client's)."""
    channel = widget_channel()
    channel.blueprint(AsyncMock())
    assert channel.sio.eio.ping_timeout == 60
    assert WebWidgetInput.from_credentials({"ping_timeout": 90}).ping_timeout == 90
    for wrong in (0, -5, "soon", None):
        with pytest.raises(ValueError, match="ping_timeout must be a positive number"):
            WebWidgetInput.from_credentials({"ping_timeout": wrong})


def test_the_socket_joins_its_session_room():
    channel = widget_channel()
    channel.blueprint(AsyncMock())
    handler = channel.sio.handlers["/"]["session_request"]
    channel.sio.enter_room = AsyncMock()
    channel.sio.emit = AsyncMock()
    asyncio.run(handler("sid-1", {"session_id": "abc"}))
    channel.sio.enter_room.assert_awaited_once_with("sid-1", "abc", namespace=None)
    channel.sio.emit.assert_awaited_once_with("session_confirm", "abc", room="sid-1",
                                              namespace=None)
    asyncio.run(handler("sid-2", {"session_id": None}))  # a new conversation gets a new id
    new_id = channel.sio.emit.await_args.args[1]
    assert len(new_id) == 32 and new_id != "abc"


def test_messages_reply_through_the_widget_output_and_empty_ones_are_dropped():
    channel = widget_channel()
    on_new_message = AsyncMock()
    channel.blueprint(on_new_message)
    handler = channel.sio.handlers["/"]["user_uttered"]
    asyncio.run(handler("sid-1", {"message": "", "session_id": "abc"}))
    on_new_message.assert_not_awaited()
    asyncio.run(handler("sid-1", {"message": "hi", "session_id": "abc"}))
    message = on_new_message.await_args.args[0]
    assert (message.text, message.sender_id, message.input_channel) == ("hi", "abc", "socketio")
    assert isinstance(message.output_channel, WebWidgetOutput)


def served(channel: WebWidgetInput, path: str) -> Tuple[int, str]:
    """What the channel's route `path` answers (its handlers read nothing of the request)."""
    routes = {route.uri: route.handler for route in channel.blueprint(AsyncMock())._future_routes}
    response = asyncio.run(routes[path](None))
    return response.status, response.body.decode()


def test_the_widget_says_what_the_assistants_credentials_say(tmp_path):
    page = tmp_path / "shop.html"
    page.write_text("<h1>Voltmart</h1>")
    channel = WebWidgetInput.from_credentials({
        "session_persistence": True, "title": "Voltmart help", "subtitle": "Electronics",
        "input_hint": "Ask about a laptop", "page": str(page)})
    assert channel.session_persistence
    status, script = served(channel, "/embed.js")
    assert status == 200
    assert 'title: "Voltmart help"' in script and 'inputTextFieldHint: "Ask about a laptop"' in script
    assert "__" not in script  # every placeholder filled
    assert served(channel, "/chat") == (200, "<h1>Voltmart</h1>")
    plain = WebWidgetInput.from_credentials({})
    status, script = served(plain, "/embed.js")
    assert 'title: "Customer support"' in script and "hreadline" not in script
    assert served(plain, "/chat")[0] == 404  # no demo page unless configured
