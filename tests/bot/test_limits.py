"""The public-channel limits (bot/limits.py): the sliding window, the replies, the settings.

The live-server tests (tests/server/test_hostile_input.py) check the same through the three
channels of a running Rasa server; these pin the window arithmetic with a controlled clock.
"""

import asyncio
from pathlib import Path
from typing import List, Tuple

import pytest
import rasa.shared.utils.io
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.run import _create_single_channel

from bot.limits import ChannelLimits, LimitSettings
from bot.rest import RestChannel
from bot.slack import SlackBoltInput
from bot.web_widget import WebWidgetInput

CREDENTIALS = Path(__file__).resolve().parents[2] / "credentials.yml"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(**settings) -> Tuple[ChannelLimits, Clock]:
    clock = Clock()
    return ChannelLimits(LimitSettings(**settings), clock=clock), clock


def test_a_sender_over_the_rate_is_refused_until_the_window_passes():
    limits, clock = limiter(max_messages=3, window_s=60)
    for second in (0, 10, 20):
        clock.now = 1000 + second
        assert limits.refusal("alice", "hi") is None
    clock.now = 1030
    assert limits.refusal("alice", "hi") == LimitSettings().rate_limited_reply
    clock.now = 1059.9  # the first message is still inside the window
    assert limits.refusal("alice", "hi") is not None
    clock.now = 1060  # it left: one more is accepted, then the window is full again
    assert limits.refusal("alice", "hi") is None
    assert limits.refusal("alice", "hi") is not None
    clock.now = 1080  # the messages of 10 s and 20 s left too
    assert limits.refusal("alice", "hi") is None


def test_the_limit_is_per_sender():
    limits, clock = limiter(max_messages=2, window_s=60)
    assert [limits.refusal("alice", "hi") is None for _ in range(3)] == [True, True, False]
    # a thousand other customers at the same moment are all served
    assert all(limits.refusal(f"customer-{n}", "hi") is None for n in range(1000))


def test_senders_gone_quiet_are_forgotten():
    limits, clock = limiter(max_messages=5, window_s=60)
    for n in range(500):
        limits.refusal(f"customer-{n}", "hi")
    clock.now += 61
    limits.refusal("late", "hi")
    assert list(limits._recent) == ["late"]


def test_too_long_empty_and_non_text_messages_are_refused_and_not_counted():
    limits, _ = limiter(max_message_chars=10, max_messages=1)
    assert limits.refusal("alice", "x" * 11) == (
        "Your message is too long for me. Please keep it under 10 characters, or split it "
        "into shorter messages.")
    assert limits.refusal("alice", "   ") == LimitSettings().empty_reply
    assert limits.refusal("alice", None) == LimitSettings().empty_reply
    assert limits.refusal("alice", "x" * 10) is None  # the refusals did not use up the rate


def test_replies_are_configurable_and_may_name_the_limits():
    limits, _ = limiter(max_messages=1, window_s=30,
                        rate_limited_reply="Slow down: {max_messages} per {window_s} s.")
    limits.refusal("alice", "hi")
    assert limits.refusal("alice", "hi") == "Slow down: 1 per 30 s."


def test_a_refused_message_is_answered_and_never_reaches_rasa():
    limits, _ = limiter(max_message_chars=5)
    reached: List[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        reached.append(message)

    guarded = limits.guard(on_new_message)
    output = CollectingOutputChannel()
    asyncio.run(guarded(UserMessage("far too long", output, "alice")))
    assert reached == []
    assert output.messages == [{"recipient_id": "alice", "text": (
        "Your message is too long for me. Please keep it under 5 characters, or split it "
        "into shorter messages.")}]
    asyncio.run(guarded(UserMessage("short", output, "alice")))
    assert [m.text for m in reached] == ["short"]


@pytest.mark.parametrize("limits,problem", [
    ({"max_messages": 0}, "max_messages must be a whole number of at least 1"),
    ({"max_message_chars": "2000"}, "max_message_chars must be a whole number"),
    ({"window_s": -1}, "window_s must be a number of seconds above 0"),
    ({"empty_reply": ""}, "empty_reply must be a non-empty text"),
    ({"max_chars": 10}, "unknown limits setting(s) max_chars"),
    ("20 per minute", "limits must be a mapping"),
])
def test_bad_settings_fail_at_start_with_what_to_fix(limits, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        LimitSettings.from_credentials({"limits": limits})


@pytest.mark.parametrize("name,kind", [("bot.rest.RestChannel", RestChannel),
                                       ("bot.web_widget.WebWidgetInput", WebWidgetInput),
                                       ("bot.slack.SlackBoltInput", SlackBoltInput)])
def test_every_public_channel_in_credentials_has_the_documented_defaults(name, kind):
    credentials = rasa.shared.utils.io.read_config_file(str(CREDENTIALS))
    assert "rest" not in credentials  # Rasa's RestInput would bypass the limits
    channel = _create_single_channel(name, credentials[name])
    assert isinstance(channel, kind)
    assert channel.limits.settings == LimitSettings()


def test_control_characters_are_removed_before_rasa_sees_the_text():
    limits, _ = limiter()
    reached: List[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        reached.append(message)

    guarded, output = limits.guard(on_new_message), CollectingOutputChannel()
    asyncio.run(guarded(UserMessage("hi\x00 there\x1b[0m\x7f\ttab\nline \u202eok", output, "a")))
    assert [m.text for m in reached] == ["hi there[0m\ttab\nline \u202eok"]
    asyncio.run(guarded(UserMessage("\x00\x07\x08", output, "b")))  # nothing left: empty
    assert len(reached) == 1
    assert output.messages == [{"recipient_id": "b", "text": LimitSettings().empty_reply}]
