"""A customer of the web widget, for tests and benchmarks: Rasa's socket.io protocol as
rasa-webchat speaks it (`session_request` → `session_confirm`, `user_uttered` →
`bot_uttered`), with a persistent session id.

It talks socket.io's websocket transport, as rasa-webchat in a browser does once the
handshake upgraded, or long-polling (`transport="polling"`, a browser's fallback where a
proxy blocks websockets); nginx serves both.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Callable, Dict, List, Optional

import aiohttp
import socketio

#: socket.io's transports, as engineio names them
TRANSPORTS = ("websocket", "polling")

if not hasattr(aiohttp, "ClientWSTimeout"):
    # aiohttp < 3.10 (the one Rasa 3.6 installs) has no ClientWSTimeout; engineio builds
    # `ClientWSTimeout(ws_close=seconds)` for `ws_connect(timeout=...)`, whose `timeout` in
    # these versions is that same close timeout, in seconds.
    aiohttp.ClientWSTimeout = lambda ws_close: ws_close  # type: ignore[attr-defined]


class WidgetCustomer:
    """`async with WidgetCustomer(url) as customer:` connects and opens the session; every
    bot message lands in `received` (the event's data: `text`, `quick_replies`, …)."""

    def __init__(self, url: str, session_id: Optional[str] = None,
                 connect_timeout: float = 30, source: Optional[str] = None,
                 transport: str = "websocket") -> None:
        """`connect_timeout`: for the session and for each HTTP request of the long-polling
        (engineio's default, 5 s, drops the connection, and the message it carried, of a
        server that is busy for longer; a browser's widget waits). `source`: the local
        address to connect from, e.g. 127.0.0.7 (on Linux all of 127.0.0.0/8 is this
        machine), so that customers come from different addresses as real ones do for a
        balancer that sticks clients by address. `transport`: one of `TRANSPORTS`."""
        if transport not in TRANSPORTS:
            raise ValueError(f"transport {transport!r}: one of {', '.join(TRANSPORTS)}")
        self.transport = transport
        self.url, self.session_id = url, session_id or uuid.uuid4().hex
        self.connect_timeout = connect_timeout
        self.received: List[Dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
            local_addr=(source, 0))) if source else None
        self.sio = socketio.AsyncClient(reconnection=False, http_session=self._http,
                                        request_timeout=connect_timeout)
        self.sio.on("bot_uttered", self._on_bot_uttered)

    def _on_bot_uttered(self, data: Dict[str, Any]) -> None:
        self.received.append(data)
        self._arrived.set()

    @property
    def texts(self) -> List[str]:
        return [message.get("text") or "" for message in self.received]

    async def __aenter__(self) -> "WidgetCustomer":
        confirmed = asyncio.get_running_loop().create_future()

        def confirm(sid: Any) -> None:
            if not confirmed.done():
                confirmed.set_result(sid)

        self.sio.on("session_confirm", confirm)
        try:
            await self.sio.connect(self.url, socketio_path="/socket.io",
                                   transports=[self.transport], wait_timeout=self.connect_timeout)
            await self.sio.emit("session_request", {"session_id": self.session_id})
            await asyncio.wait_for(confirmed, self.connect_timeout)
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.sio.disconnect()
        if self._http is not None:  # engineio closes only the sessions it made
            await self._http.close()

    async def say(self, text: str) -> None:
        await self.sio.emit("user_uttered", {"message": text, "session_id": self.session_id})

    async def next_reply(self, timeout: float) -> Dict[str, Any]:
        """Says nothing; waits for the next bot message after those already received."""
        seen = len(self.received)
        deadline = time.monotonic() + timeout
        while len(self.received) == seen:
            self._arrived.clear()
            await asyncio.wait_for(self._arrived.wait(), max(0.0, deadline - time.monotonic()))
        return self.received[seen]

    async def wait_until(self, condition: Callable[[List[str]], Any],
                         timeout: float = 60) -> None:
        """Waits until `condition(texts)` holds; fails with what the customer saw."""
        deadline = time.monotonic() + timeout
        while not condition(self.texts):
            if time.monotonic() > deadline:
                raise AssertionError(f"the widget never got what was expected: {self.texts}")
            await asyncio.sleep(0.2)

    async def wait_for_text(self, fragment: str, timeout: float = 60) -> str:
        """The first bot message containing `fragment`."""
        await self.wait_until(lambda texts: any(fragment in text for text in texts), timeout)
        return next(text for text in self.texts if fragment in text)
