"""Conversation analytics: per-turn exports and a sentiment / hand-off report.

Reads the conversations from the tracker store that Rasa itself writes (whatever
`TrackerStore.create` builds from an endpoints file: SQLite by default, PostgreSQL or any
other store by configuration), so the numbers are about what really happened, and turns
them into one row per user turn. Every text that leaves the store is redacted
(`bot.redaction`); the store keeps the original.

    export   turns.csv + turns.parquet
    report   the export, three PNG charts and report.html (charts embedded, self-contained)
"""

from __future__ import annotations

import asyncio
import csv
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from statistics import mean
from typing import Iterable, List, Optional, Sequence, Tuple

import pyarrow as pa
import pyarrow.parquet as pq
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, UserUttered
from rasa.shared.exceptions import ConnectionException
from rasa.utils.endpoints import EndpointConfig, read_endpoint_config
from tqdm import tqdm

from bot.redaction import redact
from bot.services import DATA_DIR, ROOT, log

HANDOFF_ACTION = "action_handoff"
# Bookkeeping actions, not something the bot did for the customer.
NOT_A_RESPONSE = {ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME}
COLUMNS = [
    "conversation_id", "timestamp", "turn", "channel", "text", "intent", "intent_confidence",
    "sentiment_label", "sentiment_score", "actions_after", "handed_off",
]
SCHEMA = pa.schema([
    ("conversation_id", pa.string()),
    ("timestamp", pa.timestamp("us", tz="UTC")),
    ("turn", pa.int64()),
    ("channel", pa.string()),
    ("text", pa.string()),
    ("intent", pa.string()),
    ("intent_confidence", pa.float64()),
    ("sentiment_label", pa.string()),
    ("sentiment_score", pa.float64()),
    ("actions_after", pa.string()),
    ("handed_off", pa.bool_()),
])
EXPORT_FILES = ("turns.csv", "turns.parquet")


class AnalyticsError(RuntimeError):
    """The tracker store cannot be read as asked; the message says what to fix."""


@dataclass(frozen=True)
class TurnRow:
    """One user turn, as exported (text already redacted)."""

    conversation_id: str
    timestamp: datetime
    turn: int  # 1 = the conversation's first user message
    channel: Optional[str]
    text: str
    intent: Optional[str]
    intent_confidence: Optional[float]
    sentiment_label: Optional[str]
    sentiment_score: Optional[float]
    actions_after: str
    handed_off: bool


@dataclass(frozen=True)
class Line:
    """A transcript line: `speaker` is user, bot, staff (a colleague's reply relayed from
    Slack, `bot/handoff.py`) or action (only the hand-off is shown)."""

    speaker: str
    text: str
    score: Optional[float] = None


@dataclass
class Conversation:
    conversation_id: str
    turns: List[TurnRow]
    transcript: List[Line]
    handed_off: bool

    @property
    def scores(self) -> List[float]:
        return [t.sentiment_score for t in self.turns if t.sentiment_score is not None]

    @property
    def mean_sentiment(self) -> Optional[float]:
        return mean(self.scores) if self.scores else None


# --- reading ------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _utc(timestamp: Optional[float]) -> datetime:
    return datetime.fromtimestamp(float(timestamp or 0), tz=timezone.utc)


def _float(value: object) -> Optional[float]:
    return None if value is None else float(value)  # type: ignore[arg-type]


def conversation_from_events(
    conversation_id: str, events: Iterable[Event], handoff_action: str = HANDOFF_ACTION
) -> Conversation:
    """Rows and transcript of one conversation (every session, reverted turns included:
    the customer did say them)."""
    pending: List[Tuple[UserUttered, str, List[str]]] = []  # event, redacted text, actions
    transcript: List[Line] = []
    handed_off = False
    for event in events:
        if isinstance(event, UserUttered):
            text = redact(event.text)
            pending.append((event, text, []))
            score = _float((event.parse_data.get("sentiment") or {}).get("score"))
            transcript.append(Line("user", text, score))
        elif isinstance(event, BotUttered) and event.text:
            staff = (event.metadata or {}).get("handoff_staff")
            transcript.append(Line("staff", f"{staff}: {redact(event.text)}") if staff
                              else Line("bot", redact(event.text)))
        elif isinstance(event, ActionExecuted):
            name = event.action_name or event.action_text or ""
            if name == handoff_action:
                handed_off = True
                transcript.append(Line("action", name))
            if pending and name and name not in NOT_A_RESPONSE:
                pending[-1][2].append(name)
    turns = [
        _row(conversation_id, index, user, text, actions, handed_off)
        for index, (user, text, actions) in enumerate(pending, start=1)
    ]
    return Conversation(conversation_id, turns, transcript, handed_off)


def _row(
    conversation_id: str,
    index: int,
    user: UserUttered,
    text: str,
    actions: List[str],
    handed_off: bool,
) -> TurnRow:
    intent = user.parse_data.get("intent") or {}
    sentiment = user.parse_data.get("sentiment") or {}
    return TurnRow(
        conversation_id=conversation_id,
        timestamp=_utc(user.timestamp),
        turn=index,
        channel=user.input_channel,
        text=text,
        intent=intent.get("name"),
        intent_confidence=_float(intent.get("confidence")),
        sentiment_label=sentiment.get("label"),
        sentiment_score=_float(sentiment.get("score")),
        actions_after="|".join(actions),
        handed_off=handed_off,
    )


def default_endpoints() -> Path:
    """`bot start` writes .data/endpoints.yml (the files it really used); else the repo's."""
    written = DATA_DIR / "endpoints.yml"
    return written if written.exists() else ROOT / "endpoints.yml"


