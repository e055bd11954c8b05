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
import base64
import csv
import html
import io
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from statistics import mean
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import pyarrow as pa
import pyarrow.parquet as pq
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
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
CHART_FILES = ("sentiment_by_turn.png", "sentiment_by_intent.png", "handoff_rate.png")


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
    """A transcript line: `speaker` is user, bot or action (only the hand-off is shown)."""

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
            transcript.append(Line("bot", redact(event.text)))
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


# --- summaries ----------------------------------------------------------------------------


def most_negative(conversations: Sequence[Conversation], count: int) -> List[Conversation]:
    """Lowest mean sentiment first; conversations without scores come last."""
    scored = sorted(
        conversations,
        key=lambda c: (c.mean_sentiment is None, c.mean_sentiment or 0.0, c.conversation_id),
    )
    return scored[:count]


def sentiment_by_intent(conversations: Sequence[Conversation]) -> List[Tuple[str, float, int]]:
    """(intent, mean score, turns) for every intent with scored turns, most negative first."""
    by_intent: Dict[str, List[float]] = {}
    for turn in rows(conversations):
        if turn.sentiment_score is not None:
            by_intent.setdefault(turn.intent or "(none)", []).append(turn.sentiment_score)
    return sorted(((i, mean(s), len(s)) for i, s in by_intent.items()), key=lambda r: (r[1], r[0]))


@dataclass(frozen=True)
class Rate:
    group: str
    handed_off: int
    conversations: int

    @property
    def rate(self) -> float:
        return self.handed_off / self.conversations if self.conversations else 0.0


def handoff_rates(conversations: Sequence[Conversation]) -> List[Rate]:
    """Overall, and split by whether the conversation's mean sentiment was negative (< 0);
    conversations without scores only count in the overall rate."""
    groups = {
        "all conversations": list(conversations),
        "mean sentiment < 0": [c for c in conversations if (c.mean_sentiment or 0) < 0],
        "mean sentiment >= 0": [
            c for c in conversations if c.mean_sentiment is not None and c.mean_sentiment >= 0
        ],
    }
    return [Rate(name, sum(c.handed_off for c in group), len(group)) for name, group in groups.items()]


# --- charts -------------------------------------------------------------------------------


