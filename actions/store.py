"""Data-access layer over the demo SQLite store.

Every public method opens its own short-lived connection: the action server
handles requests concurrently, and a connection per call never shares state
between them. Writes run in ``BEGIN IMMEDIATE`` transactions so that the
eligibility check and the change cannot interleave with another request.
Any ``sqlite3.Error`` (missing file, missing table, lock timeout) surfaces as
``StoreError`` so the actions can apologise instead of crashing.
"""

from __future__ import annotations

import secrets
import sqlite3
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from actions.config import StoreConfig, resolve_db_path
from actions.records import (
    RETURN_WINDOW_DAYS,
    CancelOutcome,
    CancelResult,
    Customer,
    Order,
    OrderItem,
    OrderStatus,
    ReturnOutcome,
    ReturnResult,
)

_REFUSED_CANCEL = {
    OrderStatus.SHIPPED: CancelOutcome.ALREADY_SHIPPED,
    OrderStatus.DELIVERED: CancelOutcome.ALREADY_DELIVERED,
    OrderStatus.CANCELLED: CancelOutcome.ALREADY_CANCELLED,
}


class StoreError(RuntimeError):
    """The store could not be opened or queried (missing file, lock timeout, bad schema)."""


def utc_now() -> datetime:
    """Current time in UTC, to the second, as stored in the database."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def to_db_time(value: datetime) -> str:
    """Serialise a timestamp the way every table stores it (ISO 8601, UTC)."""
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


def from_db_time(value: Optional[str]) -> Optional[datetime]:
    """Parse a stored timestamp; ``None`` stays ``None``."""
    return datetime.fromisoformat(value) if value else None


def _order(row: sqlite3.Row) -> Order:
    return Order(
        order_id=row["order_id"],
        customer_id=row["customer_id"],
        status=OrderStatus(row["status"]),
        created_at=datetime.fromisoformat(row["created_at"]),  # never NULL (schema)
        shipped_at=from_db_time(row["shipped_at"]),
        delivered_at=from_db_time(row["delivered_at"]),
        carrier=row["carrier"],
        tracking=row["tracking"],
        total=float(row["total"]),
        final_sale=bool(row["final_sale"]),
    )


class Store:
    """Typed queries and transactional updates on the demo store."""

    def __init__(
        self,
        path: Union[str, Path, None] = None,
        *,
        timeout_s: float = 5.0,
        create: bool = False,
    ) -> None:
        """Point at ``path`` (default: see ``resolve_db_path``).

        Without ``create`` a missing file is an error rather than a silently
        created empty database, which would hide a misconfigured path.
        """
        self.config = StoreConfig(resolve_db_path(str(path) if path else None), timeout_s)
        self.create = create

    @classmethod
    def from_env(cls) -> "Store":
        """The store named by ``CSBOT_STORE_DB`` (read at call time, not import time)."""
        config = StoreConfig.from_env()
        return cls(config.path, timeout_s=config.timeout_s)

    @property
    def path(self) -> Path:
        """The database file."""
        return self.config.path

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh autocommit connection; ``sqlite3.Error`` becomes ``StoreError``."""
        mode = "rwc" if self.create else "rw"
        conn: Optional[sqlite3.Connection] = None
        try:
            if self.create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode={mode}",
                uri=True,
                timeout=self.config.timeout_s,
                isolation_level=None,
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"store {self.path} unavailable: {exc}") from exc
        finally:
            if conn is not None:
                conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock up front (``BEGIN IMMEDIATE``)."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------ reads

    def get_order(self, order_id: str) -> Optional[Order]:
        """The order with this (normalised) id, or ``None``."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT * FROM orders WHERE order_id = ?", (order_id,)
            ).fetchone()
        return _order(row) if row else None

    def get_customer(self, customer_id: int) -> Optional[Customer]:
        """The customer with this id, or ``None``."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT id, name, email, membership FROM customers WHERE id = ?",
                (customer_id,),
            ).fetchone()
        return Customer(**dict(row)) if row else None

    def get_order_items(self, order_id: str) -> List[OrderItem]:
        """The lines of an order, with product names, in line order."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT i.order_id, i.line_no, i.sku, p.name AS product_name, i.size,"
                " i.quantity, i.unit_price FROM order_items i"
                " JOIN products p ON p.sku = i.sku WHERE i.order_id = ? ORDER BY i.line_no",
                (order_id,),
            ).fetchall()
        return [OrderItem(**dict(row)) for row in rows]

    def email_matches(self, order_id: str, email: str) -> bool:
        """Whether ``email`` (any case) is the email of the order's customer.

        Answers yes/no only, so callers never hold the real address they could leak.
        """
        with self.connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM orders o JOIN customers c ON c.id = o.customer_id"
                " WHERE o.order_id = ? AND c.email = ?",
                (order_id, email.strip().lower()),
            ).fetchone()
        return row is not None

    # ----------------------------------------------------------------- writes

    def cancel_order(
        self,
        order_id: str,
        reason: str = "customer request via assistant",
        now: Optional[datetime] = None,
    ) -> CancelResult:
        """Cancel an order that has not shipped and record the cancellation, atomically."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM orders WHERE order_id = ?", (order_id,)
            ).fetchone()
            if row is None:
                return CancelResult(CancelOutcome.NOT_FOUND)
            order = _order(row)
            if order.status is not OrderStatus.PROCESSING:
                return CancelResult(_REFUSED_CANCEL[order.status], order)
            conn.execute(
                "UPDATE orders SET status = ? WHERE order_id = ? AND status = ?",
                (OrderStatus.CANCELLED.value, order_id, OrderStatus.PROCESSING.value),
            )
            conn.execute(
                "INSERT INTO cancellations (order_id, cancelled_at, refund_amount, reason)"
                " VALUES (?, ?, ?, ?)",
                (order_id, to_db_time(now or utc_now()), order.total, reason),
            )
        return CancelResult(
            CancelOutcome.CANCELLED,
            replace(order, status=OrderStatus.CANCELLED),
            refund=order.total,
        )

    def create_return(
        self, order_id: str, reason: str, now: Optional[datetime] = None
    ) -> ReturnResult:
        """Open a return (RMA) if the order is eligible, else say why not, atomically."""
        now = now or utc_now()
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM orders WHERE order_id = ?", (order_id,)
            ).fetchone()
            if row is None:
                return ReturnResult(ReturnOutcome.NOT_FOUND)
            order = _order(row)
            if order.status is not OrderStatus.DELIVERED or order.delivered_at is None:
                return ReturnResult(ReturnOutcome.NOT_DELIVERED, order)
            open_return = conn.execute(
                "SELECT rma_id FROM returns WHERE order_id = ? AND status = 'open'",
                (order_id,),
            ).fetchone()
            if open_return:
                return ReturnResult(ReturnOutcome.ALREADY_OPEN, order, open_return["rma_id"])
            if order.final_sale:
                return ReturnResult(ReturnOutcome.FINAL_SALE, order)
            if now - order.delivered_at > timedelta(days=RETURN_WINDOW_DAYS):
                return ReturnResult(ReturnOutcome.TOO_LATE, order)
            rma_id = self._new_rma_id(conn)
            conn.execute(
                "INSERT INTO returns (rma_id, order_id, reason, status, created_at)"
                " VALUES (?, ?, ?, 'open', ?)",
                (rma_id, order_id, reason.strip(), to_db_time(now)),
            )
        return ReturnResult(ReturnOutcome.CREATED, order, rma_id)

    @staticmethod
    def _new_rma_id(conn: sqlite3.Connection) -> str:
        """A random ``RMA-`` + 8 digits id; random so ids reveal nothing about volumes."""
        while True:
            candidate = f"RMA-{10_000_000 + secrets.randbelow(90_000_000)}"
            taken = conn.execute(
                "SELECT 1 FROM returns WHERE rma_id = ?", (candidate,)
            ).fetchone()
            if not taken:
                return candidate

    def record_handoff(
        self,
        conversation_id: str,
        intent: Optional[str],
        last_message: Optional[str],
        now: Optional[datetime] = None,
    ) -> int:
        """Queue the conversation for a human agent; returns the hand-off id."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO handoffs (conversation_id, intent, last_message, status, created_at)"
                " VALUES (?, ?, ?, 'waiting', ?)",
                (conversation_id, intent, last_message, to_db_time(now or utc_now())),
            )
            assert cursor.lastrowid is not None  # set by every INSERT
            return cursor.lastrowid

    def attach_staff_message(self, handoff_id: int, staff_message: str) -> None:
        """What to post in the staff channel for this request (JSON), kept until it is posted."""
        with self.transaction() as conn:
            conn.execute("UPDATE handoffs SET staff_message = ? WHERE id = ?",
                         (staff_message, handoff_id))

    def claim_handoff(
        self, handoff_id: int, stale_after_s: float, now: Optional[datetime] = None
    ) -> Optional[str]:
        """Claims a waiting request for posting; returns the claim, or None if another poster
        holds it (or it is posted). A claim older than ``stale_after_s`` (its poster died
        mid-post) may be taken over. One UPDATE decides, so concurrent posters (the action,
        the retry task, other action servers on the same file) post each request once."""
        now = now or utc_now()
        claim = secrets.token_hex(16)
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE handoffs SET status = 'posting', claimed_by = ?, claimed_at = ?"
                " WHERE id = ? AND staff_message IS NOT NULL AND (status = 'waiting'"
                " OR (status = 'posting' AND claimed_at < ?))",
                (claim, to_db_time(now), handoff_id,
                 to_db_time(now - timedelta(seconds=stale_after_s))),
            )
        return claim if cursor.rowcount == 1 else None

    def release_handoff(self, handoff_id: int, claim: str) -> None:
        """Gives a claimed request back to the queue (its post failed)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE handoffs SET status = 'waiting', claimed_by = NULL, claimed_at = NULL"
                " WHERE id = ? AND status = 'posting' AND claimed_by = ?",
                (handoff_id, claim),
            )

    def mark_handoff_posted(
        self, handoff_id: int, claim: str, channel: str, ts: str,
        now: Optional[datetime] = None,
    ) -> None:
        """Remember where the claimed request was posted: its thread is the staff side of the
        chat."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE handoffs SET status = 'posted', slack_channel = ?, slack_ts = ?,"
                " posted_at = ?, claimed_by = NULL, claimed_at = NULL"
                " WHERE id = ? AND claimed_by = ?",
                (channel, ts, to_db_time(now or utc_now()), handoff_id, claim),
            )

    def unposted_handoffs(self) -> List[sqlite3.Row]:
        """Requests with a staff message that has not reached the staff channel (waiting, or
        claimed by a poster), oldest first."""
        with self.connect() as conn:
            return conn.execute(
                "SELECT * FROM handoffs WHERE status IN ('waiting', 'posting')"
                " AND staff_message IS NOT NULL ORDER BY id"
            ).fetchall()

    def handoff_thread(self, conversation_id: str) -> Optional[Tuple[str, str]]:
        """(channel, ts) of the conversation's latest posted hand-off, if any."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT slack_channel, slack_ts FROM handoffs WHERE conversation_id = ?"
                " AND status = 'posted' ORDER BY id DESC LIMIT 1",
                (conversation_id,),
            ).fetchone()
        return (row["slack_channel"], row["slack_ts"]) if row else None

    def customer_by_email(self, email: str) -> Optional[Customer]:
        """The account with this email (case-insensitive), if any."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT id, name, email, membership FROM customers WHERE email = ?",
                (email.strip().lower(),),
            ).fetchone()
        return Customer(**dict(row)) if row else None
