"""Limits on the public channels: message size and a per-sender rate, checked before Rasa.

Every customer-facing channel (REST, the web widget, Slack) wraps the ``on_new_message``
callback Rasa gives its blueprint with :meth:`ChannelLimits.guard`. A message that is empty,
too long or over the sender's rate gets a short reply on the same channel and is **never
handed to Rasa**: no ``UserUttered`` event, nothing in the tracker store, the turn log or the
NLU. Control characters (C0 but tab and line breaks, and DEL) are removed from every
message first. Each channel reads its own ``limits:`` mapping in credentials.yml::

    bot.rest.RestChannel:
      limits:
        max_message_chars: 2000    # longer messages are refused whole, never truncated
        max_messages: 20           # per sender ...
        window_s: 60               # ... in any sliding window of this many seconds
        too_long_reply: "..."      # may use {max_message_chars}
        rate_limited_reply: "..."  # may use {max_messages} and {window_s}
        empty_reply: "..."

The rate limit is per sender (conversation id), kept in the server's memory: many customers
never slow each other down, and a flood from one sender costs one dictionary lookup per
message. Refused messages do not count, so a sender is served again as soon as its oldest
accepted message leaves the window. With several Rasa replicas each keeps its own count;
put a per-IP limit in the reverse proxy in front (SECURITY.md).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import UserMessage

# C0 controls but tab and line breaks, and DEL: never meant by a customer, and a NUL breaks
# PostgreSQL text columns (the scale-out tracker store) and CSV exports
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class LimitSettings:
    """One channel's limits and the replies a refused message gets (README "Limits")."""

    max_message_chars: int = 2000
    max_messages: int = 20
    window_s: float = 60.0
    too_long_reply: str = ("Your message is too long for me. Please keep it under "
                           "{max_message_chars} characters, or split it into shorter messages.")
    rate_limited_reply: str = ("You're sending messages faster than I can answer. Please wait "
                               "a moment, then send your message again.")
    empty_reply: str = "I didn't get any text there. Please type your message."

    def __post_init__(self) -> None:
        for name in ("max_message_chars", "max_messages"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"limits.{name} must be a whole number of at least 1, "
                                 f"not {value!r}")
        if (isinstance(self.window_s, bool) or not isinstance(self.window_s, (int, float))
                or self.window_s <= 0):
            raise ValueError(f"limits.window_s must be a number of seconds above 0, "
                             f"not {self.window_s!r}")
        for name in ("too_long_reply", "rate_limited_reply", "empty_reply"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"limits.{name} must be a non-empty text")

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "LimitSettings":
        """The ``limits:`` mapping of a channel's credentials; defaults for what is not set."""
        limits = (credentials or {}).get("limits") or {}
        if not isinstance(limits, dict):
            raise ValueError(f"limits must be a mapping of settings, not {limits!r}")
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(limits) - known)
        if unknown:
            raise ValueError(f"unknown limits setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        return cls(**limits)

    def reply(self, template: str) -> str:
        return template.format(max_message_chars=self.max_message_chars,
                               max_messages=self.max_messages, window_s=f"{self.window_s:g}")


class ChannelLimits:
    """Decides per message whether it may reach Rasa; keeps each sender's recent messages."""

    def __init__(self, settings: Optional[LimitSettings] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or LimitSettings()
        self._clock = clock
        # accepted-message times per sender (at most max_messages each), least recently
        # active sender first, so senders whose window has passed are dropped from the front
        self._recent: "OrderedDict[str, List[float]]" = OrderedDict()

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "ChannelLimits":
        return cls(LimitSettings.from_credentials(credentials))

    def refusal(self, sender_id: Optional[Text], text: Any) -> Optional[str]:
        """The reply for a message that must not reach Rasa, or None (and it is counted)."""
        settings = self.settings
        if not isinstance(text, str) or not text.strip():
            return settings.reply(settings.empty_reply)
        if len(text) > settings.max_message_chars:
            return settings.reply(settings.too_long_reply)
        now, sender = self._clock(), str(sender_id)
        cutoff = now - settings.window_s
        self._forget_before(cutoff)
        recent = [t for t in self._recent.get(sender, ()) if t > cutoff]
        if len(recent) >= settings.max_messages:
            self._recent[sender] = recent  # keeps its place: ordered by last accepted message
            return settings.reply(settings.rate_limited_reply)
        self._recent.pop(sender, None)
        self._recent[sender] = recent + [now]  # now the most recently active sender
        return None

    def _forget_before(self, cutoff: float) -> None:
        """Drops senders whose latest message left the window: memory stays bounded by the
        number of senders active within one window."""
        while self._recent:
            sender, recent = next(iter(self._recent.items()))
            if recent and recent[-1] > cutoff:
                return
            del self._recent[sender]

    def guard(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
              ) -> Callable[[UserMessage], Awaitable[Any]]:
        """``on_new_message`` that answers a refused message itself instead of passing it on;
        control characters are removed from the text first."""

        async def guarded(message: UserMessage) -> Any:
            if isinstance(message.text, str):
                message.text = _CONTROL.sub("", message.text).strip()
            reply = self.refusal(message.sender_id, message.text)
            if reply is None:
                return await on_new_message(message)
            await message.output_channel.send_text_message(message.sender_id, reply)
            return None

        return guarded
