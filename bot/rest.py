"""The REST channel: Rasa's ``RestInput`` with the public-channel limits and strict input.

In credentials.yml as ``bot.rest.RestChannel`` (instead of ``rest:``); same path
(``POST /webhooks/rest/webhook``), same request and reply JSON. What it adds:

* the message-size and per-sender rate limits of ``bot/limits.py`` (a refused message gets
  one reply in the usual reply list and never reaches Rasa);
* a 400 with a JSON ``error`` for a body that is not a JSON object, a missing or non-text
  ``sender`` (Rasa would file every such message under one shared conversation,
  ``default``) and a ``message`` that is not text (Rasa would answer 500);
* a 503 with a JSON ``error`` when the conversation's lock cannot be taken (the Redis lock
  store of a cluster is down): Rasa's channel would answer 200 with no messages, which a
  client cannot tell from a bot that chose to say nothing; the message was not processed,
  so sending it again later answers it once;
* the channel name is always ``rest``: Rasa lets the body choose any ``input_channel``, which
  would let a REST caller pose as the widget or Slack to the hand-off relay.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.lock_store import LockError
from sanic import Blueprint, response
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.limits import ChannelLimits

MAX_SENDER_CHARS = 256
#: The lock failures of the request being handled (the handler and the response middleware
#: run in the request's task; a list, so a copied context still shares it).
_lock_failures: ContextVar[List[LockError]] = ContextVar("csbot_rest_lock_failures")


class BadRestRequest(SanicException):
    """A request the channel cannot read; answered 400 with the reason as JSON."""

    status_code = 400
    quiet = True


def _body(request: Request) -> Dict[Text, Any]:
    try:
        body = request.json
    except SanicException:  # not JSON at all, or bytes that are not UTF-8
        body = None
    if not isinstance(body, dict):
        raise BadRestRequest('the body must be a JSON object: {"sender": "...", "message": "..."}')
    return body


class RestChannel(RestInput):
    """``RestInput`` behind the channel limits, answering unreadable requests with 400."""

    def __init__(self, limits: Optional[ChannelLimits] = None) -> None:
        self.limits = limits or ChannelLimits()

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls(ChannelLimits.from_credentials(credentials))

    async def _extract_sender(self, req: Request) -> Optional[Text]:
        sender = _body(req).get("sender")
        if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS:
            raise BadRestRequest(f'"sender" must be a non-empty text of at most '
                                 f"{MAX_SENDER_CHARS} characters (the conversation id)")
        return sender

    def _extract_message(self, req: Request) -> Optional[Text]:
        message = _body(req).get("message")
        if message is not None and not isinstance(message, str):
            raise BadRestRequest('"message" must be a text')
        return message

    def _extract_input_channel(self, req: Request) -> Text:
        return self.name()

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        metadata = _body(request).get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise BadRestRequest('"metadata" must be a JSON object')
        return metadata

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[None]]
    ) -> Blueprint:
        limited = self.limits.guard(on_new_message)

        async def handle(message: UserMessage) -> None:
            try:
                await limited(message)
            except LockError as error:
                _lock_failures.get([]).append(error)
                raise  # Rasa's channel logs it

        blueprint = super().blueprint(handle)

        @blueprint.middleware("request")
        async def track_lock_failures(_: Request) -> None:
            _lock_failures.set([])

        @blueprint.middleware("response")
        async def unavailable(_: Request, answer: HTTPResponse) -> Optional[HTTPResponse]:
            if _lock_failures.get([]):
                return response.json({"error": "the conversation's lock store is unreachable; "
                                               "the message was not processed, send it again"},
                                     status=503)
            return None

        @blueprint.exception(BadRestRequest)
        async def bad_request(_: Request, error: BadRestRequest) -> HTTPResponse:
            return response.json({"error": str(error)}, status=400)

        return blueprint
