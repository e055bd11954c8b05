"""A Rasa event broker that appends one redacted JSON line per user turn.

Rasa publishes every new tracker event to the configured broker; this one keeps only the
user turns and writes what monitoring needs (when, which conversation and channel, the
redacted text, intent, sentiment) to a JSON-lines file that can be shipped to any log
pipeline without carrying personal data. Enable it in endpoints.yml:

    event_broker:
      type: bot.turn_log.TurnLogBroker
      path: .data/logs/turns.jsonl

A failing disk must never break a conversation, so write errors are logged, not raised.
"""

from __future__ import annotations

import json
import logging
import threading
from asyncio import AbstractEventLoop
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional, Union

from rasa.core.brokers.broker import EventBroker
from rasa.shared.core.events import UserUttered
from rasa.utils.endpoints import EndpointConfig

from bot.redaction import redact

logger = logging.getLogger(__name__)

DEFAULT_PATH = ".data/logs/turns.jsonl"


def iso_utc(timestamp: Optional[float]) -> Optional[str]:
    """Rasa's epoch-seconds timestamp as ISO 8601 in UTC (what log tools parse)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(float(timestamp), tz=timezone.utc).isoformat()


def turn_record(event: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The log line for a published event dict, or None when it is not a user turn."""
    if event.get("event") != UserUttered.type_name:
        return None
    parse_data = event.get("parse_data") or {}
    intent = parse_data.get("intent") or {}
    sentiment = parse_data.get("sentiment") or {}
    return {
        "timestamp": iso_utc(event.get("timestamp")),
        "conversation_id": event.get("sender_id"),
        "channel": event.get("input_channel"),
        "text": redact(event.get("text")),
        "intent": intent.get("name"),
        "intent_confidence": intent.get("confidence"),
        "sentiment_label": sentiment.get("label"),
        "sentiment_score": sentiment.get("score"),
        "sentiment_model": sentiment.get("model"),
    }


class TurnLogBroker(EventBroker):
    """Appends `turn_record` lines to `path` (relative paths: to Rasa's working directory,
    as for Rasa's own file broker)."""

    def __init__(self, path: Union[str, Path] = DEFAULT_PATH) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @classmethod
    async def from_endpoint_config(
        cls,
        broker_config: Optional[EndpointConfig],
        event_loop: Optional[AbstractEventLoop] = None,
    ) -> Optional["TurnLogBroker"]:
        """Called by `EventBroker.create` for `type: bot.turn_log.TurnLogBroker`; the other
        keys of the `event_broker` section (here `path`) arrive as `broker_config.kwargs`."""
        if broker_config is None:
            return None
        return cls(**broker_config.kwargs)

    def publish(self, event: Dict[str, Any]) -> None:
        """Writes the user turn's line; other events are ignored; never raises."""
        try:
            record = turn_record(event)
            if record is None:
                return
            line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as log_file:
                    log_file.write(line)
        except Exception as error:  # noqa: BLE001 - a log line is not worth a failed turn
            logger.error(f"TurnLogBroker: could not write to {self.path}: {error}")

    def is_ready(self) -> bool:
        """Ready when the log's folder exists or can be created."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return True
        except OSError:
            return False

    async def close(self) -> None:
        """Nothing to release: the file is opened per line, so rotation tools work."""