def tracker_store_config(endpoints: Path) -> EndpointConfig:
    """The `tracker_store` section; a relative SQLite file is taken from the project root,
    where `bot start` runs Rasa."""
    if not endpoints.exists():
        raise AnalyticsError(f"endpoints file {endpoints} does not exist")
    config = read_endpoint_config(str(endpoints), "tracker_store")
    if config is None or not config.type:
        raise AnalyticsError(
            f"{endpoints} has no `tracker_store` section with a `type`: Rasa then keeps "
            f"conversations in memory only, so there is nothing to analyse. Configure the "
            f"SQL tracker store (see endpoints.yml)."
        )
    sqlite = _sqlite_file(config)
    if sqlite is not None and not sqlite.is_absolute():
        config.kwargs["db"] = str(ROOT / sqlite)
    return config


def _sqlite_file(config: EndpointConfig) -> Optional[Path]:
    """The database file of a SQLite tracker store (Rasa's default name `rasa.db`)."""
    if config.type.lower() != "sql" or config.kwargs.get("dialect", "sqlite") != "sqlite":
        return None
    return Path(config.kwargs.get("db") or "rasa.db")


def open_tracker_store(config: EndpointConfig) -> Optional[TrackerStore]:
    """Rasa's own store for `config`; None for a SQLite file that does not exist yet
    (reading must not create an empty database)."""
    sqlite = _sqlite_file(config)
    if sqlite is not None and not sqlite.exists():
        return None
    try:
        return TrackerStore.create(config)
    except ConnectionException as error:
        raise AnalyticsError(f"cannot open the tracker store: {error}") from error


class _UnknownSlotFilter(logging.Filter):
    """Replaying stored SlotSet events without the domain logs an error per slot; analytics
    reads events only, so those records are noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "non existent slot" not in record.getMessage()


async def _read(store: TrackerStore, conversation_id: Optional[str]) -> List[Conversation]:
    keys = sorted(str(key) for key in await store.keys())
    if conversation_id is not None:
        if conversation_id not in keys:
            raise AnalyticsError(
                f"conversation {conversation_id!r} is not in the tracker store "
                f"({len(keys)} conversations there)"
            )
        keys = [conversation_id]
    conversations = []
    for key in tqdm(keys, desc="reading conversations", unit="conv"):
        tracker = await store.retrieve_full_tracker(key)
        if tracker is not None:
            conversation = conversation_from_events(key, tracker.events)
            if conversation.turns:
                conversations.append(conversation)
    return sorted(conversations, key=lambda c: (c.turns[0].timestamp, c.conversation_id))


def load_conversations(
    endpoints: Optional[Path] = None, conversation_id: Optional[str] = None
) -> List[Conversation]:
    """Every conversation with at least one user turn, oldest first."""
    config = tracker_store_config(endpoints or default_endpoints())
    store = open_tracker_store(config)
    if store is None:
        log(f"no tracker store yet at {_sqlite_file(config)}: nothing has been recorded")
        if conversation_id is not None:
            raise AnalyticsError(f"conversation {conversation_id!r} is not in the tracker store")
        return []
    trackers_logger = logging.getLogger("rasa.shared.core.trackers")
    slot_filter = _UnknownSlotFilter()
    trackers_logger.addFilter(slot_filter)
    try:
        return asyncio.run(_read(store, conversation_id))
    finally:
        trackers_logger.removeFilter(slot_filter)


# --- export -------------------------------------------------------------------------------


def rows(conversations: Sequence[Conversation]) -> List[TurnRow]:
    return [turn for conversation in conversations for turn in conversation.turns]


def write_csv(turns: Sequence[TurnRow], path: Path) -> Path:
    """ISO 8601 UTC timestamps, true/false, empty cells for missing values."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for turn in turns:
            row = asdict(turn)
            row["timestamp"] = _iso(turn.timestamp)
            row["handed_off"] = "true" if turn.handed_off else "false"
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def write_parquet(turns: Sequence[TurnRow], path: Path) -> Path:
    """Typed columns (timestamp in UTC), the same schema when there are no rows."""
    pq.write_table(pa.Table.from_pylist([asdict(t) for t in turns], schema=SCHEMA), path)
    return path


def export(conversations: Sequence[Conversation], out: Path) -> List[Path]:
    out.mkdir(parents=True, exist_ok=True)
    turns = rows(conversations)
    return [write_csv(turns, out / EXPORT_FILES[0]), write_parquet(turns, out / EXPORT_FILES[1])]


# --- command line (bot analytics ...) -----------------------------------------------------


def run(
    action: str,
    endpoints: Optional[str] = None,
    out: str = "artifacts/analytics",
    conversation_id: Optional[str] = None,
    top: int = 5,
) -> int:
    """`bot analytics export|report`; returns the exit code."""
    try:
        conversations = load_conversations(Path(endpoints) if endpoints else None, conversation_id)
    except AnalyticsError as error:
        log(f"error: {error}")
        return 1
    if not conversations:
        log("the tracker store holds no conversation with a user turn; "
            "writing empty (header-only) outputs")
    target = Path(out)
    if action == "export":
        written = export(conversations, target)
    else:
        title = (f"Conversation {conversation_id}" if conversation_id
                 else "Conversation analytics")
        from bot.analytics_report import report

        written = report(conversations, target, top=top, title=title)
    log(f"{len(rows(conversations))} user turns from {len(conversations)} conversations -> "
        + ", ".join(str(path) for path in written))
    return 0
