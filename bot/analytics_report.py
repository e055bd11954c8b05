"""The analytics report: sentiment along each conversation, by intent, hand-off rates and
the most negative conversations (redacted), as PNG charts and one self-contained HTML page.
The rows it summarises come from `bot.analytics`.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.analytics import Conversation, export, rows

CHART_FILES = ("sentiment_by_turn.png", "sentiment_by_intent.png", "handoff_rate.png")


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
