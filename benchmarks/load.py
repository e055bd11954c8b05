"""Load benchmark: many customers at once through the running assistant, side by side.

    python -m benchmarks.load [--pipeline ours stock] [--topology single cluster]
                              [--conversations 100] [--turns 10] [--transport rest socketio]
                              [--rounds 1]

For each pipeline × topology it starts the servers on loopback, with the extractive
knowledge backend: `single` is what `make start` runs (`bot.services`: one Rasa process,
SQLite tracker store, the turn log, one action server), `cluster` what `bot cluster up` runs
(`bot.cluster`: 2 replicas and 2 action servers behind nginx, PostgreSQL, Redis). It warms
up, then measures

* **solo**: one conversation, its turns one after another (latency without queueing);
* **load**: N conversations at once over each transport, each sending its M turns one after
  another (the next when the reply came), as customers do. Transports: `rest`, `socketio`
  (the widget's socket.io over a websocket, as a browser talks once the handshake upgraded)
  and `socketio-polling` (its long-polling fallback).

Reported per turn kind (`non_generative`: domain responses; `knowledge`: the action server's
knowledge answer, every `--knowledge-every`-th turn): messages per second, p50/p95/p99,
errors (not 200, no reply, timeout), events lost (user messages sent but not in the tracker
store) and duplicated, and CPU milliseconds per message of the Rasa processes and of the
action servers (from /proc). `stock` is Rasa's default DIET pipeline trained on the same
demo data (benchmarks/configs/stock.yml); `ours` is config.yml. On a shared machine the
pipeline that runs second is often slower, so `--rounds N` runs them N times in alternating
order (ours, stock, then stock, ours, ...) and reports the ratios of each round and their
geometric mean. One table with the ratios is printed and written to
`benchmarks/results/load.json`. Counts and time are bounded
(`--conversations` ≤ 2000, `--turns` ≤ 50, `--time-limit` per phase).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import aiohttp
import socketio
import yaml

from benchmarks.report import log, publish
from bot.cluster import running_cluster
from bot.limits import LimitSettings
from bot.services import (
    MODELS_DIR, ROOT, Endpoints, action_server, free_port, new_token, rasa, rasa_server, run,
    seed_store, train,
)
from tools.widget_client import WidgetCustomer

TURNS_FILE = ROOT / "benchmarks" / "configs" / "load_turns.yml"
STOCK_CONFIG = ROOT / "benchmarks" / "configs" / "stock.yml"
WORK = ROOT / "artifacts" / "load"
RESULT = ROOT / "benchmarks" / "results" / "load.json"
MAX_CONVERSATIONS, MAX_TURNS, MAX_ROUNDS = 2000, 50, 6
#: the benchmark's socket.io transports and engineio's names for them
SOCKETIO = {"socketio": "websocket", "socketio-polling": "polling"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    """A running assistant: where customers talk to it and which processes do the work."""

    url: str
    token: str
    rasa_pids: List[int]
    action_pids: List[int]
    api_url: str = ""  # Rasa's HTTP API (the tracker), where `url` (nginx) does not serve it

    def __post_init__(self) -> None:
        self.api_url = self.api_url or self.url


@dataclass
class Turn:
    kind: str
    seconds: float
    ok: bool


@dataclass
class Phase:
    """What one phase (solo or load, one transport) measured."""

    name: str
    transport: str
    conversations: int
    turns: int
    wall_s: float
    sent: int
    results: List[Turn] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    rasa_cpu_s: float = 0.0
    action_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    def summary(self) -> Dict[str, Any]:
        by_kind: Dict[str, Dict[str, Any]] = {}
        for kind in sorted({t.kind for t in self.results}):
            turns = [t for t in self.results if t.kind == kind]
            latencies = sorted(t.seconds for t in turns if t.ok)
            by_kind[kind] = {"messages": len(turns), "errors": sum(not t.ok for t in turns),
                             **percentiles(latencies)}
        answered = len(self.results)
        served = answered - sum(not t.ok for t in self.results)
        return {
            "phase": self.name, "transport": self.transport,
            "conversations": self.conversations, "turns": self.turns, "sent": self.sent,
            "wall_s": round(self.wall_s, 2),
            "msg_per_s": round(served / self.wall_s, 2) if self.wall_s else 0.0,  # answered ones
            "errors": sum(not t.ok for t in self.results), "lost": self.lost,
            "duplicated": self.duplicated,
            "rasa_cpu_ms_per_msg": round(1000 * self.rasa_cpu_s / max(answered, 1), 1),
            "action_cpu_ms_per_msg": round(1000 * self.action_cpu_s / max(answered, 1), 1),
            "client_cpu_ms_per_msg": round(1000 * self.client_cpu_s / max(answered, 1), 1),
            "by_kind": by_kind,
        }


def percentiles(values: List[float]) -> Dict[str, Optional[float]]:
    """p50/p95/p99 in milliseconds (nearest rank), None without values."""
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    def rank(q: float) -> float:
        return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 1)
    return {"p50_ms": round(1000 * statistics.median(values), 1), "p95_ms": rank(0.95),
            "p99_ms": rank(0.99)}


def cpu_seconds(pids: List[int]) -> float:
    """User + system CPU of `pids` and their waited-for children, from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a process that is gone (a killed replica) adds nothing more
            continue
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / CLOCK_TICKS


