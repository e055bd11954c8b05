"""Socket Mode: the Slack channel's bolt app connects out to the (stand-in) Slack over a
websocket, receives a staff member's direct message, acknowledges it and answers in the
thread, with no HTTP endpoint and no signing secret involved."""

import asyncio
import json
import urllib.request

import pytest
from rasa.core.channels.channel import UserMessage
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.services import SlackStandIn, free_port
from bot.slack import SlackBoltInput, SlackSettings

@pytest.fixture
def slack(tmp_path):
    slack = SlackStandIn(free_port(), rasa_port=free_port())  # no Rasa server: Socket Mode only
    with slack.run(tmp_path / "standin.log"):
        yield slack


def _get(url: str) -> dict:
    with urllib.request.urlopen(url) as response:
        return json.load(response)


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def test_socket_mode_receives_acknowledges_and_answers_in_the_thread(slack):
    standin = slack.url
    channel = SlackBoltInput(SlackSettings(bot_token=slack.bot_token, socket_mode=True,
                                           app_token=slack.app_token, api_url=f"{standin}/api/"))
    assert channel.settings.missing() == []
    received = []

    async def on_new_message(message: UserMessage) -> None:
        received.append(message)
        await message.output_channel.send_text_message(message.sender_id, "**Noted**")

    async def scenario() -> dict:
        handler = AsyncSocketModeHandler(channel.bolt_app(on_new_message), slack.app_token)
        await handler.connect_async()
        try:
            sent = await asyncio.to_thread(_post, f"{standin}/_standin/dm",
                                           {"text": "is the spring sale on?"})
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            return sent
        finally:
            await handler.close_async()

    sent = asyncio.run(scenario())
    assert [(m.text, m.sender_id, m.input_channel) for m in received] == [
        ("is the spring sale on?", "slack-U0ALEX", "slack")]
    state = _get(f"{standin}/_standin/messages")
    assert len(state["acks"]) == 1
    replies = [m for m in state["messages"] if m.get("bot_id") and m.get("thread_ts") == sent["ts"]]
    assert [m["text"] for m in replies] == ["*Noted*"]
