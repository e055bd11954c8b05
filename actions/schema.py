"""SQLite schema of the demo store (tables named in docs/demo-assistant.md).

Timestamps are ISO 8601 strings in UTC; money is REAL dollars. Constraints
(status check, one cancellation per order, one open return per order) live in
the schema so that concurrent action-server requests cannot break them.
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL UNIQUE,
    membership  TEXT NOT NULL CHECK (membership IN ('guest', 'bronze', 'silver', 'gold'))
);

CREATE TABLE IF NOT EXISTS products (
    sku        TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    category   TEXT NOT NULL,
    brand      TEXT NOT NULL,
    price      REAL NOT NULL CHECK (price >= 0),
    sizes      TEXT NOT NULL,
    materials  TEXT NOT NULL,
    care       TEXT NOT NULL,
    warranty   TEXT NOT NULL,
    stock      INTEGER NOT NULL CHECK (stock >= 0)
);

CREATE TABLE IF NOT EXISTS orders (
    order_id      TEXT PRIMARY KEY,
    customer_id   INTEGER NOT NULL REFERENCES customers(id),
    status        TEXT NOT NULL
                  CHECK (status IN ('processing', 'shipped', 'delivered', 'cancelled')),
    created_at    TEXT NOT NULL,
    shipped_at    TEXT,
    delivered_at  TEXT,
    carrier       TEXT,
    tracking      TEXT,
    total         REAL NOT NULL,
    final_sale    INTEGER NOT NULL DEFAULT 0 CHECK (final_sale IN (0, 1))
);

CREATE TABLE IF NOT EXISTS order_items (
    order_id    TEXT NOT NULL REFERENCES orders(order_id),
    line_no     INTEGER NOT NULL,
    sku         TEXT NOT NULL REFERENCES products(sku),
    size        TEXT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    unit_price  REAL NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE IF NOT EXISTS returns (
    rma_id      TEXT PRIMARY KEY,
    order_id    TEXT NOT NULL REFERENCES orders(order_id),
    reason      TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'received', 'refunded')),
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS returns_one_open_per_order
    ON returns(order_id) WHERE status = 'open';

CREATE TABLE IF NOT EXISTS cancellations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id       TEXT NOT NULL UNIQUE REFERENCES orders(order_id),
    cancelled_at   TEXT NOT NULL,
    refund_amount  REAL NOT NULL,
    reason         TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS handoffs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  TEXT NOT NULL,
    intent           TEXT,
    last_message     TEXT,
    status           TEXT NOT NULL DEFAULT 'waiting',
    created_at       TEXT NOT NULL,
    -- the staff-channel message (Slack chat.postMessage arguments, JSON), kept until posted
    staff_message    TEXT,
    slack_channel    TEXT,
    slack_ts         TEXT,
    posted_at        TEXT,
    -- while status = 'posting': which poster claimed the request, and when
    claimed_by       TEXT,
    claimed_at       TEXT
);
"""

#: Columns added after the first release, with their types: ``create_schema`` adds them to
#: a store created before, so an existing ``.data/store.db`` keeps its rows.
ADDED_COLUMNS = {
    "handoffs": {"staff_message": "TEXT", "slack_channel": "TEXT", "slack_ts": "TEXT",
                 "posted_at": "TEXT", "claimed_by": "TEXT", "claimed_at": "TEXT"},
}

TABLES = (
    "customers",
    "products",
    "orders",
    "order_items",
    "returns",
    "cancellations",
    "handoffs",
)


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table, index and column that does not exist yet (safe to repeat)."""
    conn.executescript(SCHEMA)
    for table, columns in ADDED_COLUMNS.items():
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column, kind in columns.items():
            if column not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
