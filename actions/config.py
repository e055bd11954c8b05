"""Where the store lives and how long to wait for it.

One place decides the path so that the seeder, the action server and the
tests (which point ``CSBOT_STORE_DB`` at a temporary file) agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

ENV_STORE_DB = "CSBOT_STORE_DB"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STORE_DB = REPO_ROOT / ".data" / "store.db"


def resolve_db_path(value: Optional[str] = None) -> Path:
    """Where the store lives: ``value``, else ``$CSBOT_STORE_DB``, else ``.data/store.db``.

    Relative paths are taken relative to the repository root, not the working
    directory, so Rasa and the action server agree wherever they are started.
    """
    raw = value or os.environ.get(ENV_STORE_DB)
    if not raw:
        return DEFAULT_STORE_DB
    path = Path(raw).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


@dataclass(frozen=True)
class StoreConfig:
    """How to open the store; ``timeout_s`` bounds waiting for another writer's lock."""

    path: Path
    timeout_s: float = 5.0

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "StoreConfig":
        """Build the config from ``CSBOT_STORE_DB`` (see ``resolve_db_path``)."""
        env = os.environ if environ is None else environ
        return cls(path=resolve_db_path(env.get(ENV_STORE_DB)))
