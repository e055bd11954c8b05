"""A customer in the web widget, for the tests against live servers: Rasa's socket.io
protocol (session_request / session_confirm, user_uttered / bot_uttered) with a persistent
session, over long-polling (this aiohttp, Rasa's pin, is older than engineio's websocket
client needs), as rasa-webchat speaks it."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Callable, List, Optional

import socketio


class WidgetCustomer:
    """Connects to `url` (a Rasa server or nginx in front) for one conversation; `received`
    holds the text of every bot message in order."""

    def __init__(self, url: str, session_id: Optional[str] = None) -> None:
        self.url, self.session_id = url, session_id or uuid.uuid4().hex
        self.received: List[str] = []

    async def __aenter__(self) -> "WidgetCustomer":
        self.sio = socketio.AsyncClient()
        self.sio.on("bot_uttered", lambda data: self.received.append(data.get("text") or ""))
        await self.sio.connect(self.url, socketio_path="/socket.io", transports=["polling"])
        confirmed = asyncio.get_running_loop().create_future()
        self.sio.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
        await self.sio.emit("session_request", {"session_id": self.session_id})
        await asyncio.wait_for(confirmed, 30)
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.sio.disconnect()

    async def say(self, text: str) -> None:
        await self.sio.emit("user_uttered", {"message": text, "session_id": self.session_id})

    async def wait_until(self, condition: Callable[[List[str]], Any],
                         timeout: float = 300) -> None:
        """Waits until `condition(received)` holds."""
        deadline = time.monotonic() + timeout
        while not condition(self.received):
            if time.monotonic() > deadline:
                raise AssertionError(f"the widget never got what was expected: {self.received}")
            await asyncio.sleep(0.2)

    async def wait_for_text(self, fragment: str, timeout: float = 60) -> str:
        """The first bot message containing `fragment`."""
        await self.wait_until(lambda got: any(fragment in text for text in got), timeout)
        return next(text for text in self.received if fragment in text)
