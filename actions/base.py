"""What every store-backed action shares: where the store comes from, and failing politely.

The action server instantiates each action once and serves requests
concurrently, so the store is resolved per run (``CSBOT_STORE_DB`` is read
then, not at import) and blocking SQLite calls run in a worker thread instead
of stalling the event loop while another request holds the write lock.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, List, Optional, Text, TypeVar

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.replies import STORE_UNAVAILABLE, Reply
from actions.store import Store, StoreError

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking store call without blocking other conversations."""
    return await asyncio.to_thread(function, *args)


class StoreBacked:
    """Mixin: the store to use, injectable for tests, else from the environment."""

    def __init__(self, store: Optional[Store] = None) -> None:
        self._store = store

    def store(self) -> Store:
        return self._store if self._store is not None else Store.from_env()


class StoreAction(StoreBacked, Action, ABC):
    """An action whose store failures become an apology instead of a server error."""

    #: What the customer reads when the store cannot be reached.
    unavailable_reply: Reply = STORE_UNAVAILABLE

    @abstractmethod
    def name(self) -> Text:
        """The action name from the contract."""

    @abstractmethod
    async def act(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
        store: Store,
    ) -> List[Dict[Text, Any]]:
        """The action's work; may raise ``StoreError``."""

    def events_after_failure(self, tracker: Tracker) -> List[Dict[Text, Any]]:
        """Events to return when the store failed (e.g. slot resets the flow relies on)."""
        return []

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[Dict[Text, Any]]:
        """Run ``act``; on ``StoreError`` log the details and apologise to the customer."""
        try:
            return await self.act(dispatcher, tracker, domain, self.store())
        except StoreError:
            logger.exception("%s could not use the store", self.name())
            self.unavailable_reply.send(dispatcher)
            return self.events_after_failure(tracker)
