"""The widget's socket.io channel bound to signed tokens: with Rasa's `jwt_key` in
credentials.yml, a client without a valid JWT is refused and gets no answer, one with a JWT
signed with the key is answered, and a JWT that names a conversation only reaches that one.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional

import jwt
import pytest
import socketio
import yaml

from bot.services import ROOT

KEY_VARIABLE = "CSBOT_TEST_WIDGET_JWT_KEY"


@pytest.fixture(scope="module")
def jwt_key(assistant, tmp_path_factory) -> Iterator[str]:
    """Restarts the server with `jwt_key: ${…}` on the widget channel (the key comes from
    the environment, as the README recommends); restores the usual channels afterwards."""
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text())
    credentials["bot.web_widget.WebWidgetInput"]["jwt_key"] = "${%s}" % KEY_VARIABLE
    path = tmp_path_factory.mktemp("jwt") / "credentials.yml"
    path.write_text(yaml.safe_dump(credentials))
    key = secrets.token_urlsafe(32)
    assistant.restart(str(path), {KEY_VARIABLE: key})
    try:
        yield key
    finally:
        assistant.restart()


def token(key: str, conversation: Optional[str] = None, expires_in: int = 600) -> str:
    payload: Dict[str, Any] = {"exp": int(time.time()) + expires_in}
    if conversation:
        payload["user"] = {"username": conversation, "role": "user"}
    return jwt.encode(payload, key, algorithm="HS256")


class Visitor:
    """A widget visitor over long-polling (see tests/server/test_slack_handoff.py)."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient()
        self.received: List[Dict[str, Any]] = []
        self.sio.on("bot_uttered", self.received.append)

    async def connect(self, url: str, auth: Optional[Dict[str, str]] = None) -> None:
        await self.sio.connect(url, socketio_path="/socket.io", transports=["polling"],
                               auth=auth, wait_timeout=30)

    async def session(self, session_id: str) -> str:
        confirmed = asyncio.get_running_loop().create_future()
        self.sio.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
        await self.sio.emit("session_request", {"session_id": session_id})
        return await asyncio.wait_for(confirmed, 30)

    async def say(self, session_id: str, text: str) -> None:
        await self.sio.emit("user_uttered", {"message": text, "session_id": session_id})

    async def answers(self, timeout: float) -> List[Dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not self.received and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        return self.received


def user_turns(assistant, conversation: str) -> List[str]:
    return [e["text"] for e in assistant.events(conversation) if e["event"] == "user"]


@pytest.mark.parametrize("auth", ["none", "wrong key", "expired", "not a JWT"])
def test_without_a_valid_jwt_the_socket_is_refused(assistant, jwt_key, auth):
    credentials = {"none": None, "wrong key": {"token": token(secrets.token_urlsafe(32))},
                   "expired": {"token": token(jwt_key, expires_in=-60)},
                   "not a JWT": {"token": "hello"}}[auth]
    visitor = Visitor()

    async def scenario() -> None:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await visitor.connect(assistant.url(""), credentials)

    asyncio.run(scenario())
    assert not visitor.sio.connected and visitor.received == []


@pytest.mark.parametrize("how", ["auth", "query"])
def test_a_jwt_signed_with_the_key_is_answered(assistant, jwt_key, how):
    """Rasa's way (socket.io `auth.token`) and the widget's way (`?token=` on the URL)."""
    session_id = uuid.uuid4().hex
    visitor = Visitor()

    async def scenario() -> List[Dict[str, Any]]:
        signed = token(jwt_key)
        if how == "auth":
            await visitor.connect(assistant.url(""), {"token": signed})
        else:
            await visitor.connect(assistant.url(f"?token={signed}"))
        try:
            assert await visitor.session(session_id) == session_id
            await visitor.say(session_id, "hello")
            return await visitor.answers(120)
        finally:
            await visitor.sio.disconnect()

    assert asyncio.run(scenario())
    assert user_turns(assistant, session_id) == ["hello"]


def test_a_jwt_that_names_a_conversation_reaches_only_that_one(assistant, jwt_key):
    mine, other = f"jwt-mine-{uuid.uuid4().hex[:8]}", f"jwt-other-{uuid.uuid4().hex[:8]}"
    visitor = Visitor()

    async def scenario() -> List[Dict[str, Any]]:
        await visitor.connect(assistant.url(""), {"token": token(jwt_key, mine)})
        try:
            assert await visitor.session(other) == mine  # asked for another: gets its own
            await visitor.say(other, "hello from someone else's socket")
            assert await visitor.answers(10) == []
            await visitor.say(mine, "hello")
            return await visitor.answers(120)
        finally:
            await visitor.sio.disconnect()

    assert asyncio.run(scenario())
    assert user_turns(assistant, other) == []
    assert user_turns(assistant, mine) == ["hello"]