def conversation_turns(turns: int, knowledge_every: int) -> List[Tuple[str, str]]:
    """The (kind, text) a conversation says: the non-generative list, wrapping round, with
    every `knowledge_every`-th turn a knowledge question."""
    texts = yaml.safe_load(TURNS_FILE.read_text())
    chat, knowledge = texts["non_generative"], texts["knowledge"]
    said = []
    for n in range(turns):
        if knowledge_every and (n + 1) % knowledge_every == 0:
            said.append(("knowledge", knowledge[(n // knowledge_every) % len(knowledge)]))
        else:
            said.append(("non_generative", chat[n % len(chat)]))
    return said


# ---- the customers ----------------------------------------------------------------------


async def rest_conversation(session: aiohttp.ClientSession, url: str, sender: str,
                            turns: List[Tuple[str, str]], timeout: float, deadline: float,
                            results: List[Turn]) -> int:
    """One REST customer; returns how many messages it sent."""
    sent = 0
    for kind, text in turns:
        if time.monotonic() > deadline:
            break
        start, ok = time.perf_counter(), False
        sent += 1
        try:
            async with session.post(f"{url}/webhooks/rest/webhook",
                                    json={"sender": sender, "message": text},
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as reply:
                body = await reply.json(content_type=None)
                ok = reply.status == 200 and isinstance(body, list) and bool(body)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            pass
        results.append(Turn(kind, time.perf_counter() - start, ok))
    return sent


async def socketio_conversation(url: str, sender: str, source: str, transport: str,
                                turns: List[Tuple[str, str]], timeout: float, deadline: float,
                                results: List[Turn]) -> int:
    """One widget customer (tools/widget_client.py: Rasa's socket.io protocol over engineio's
    `transport`) from the loopback address `source`; a turn is answered when its first bot
    message arrives."""
    sent = 0
    try:
        async with WidgetCustomer(url, sender, timeout, source, transport) as customer:
            for kind, text in turns:
                if time.monotonic() > deadline:
                    break
                # the next turn starts at the first reply: a customer reads on while the
                # rest of a turn's messages arrive, so those are not waited for
                customer.received.clear()
                start, ok = time.perf_counter(), False
                sent += 1
                try:
                    await customer.say(text)
                    await customer.next_reply(timeout)
                    ok = True
                except (socketio.exceptions.SocketIOError, asyncio.TimeoutError):
                    pass
                results.append(Turn(kind, time.perf_counter() - start, ok))
    except (socketio.exceptions.ConnectionError, asyncio.TimeoutError):
        # no connection or no session: every turn not sent is an error
        results.extend(Turn(kind, timeout, False) for kind, _ in turns[sent:])
    return sent


async def stored_user_messages(target: Target, senders: List[str]) -> Dict[str, int]:
    """How many user messages the tracker store holds per conversation (Rasa's HTTP API)."""
    limit = asyncio.Semaphore(16)

    async def count(session: aiohttp.ClientSession, sender: str) -> Tuple[str, int]:
        async with limit, session.get(f"{target.api_url}/conversations/{sender}/tracker",
                                      params={"token": target.token}) as reply:
            events = (await reply.json()).get("events") or []
        return sender, sum(event.get("event") == "user" for event in events)

    async with aiohttp.ClientSession() as session:
        return dict(await asyncio.gather(*(count(session, s) for s in senders)))


async def drive(target: Target, phase: str, label: str, transport: str, conversations: int,
                turns: List[Tuple[str, str]], timeout: float, time_limit: float) -> Phase:
    """Runs `conversations` customers at once and measures what they and the servers saw."""
    senders = [f"load-{label}-{phase}-{transport}-{n}-{new_token()[:8]}"
               for n in range(conversations)]
    results: List[Turn] = []
    deadline = time.monotonic() + time_limit
    before = (cpu_seconds(target.rasa_pids), cpu_seconds(target.action_pids),
              resource.getrusage(resource.RUSAGE_SELF))
    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        progress = asyncio.create_task(report_progress(results, conversations * len(turns)))
        if transport == "rest":
            jobs = [rest_conversation(session, target.url, s, turns, timeout, deadline, results)
                    for s in senders]
        else:
            # customers from 250 addresses: nginx sticks a socket.io client to a replica by
            # its address, and real customers do not share one
            jobs = [socketio_conversation(target.url, s, f"127.0.0.{2 + n % 250}",
                                          SOCKETIO[transport], turns, timeout, deadline,
                                          results)
                    for n, s in enumerate(senders)]
        sent = await asyncio.gather(*jobs)
        progress.cancel()
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stored = await stored_user_messages(target, senders)
    return Phase(
        phase, transport, conversations, len(turns), wall, sum(sent), results,
        lost=sum(max(0, n - stored[s]) for s, n in zip(senders, sent)),
        duplicated=sum(max(0, stored[s] - n) for s, n in zip(senders, sent)),
        rasa_cpu_s=cpu_seconds(target.rasa_pids) - before[0],
        action_cpu_s=cpu_seconds(target.action_pids) - before[1],
        client_cpu_s=usage.ru_utime + usage.ru_stime - before[2].ru_utime - before[2].ru_stime)


async def report_progress(results: List[Turn], total: int) -> None:
    while True:
        await asyncio.sleep(5)
        log(f"  {len(results)}/{total} messages answered")


# ---- the servers ------------------------------------------------------------------------


def stock_model() -> Path:
    """Rasa's default pipeline on the same demo data (`rasa train` reuses it unchanged)."""
    out = WORK / "models-stock"
    run(rasa("train", "--domain", "domain.yml", "--config", str(STOCK_CONFIG), "--data", "data",
             "--out", str(out)),
        "training the stock DIET pipeline on the demo data (once; Rasa reuses it)",
        log_file=WORK / "train-stock.log")
    return out


@contextmanager
def single_process(model: Path, logs: Path) -> Iterator[Target]:
    """One Rasa process and one action server, as `make start` runs them (SQLite, turn log)."""
    with tempfile.TemporaryDirectory(prefix="csbot-load-") as tmp:
        store = Path(tmp) / "store.db"
        seed_store(store, reset=True)
        action_port, rasa_port, token = free_port(), free_port(), new_token()
        endpoints = Endpoints(action_port, Path(tmp) / "tracker.db",
                              turn_log=Path(tmp) / "turns.jsonl").write(Path(tmp) / "e.yml")
        with action_server(action_port, store, logs / "action-server.log",
                           env={"CSBOT_KNOWLEDGE_BACKEND": "extractive"}) as actions, \
                rasa_server(rasa_port, endpoints, logs / "rasa.log", model=model,
                            token=token) as server:
            yield Target(f"http://127.0.0.1:{rasa_port}", token, [server.pid], [actions.pid])


async def measure(target: Target, label: str, args: argparse.Namespace) -> List[Phase]:
    """Warm-up, the solo conversation, then the load over each transport."""
    turns = conversation_turns(args.turns, args.knowledge_every)
    await drive(target, "warmup", label, "rest", 1, turns, args.timeout, args.time_limit)
    phases = [await drive(target, "solo", label, "rest", 1, turns * args.solo_rounds,
                          args.timeout, args.time_limit)]
    for transport in args.transport:
        log(f"{label}: {args.conversations} conversations × {args.turns} turns over {transport}")
        phases.append(await drive(target, "load", label, transport, args.conversations, turns,
                                  args.timeout, args.time_limit))
    return phases


# ---- the report -------------------------------------------------------------------------


def table(runs: List[Dict[str, Any]]) -> str:
    lines = ["| round | pipeline | topology | phase | transport | kind | messages | msg/s | "
             "p50 ms | p95 ms | p99 ms | errors | lost | dup | Rasa CPU ms/msg | "
             "actions CPU ms/msg |",
             "|" + "---|" * 16]
    for entry in runs:
        for phase in entry["phases"]:
            for kind, stats in phase["by_kind"].items():
                lines.append(
                    f"| {entry['round']} | {entry['pipeline']} | {entry['topology']} | "
                    f"{phase['phase']} | "
                    f"{phase['transport']} | {kind} | {stats['messages']} | "
                    f"{phase['msg_per_s']} | {stats['p50_ms']} | {stats['p95_ms']} | "
                    f"{stats['p99_ms']} | {stats['errors']} | {phase['lost']} | "
                    f"{phase['duplicated']} | {phase['rasa_cpu_ms_per_msg']} | "
                    f"{phase['action_cpu_ms_per_msg']} |")
    return "\n".join(lines + ["", *ratios(runs)])


def ratios(runs: List[Dict[str, Any]]) -> List[str]:
    """ours/stock per topology and cluster/single per pipeline, per transport: throughput
    (and for ours/stock p95, Rasa's CPU a message and one conversation's p50) in each round,
    then the geometric mean of the rounds' ratios."""
    def phase(pipeline: str, topology: str, transport: str, round_: int,
              name: str) -> Optional[Dict[str, Any]]:
        for entry in runs:
            if (entry["pipeline"], entry["topology"], entry["round"]) == (
                    pipeline, topology, round_):
                for found in entry["phases"]:
                    if (found["phase"], found["transport"]) == (name, transport):
                        return found
        return None

    def p95(load: Dict[str, Any]) -> Optional[float]:
        return load["by_kind"].get("non_generative", {}).get("p95_ms")

    def solo_p50(solo: Optional[Dict[str, Any]]) -> Optional[float]:
        return solo["by_kind"].get("non_generative", {}).get("p50_ms") if solo else None

    def compare(name: str, a: Tuple[str, str], b: Tuple[str, str], transport: str) -> None:
        ratios_of: Dict[str, List[float]] = {"throughput": [], "p95": [],
                                             "one conversation p50": []}
        for round_ in rounds:
            load_a, load_b = (phase(*key, transport, round_, "load") for key in (a, b))
            if not (load_a and load_b and load_b["msg_per_s"]):
                continue
            first = next(e["pipeline"] for e in runs if e["round"] == round_)
            ratios_of["throughput"].append(load_a["msg_per_s"] / load_b["msg_per_s"])
            detail = ""
            tail_a, tail_b = p95(load_a), p95(load_b)
            if a[0] != b[0] and tail_a and tail_b:  # ours / stock
                ratios_of["p95"].append(tail_a / tail_b)
                detail = (f", p95 {tail_a} / {tail_b} ms, Rasa CPU "
                          f"{load_a['rasa_cpu_ms_per_msg']} / {load_b['rasa_cpu_ms_per_msg']} "
                          f"ms a message")
                alone = [solo_p50(phase(*key, transport, round_, "solo")) for key in (a, b)]
                if alone[0] and alone[1]:
                    ratios_of["one conversation p50"].append(alone[0] / alone[1])
                    detail += f", one conversation p50 {alone[0]} / {alone[1]} ms"
            lines.append(f"{name}, round {round_} ({first} first): throughput "
                         f"{ratios_of['throughput'][-1]:.2f}×{detail}")
        if len(ratios_of["throughput"]) > 1:
            means = ", ".join(f"{what} {statistics.geometric_mean(values):.2f}×"
                              for what, values in ratios_of.items()
                              if len(values) == len(ratios_of["throughput"]))
            lines.append(f"{name}: {means} (geometric means of "
                         f"{len(ratios_of['throughput'])} rounds)")

    lines: List[str] = []
    transports = sorted({p["transport"] for e in runs for p in e["phases"] if p["phase"] == "load"})
    topologies = sorted({e["topology"] for e in runs})
    pipelines = sorted({e["pipeline"] for e in runs})
    rounds = sorted({e["round"] for e in runs})
    for transport in transports:
        for topology in topologies:
            compare(f"ours / stock, {topology}, {transport}",
                    ("ours", topology), ("stock", topology), transport)
        for pipeline in pipelines:
            compare(f"cluster / single, {pipeline}, {transport}",
                    (pipeline, "cluster"), (pipeline, "single"), transport)
    return lines


@contextmanager
def cluster(model: Path, logs: Path) -> Iterator[Target]:
    """`bot cluster up`'s topology (bot/cluster.py): 2 replicas and 2 action servers behind
    nginx, PostgreSQL and Redis; the tracker is read from the first replica."""
    with running_cluster(2, 2, folder=logs / "cluster", model=model, slack=False,
                         env={"CSBOT_KNOWLEDGE_BACKEND": "extractive"}) as running:
        yield Target(running.url, running.token, [r.process.pid for r in running.replicas],
                     [a.process.pid for a in running.actions],
                     api_url=f"http://127.0.0.1:{running.replicas[0].port}")


TOPOLOGIES = {"single": single_process, "cluster": cluster}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", nargs="+", choices=["ours", "stock"],
                        default=["ours", "stock"])
    parser.add_argument("--topology", nargs="+", choices=sorted(TOPOLOGIES), default=["single"])
    parser.add_argument("--transport", nargs="+", choices=["rest", *SOCKETIO],
                        default=["rest", "socketio"])
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--knowledge-every", type=int, default=0,
                        help="every K-th turn is a knowledge question (0: none)")
    parser.add_argument("--solo-rounds", type=int, default=2,
                        help="the solo conversation says its turns this many times")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per reply")
    parser.add_argument("--time-limit", type=float, default=600.0,
                        help="seconds per phase; turns not sent by then are not sent")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the pipelines this many times, in alternating order")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    if not (0 < args.conversations <= MAX_CONVERSATIONS and 0 < args.turns <= MAX_TURNS):
        parser.error(f"--conversations 1..{MAX_CONVERSATIONS}, --turns 1..{MAX_TURNS}")
    if not 0 < args.rounds <= MAX_ROUNDS:
        parser.error(f"--rounds 1..{MAX_ROUNDS}")
    solo = args.turns * args.solo_rounds
    if not 0 < solo <= LimitSettings.max_messages:
        # the solo conversation is one customer: past the channel's rate limit its messages
        # get the quick refusal and are not stored, which would read as lost and fast
        parser.error(f"--turns × --solo-rounds is {solo}: one conversation may send at most "
                     f"{LimitSettings.max_messages} messages a window (bot/limits.py)")
    if "ours" in args.pipeline:
        train()  # as `make start` does: Rasa skips it when nothing changed
    models = {"ours": MODELS_DIR, **({"stock": stock_model()} if "stock" in args.pipeline else {})}
    runs = []
    for round_ in range(1, args.rounds + 1):
        order = args.pipeline if round_ % 2 else args.pipeline[::-1]
        for topology in args.topology:
            for pipeline in order:
                label = f"{pipeline}-{topology}" + (f"-{round_}" if args.rounds > 1 else "")
                with TOPOLOGIES[topology](models[pipeline], WORK / label) as target:
                    phases = asyncio.run(measure(target, label, args))
                runs.append({"round": round_, "pipeline": pipeline, "topology": topology,
                             "phases": [p.summary() for p in phases]})
    publish({"settings": {k: str(v) for k, v in vars(args).items()}, "cpus": os.cpu_count(),
             "load_average": os.getloadavg(), "runs": runs},
            table(runs), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
