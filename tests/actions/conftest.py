"""Fixtures: a freshly seeded SQLite store per test.

Every test talks to a real database file created by ``actions.seed``; the
action code finds it through ``CSBOT_STORE_DB`` exactly as the running server does.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from actions.seed import seed  # noqa: E402
from actions.store import Store  # noqa: E402


@pytest.fixture(autouse=True)
def no_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the repository's own .data/store.db: point at a file that does not exist."""
    monkeypatch.setenv("CSBOT_STORE_DB", str(tmp_path / "not-seeded.db"))


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A seeded store in a temporary file, named by ``CSBOT_STORE_DB``."""
    path = tmp_path / "store.db"
    seed(path)
    monkeypatch.setenv("CSBOT_STORE_DB", str(path))
    return path


@pytest.fixture
def store(db_path: Path) -> Store:
    """The store API on the seeded file."""
    return Store(db_path)


@pytest.fixture
def db(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection for asserting on what the actions wrote."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()



@pytest.fixture(scope="session")
def slack_bot_token() -> str:
    """The stand-in's bot token, made for this run."""
    return "xoxb-" + secrets.token_urlsafe(32)


@pytest.fixture(scope="session")
def slack_standin(slack_bot_token: str) -> Iterator[str]:
    """The local Slack stand-in (tools/slack_standin.py: aiohttp + slack_sdk only) as a real
    HTTP peer in its own process; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.slack_standin", "--port", str(port)], cwd=REPO_ROOT,
        env={**os.environ, "SLACK_BOT_TOKEN": slack_bot_token})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/_standin/messages", timeout=2).close()
                break
            except OSError as error:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the Slack stand-in did not start") from error
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
