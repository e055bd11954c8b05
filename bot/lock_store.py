"""`AtomicRedisLockStore`: Rasa's Redis ticket lock with every change made atomically.

Rasa's ``RedisLockStore`` reads the lock, changes it in Python and writes it back. Two
replicas (or two coroutines of one) that issue a ticket at the same moment both read the
same lock and both write it with "their" new ticket: they get the same number, and two
messages of one conversation are processed at once (measured, README: 600 tickets issued at
once, 60 distinct numbers). Here each change runs under WATCH/MULTI/EXEC and is retried
when another writer got in between, so every ticket is issued once and none is lost on
release.

A waiting message also renews its own ticket. In Rasa's lock every ticket expires a lock
lifetime after it was issued, waiting or not: when the replica holding a conversation's lock
dies, its ticket and the next message's, issued a moment later, expire nearly together, and
unless the waiter looks within that moment (it looks once a second) it finds an empty queue
that never serves its number and waits until its HTTP request is cancelled. Renewed, a
waiter's ticket expires only when its replica stops renewing it, and the conversation goes on
one lock lifetime (TICKET_LOCK_LIFETIME) after its replica died.

In endpoints.yml::

    lock_store:
      type: bot.lock_store.AtomicRedisLockStore
      url: ${REDIS_HOST}
      port: ${REDIS_PORT}
      password: ${REDIS_PASSWORD}
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, Callable, Optional, Text, Tuple, TypeVar

from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

Result = TypeVar("Result")
#: A change of one conversation's lock: the new lock (None: delete it) and what to return.
Change = Callable[[Optional[TicketLock]], Tuple[Optional[TicketLock], Result]]


class AtomicRedisLockStore(RedisLockStore):
    """``RedisLockStore`` whose ticket issue, release and expiry are atomic in Redis."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        # Rasa builds custom lock stores with `endpoint_config=`; the URL is the host.
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url or "localhost", **endpoint_config.kwargs}
        super().__init__(**kwargs)

    def _change(self, conversation_id: Text, change: Change[Result]) -> Result:
        """Applies `change` to the stored lock; retried while another writer intervenes.
        Redis unreachable raises Rasa's own error for a lock failure, `LockError`."""
        import redis

        key = self.key_prefix + conversation_id
        try:
            with self.red.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(key)
                        stored = pipe.get(key)
                        lock = TicketLock.from_dict(json.loads(stored)) if stored else None
                        new_lock, result = change(lock)
                        pipe.multi()
                        if new_lock is None:
                            pipe.delete(key)
                        else:
                            pipe.set(key, new_lock.dumps())
                        pipe.execute()
                        return result
                    except redis.WatchError:
                        continue
        except redis.RedisError as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def issue(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], int]:
            lock = lock or self.create_lock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        return self._change(conversation_id, issue)

    @asynccontextmanager
    async def lock(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME,
                   wait_time_in_seconds: float = 1) -> AsyncGenerator[TicketLock, None]:
        """Rasa's ticket lock, the waiting ticket renewed on every look at the queue."""
        ticket = self.issue_ticket(conversation_id, lock_lifetime)
        try:
            while True:
                lock = self._renew(conversation_id, ticket, lock_lifetime)
                if not lock.is_locked(ticket):
                    break
                await asyncio.sleep(wait_time_in_seconds)
            yield lock
        finally:
            self.cleanup(conversation_id, ticket)

    def _renew(self, conversation_id: Text, ticket_number: int, lifetime: float) -> TicketLock:
        """Drops expired tickets and gives `ticket_number` a full lifetime from now (put back
        in its place in the queue if it had expired while this process was too busy to look)."""
        def renew(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], TicketLock]:
            lock = lock or self.create_lock(conversation_id)
            lock.remove_expired_tickets()
            renewed = Ticket(ticket_number, time.time() + lifetime)
            others = [t for t in lock.tickets if t.number != ticket_number]
            lock.tickets.clear()
            lock.tickets.extend(sorted([*others, renewed], key=lambda t: t.number))
            return lock, lock

        return self._change(conversation_id, renew)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Releases the ticket and deletes the lock if nobody waits, in one step (Rasa's
        two steps could delete the lock of a message that took a ticket in between)."""
        def release(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            if not lock.is_someone_waiting():
                return None, None
            return lock, None

        self._change(conversation_id, release)

