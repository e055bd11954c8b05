"""`ReconnectingSQLTrackerStore`: Rasa's SQL tracker store that survives a database restart.

Rasa's ``SQLTrackerStore`` keeps a pool of open connections; after PostgreSQL restarts,
each of them fails once with ``OperationalError`` ("server closed the connection"), and
Rasa's fail-safe wrapper then keeps that turn in memory only: it is never stored. With
SQLAlchemy's ``pool_pre_ping`` every connection is checked as it is taken from the pool and
replaced when the server has gone away, so the first message after a restart is stored.

In endpoints.yml ``type: bot.tracker_store.ReconnectingSQLTrackerStore`` with the options of
``type: SQL`` (dialect, url, port, db, username, password).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs


class ReconnectingSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` whose pooled connections are checked before each use."""

    engine: sa.engine.Engine

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        url = self.engine.url
        self.engine.dispose()
        self.engine = sa.create_engine(url, pool_pre_ping=True, **create_engine_kwargs(url))
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