def _png(figure: Figure) -> bytes:
    """Renders with the Agg canvas directly: no pyplot, no global backend switch."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _no_data(figure: Figure, title: str) -> bytes:
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.text(0.5, 0.5, "no conversations", ha="center", va="center", transform=axes.transAxes)
    axes.set_axis_off()
    return _png(figure)


def _short(conversation_id: str, width: int = 24) -> str:
    """Long ids (UUIDs, channel prefixes) keep both ends, which is where they differ."""
    if len(conversation_id) <= width:
        return conversation_id
    half = (width - 1) // 2
    return conversation_id[:half] + "…" + conversation_id[-half:]


def chart_sentiment_curves(
    conversations: Sequence[Conversation], max_lines: int = 12, labelled: int = 5
) -> bytes:
    """Score per turn, one line per conversation; the `max_lines` most negative are drawn,
    the `labelled` most negative of them named (more lines stop being readable)."""
    title = "Sentiment along each conversation"
    figure = Figure(figsize=(9, 5))
    if not conversations:
        return _no_data(figure, title)
    shown = most_negative(conversations, max_lines)
    axes = figure.add_subplot()
    for rank, conversation in enumerate(shown):
        xs = [t.turn for t in conversation.turns]
        ys = [float("nan") if t.sentiment_score is None else t.sentiment_score
              for t in conversation.turns]
        named = rank < labelled
        axes.plot(xs, ys, marker="o", markersize=3, linewidth=2 if named else 1,
                  alpha=1.0 if named else 0.35, color=None if named else "grey",
                  label=f"#{rank + 1} {_short(conversation.conversation_id)}" if named else None)
    axes.axhline(0, color="black", linewidth=0.6)
    axes.set_ylim(-1.05, 1.05)
    axes.set_xlabel("user turn")
    axes.set_ylabel("sentiment score")
    extra = f" ({len(shown)} most negative of {len(conversations)})" if len(shown) < len(conversations) else ""
    axes.set_title(title + extra)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if labelled > 0:
        axes.legend(title="most negative", fontsize="small", loc="best")
    return _png(figure)


def chart_sentiment_by_intent(summary: Sequence[Tuple[str, float, int]]) -> bytes:
    title = "Mean sentiment by intent"
    figure = Figure(figsize=(8, max(2.5, 0.35 * len(summary) + 1.2)))
    if not summary:
        return _no_data(figure, title)
    axes = figure.add_subplot()
    names = [f"{intent} (n={count})" for intent, _, count in summary]
    values = [value for _, value, _ in summary]
    axes.barh(names, values, color=["#c0392b" if v < 0 else "#27ae60" for v in values])
    axes.axvline(0, color="black", linewidth=0.6)
    axes.set_xlim(-1, 1)
    axes.invert_yaxis()
    axes.set_xlabel("mean sentiment score")
    axes.set_title(title)
    return _png(figure)


def chart_handoff_rates(rates: Sequence[Rate]) -> bytes:
    title = "Hand-off rate"
    figure = Figure(figsize=(7, 4))
    if not rates or not rates[0].conversations:
        return _no_data(figure, title)
    axes = figure.add_subplot()
    bars = axes.bar([r.group for r in rates], [100 * r.rate for r in rates],
                    color=["#34495e", "#c0392b", "#27ae60"][: len(rates)])
    for bar, rate in zip(bars, rates):
        axes.annotate(f"{rate.handed_off}/{rate.conversations}",
                      (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                      ha="center", va="bottom", fontsize="small")
    axes.set_ylim(0, 105)
    axes.set_ylabel("% of conversations handed to a human")
    axes.set_title(title)
    return _png(figure)


# --- report -------------------------------------------------------------------------------


def _transcript_html(conversation: Conversation) -> str:
    lines = []
    for line in conversation.transcript:
        score = "" if line.score is None else f' <span class="score">({line.score:+.2f})</span>'
        text = "handed off to a human" if line.speaker == "action" else line.text
        lines.append(f'<li class="{line.speaker}"><b>{line.speaker}</b>: '
                     f"{html.escape(text)}{score}</li>")
    return "<ol>" + "".join(lines) + "</ol>"


def _table(header: Sequence[str], body: Iterable[Sequence[str]]) -> str:
    """Cells are already-escaped HTML."""
    head = "".join(f"<th>{h}</th>" for h in header)
    rows_html = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><tr>{head}</tr>{rows_html}</table>"


def _number(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:+.2f}"


def render_html(
    conversations: Sequence[Conversation], charts: Dict[str, bytes], top: int, title: str
) -> str:
    """One self-contained page: charts as data URIs, every text HTML-escaped."""
    esc = html.escape
    rates = handoff_rates(conversations)
    images = "".join(
        f'<figure><img alt="{esc(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode("ascii")}"></figure>'
        for name, data in charts.items()
    )
    if conversations:
        summary = (f"<p>{len(conversations)} conversations, {len(rows(conversations))} user "
                   f"turns, {rates[0].handed_off} handed off to a human "
                   f"({100 * rates[0].rate:.0f}%).</p>")
    else:
        summary = "<p><b>No conversations in the tracker store.</b></p>"
    intents = _table(["intent", "mean sentiment", "scored turns"],
                     [(esc(i), _number(v), str(n)) for i, v, n in sentiment_by_intent(conversations)])
    handoffs = _table(["conversations", "handed off", "rate"],
                      [(esc(r.group), f"{r.handed_off}/{r.conversations}", f"{100 * r.rate:.0f}%")
                       for r in rates])
    negative = _table(
        ["#", "conversation", "mean sentiment", "turns", "handed off", "transcript (redacted)"],
        [(str(rank), esc(c.conversation_id), _number(c.mean_sentiment), str(len(c.turns)),
          "yes" if c.handed_off else "no", _transcript_html(c))
         for rank, c in enumerate(most_negative(conversations, top), start=1)],
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 70em; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
td, th {{ border: 1px solid #ccc; padding: .3em .6em; vertical-align: top; text-align: left; }}
img {{ max-width: 100%; }} ol {{ margin: 0; padding-left: 1.4em; }}
li.bot {{ color: #2c3e50; }} li.action {{ color: #c0392b; }} .score {{ color: #888; }}
</style></head><body>
<h1>{esc(title)}</h1>
{summary}
<p>Personal data (emails, phone numbers, card numbers, street addresses) is masked in
everything on this page; the tracker store keeps the original conversation.</p>
{images}
<h2>Mean sentiment by intent</h2>{intents}
<h2>Hand-off rate</h2>{handoffs}
<h2>The most negative conversations (up to {top})</h2>{negative}
</body></html>
"""


def report(
    conversations: Sequence[Conversation], out: Path, top: int = 5, title: str = "Conversation analytics"
) -> List[Path]:
    """The export files, the three charts and report.html, all in `out`."""
    written = export(conversations, out)
    charts = dict(zip(CHART_FILES, (
        chart_sentiment_curves(conversations, labelled=top),
        chart_sentiment_by_intent(sentiment_by_intent(conversations)),
        chart_handoff_rates(handoff_rates(conversations)),
    )))
    for name, data in charts.items():
        (out / name).write_bytes(data)
        written.append(out / name)
    page = out / "report.html"
    page.write_text(render_html(conversations, charts, top, title), encoding="utf-8")
    return written + [page]


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
        written = report(conversations, target, top=top, title=title)
    log(f"{len(rows(conversations))} user turns from {len(conversations)} conversations -> "
        + ", ".join(str(path) for path in written))
    return 0
