"""The staff side of a hand-off: a Slack channel where colleagues pick up conversations.

The action server posts the hand-off request (and, while a colleague holds the conversation,
every customer message) with slack_sdk's ``AsyncWebClient``; the Rasa server's Slack channel
(``bot/slack.py``) receives the colleague's clicks and thread replies. Requests that cannot be
posted stay in the store (``handoffs.status = 'waiting'``) and a background task posts them,
oldest first, as soon as Slack answers again. A request is claimed in the store before it is
posted (``status = 'posting'``), so each is posted exactly once however many posters run.

Settings come from the environment, like the Rasa side's: ``SLACK_BOT_TOKEN``,
``SLACK_STAFF_CHANNEL`` and, for a local stand-in or an enterprise proxy, ``SLACK_API_URL``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from actions.base import in_thread
from actions.store import Store, StoreError

logger = logging.getLogger(__name__)


class StaffChannelUnavailable(RuntimeError):
    """Slack did not take the message (down, unreachable, timed out or refused)."""


@dataclass(frozen=True)
class StaffChannelSettings:
    """Where hand-offs go; ``None`` from ``from_env`` means no staff channel is configured."""

    token: str
    channel: str
    api_url: str = "https://slack.com/api/"
    timeout_s: float = 5.0
    retry_every_s: float = 15.0

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> Optional["StaffChannelSettings"]:
        env = os.environ if env is None else env
        token, channel = env.get("SLACK_BOT_TOKEN"), env.get("SLACK_STAFF_CHANNEL")
        if not token or not channel:
            return None
        return cls(
            token=token,
            channel=channel,
            api_url=env.get("SLACK_API_URL") or cls.api_url,
            timeout_s=float(env.get("SLACK_TIMEOUT_S", cls.timeout_s)),
            retry_every_s=float(env.get("SLACK_RETRY_S", cls.retry_every_s)),
        )


class StaffChannel:
    """Posts to the staff channel; every failure becomes ``StaffChannelUnavailable``."""

    def __init__(self, settings: StaffChannelSettings) -> None:
        self.settings = settings
        self.client = AsyncWebClient(token=settings.token, base_url=settings.api_url,
                                     timeout=int(max(1, settings.timeout_s)))

    async def post(self, message: Dict[str, Any]) -> Tuple[str, str]:
        """``chat.postMessage`` with ``message``'s arguments; returns (channel id, ts)."""
        try:
            response = await asyncio.wait_for(
                self.client.chat_postMessage(**{"channel": self.settings.channel, **message}),
                timeout=self.settings.timeout_s,
            )
        except (SlackApiError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise StaffChannelUnavailable(f"Slack refused or did not answer: {error}") from error
        return response["channel"], response["ts"]

    async def post_in_thread(self, channel: str, thread_ts: str, text: str) -> None:
        await self.post({"channel": channel, "thread_ts": thread_ts, "text": text})


async def post_waiting_handoffs(channel: StaffChannel, store: Store) -> int:
    """Posts the requests still waiting, oldest first; stops at the first failure.

    Each request is claimed in the store before it is posted and given back if the post
    fails, so concurrent posters (an action, the retry task, other action servers) never
    post one twice; a request another poster has claimed is left to it. Returns how many
    are still waiting for this poster (0 when all went through or were someone else's).
    """
    waiting = await in_thread(store.unposted_handoffs)
    # a claim this old belongs to a poster that died mid-post (a post gives up after timeout_s)
    stale_after_s = 10 * channel.settings.timeout_s
    for position, row in enumerate(waiting):
        claim = await in_thread(store.claim_handoff, row["id"], stale_after_s)
        if claim is None:
            continue
        try:
            posted_channel, ts = await channel.post(json.loads(row["staff_message"]))
        except StaffChannelUnavailable as error:
            await in_thread(store.release_handoff, row["id"], claim)
            logger.warning("hand-off HO-%s still waiting for Slack: %s", row["id"], error)
            return len(waiting) - position
        await in_thread(store.mark_handoff_posted, row["id"], claim, posted_channel, ts)
        logger.info("hand-off HO-%s posted to the staff channel", row["id"])
    return 0


_retry_task: Optional["asyncio.Task[None]"] = None


def keep_retrying(channel: StaffChannel, store: Store) -> None:
    """Starts (once per process) the task that posts waiting requests until none is left."""
    global _retry_task
    if _retry_task is not None and not _retry_task.done():
        return

    async def retry() -> None:
        while True:
            await asyncio.sleep(channel.settings.retry_every_s)
            try:
                if await post_waiting_handoffs(channel, store) == 0:
                    return
            except StoreError as error:
                logger.warning("cannot read waiting hand-offs: %s", error)

    _retry_task = asyncio.get_running_loop().create_task(retry())
