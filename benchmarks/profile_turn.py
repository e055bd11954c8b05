"""Where one turn's time goes: each node of Rasa's graph, timed through a whole turn.

    python -m benchmarks.profile_turn [--model models/] [--messages 60]

Loads the trained model into a Rasa `Agent` (in-memory tracker store, no action server: the
turns are the load benchmark's non-generative ones, answered by domain responses), says the
messages one after another, and times every graph node's call (`GraphNode.__call__`: wall
and this thread's CPU) and the whole `handle_text`. What the nodes do not account for is
Rasa's own work around the graph (tracker, events, responses). Prints a table and writes
`benchmarks/results/profile_turn.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional

import rasa.engine.graph
from rasa.core.agent import Agent

from benchmarks.load import conversation_turns
from benchmarks.report import log, publish
from bot.services import MODELS_DIR, ROOT

RESULT = ROOT / "benchmarks" / "results" / "profile_turn.json"


class NodeTimer:
    """Wraps `GraphNode.__call__` to add up wall and CPU seconds per node name."""

    def __init__(self) -> None:
        self.wall: Dict[str, float] = defaultdict(float)
        self.cpu: Dict[str, float] = defaultdict(float)
        self.calls: Dict[str, int] = defaultdict(int)
        self._original = rasa.engine.graph.GraphNode.__call__

    def install(self) -> None:
        timer, original = self, self._original

        def timed(node: Any, *inputs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(node, *inputs)
            finally:
                name = node._node_name
                timer.wall[name] += time.perf_counter() - wall
                timer.cpu[name] += time.thread_time() - cpu
                timer.calls[name] += 1

        rasa.engine.graph.GraphNode.__call__ = timed  # type: ignore[method-assign]

    def reset(self) -> None:
        self.wall.clear()
        self.cpu.clear()
        self.calls.clear()


async def profile(model: Path, messages: int) -> Dict[str, Any]:
    timer = NodeTimer()
    timer.install()
    agent = Agent.load(str(model))
    texts = [text for _, text in conversation_turns(messages, 0)]
    await agent.handle_text(texts[0], sender_id="profile-warmup")
    timer.reset()
    wall, cpu = time.perf_counter(), time.thread_time()
    for n, text in enumerate(texts):
        # a new conversation every ten turns, as in the load benchmark
        await agent.handle_text(text, sender_id=f"profile-{n // 10}")
    turn_wall, turn_cpu = time.perf_counter() - wall, time.thread_time() - cpu
    nodes = sorted(timer.wall, key=lambda name: -timer.cpu[name])
    rows = [{"node": name, "calls": timer.calls[name],
             "wall_ms_per_turn": 1000 * timer.wall[name] / messages,
             "cpu_ms_per_turn": 1000 * timer.cpu[name] / messages} for name in nodes]
    return {"model": str(model), "messages": messages, "nodes": rows,
            "turn_wall_ms": 1000 * turn_wall / messages, "turn_cpu_ms": 1000 * turn_cpu / messages,
            "outside_graph_cpu_ms": 1000 * (turn_cpu - sum(timer.cpu.values())) / messages}


def table(result: Dict[str, Any], top: int) -> str:
    lines = ["| graph node | calls | wall ms/turn | CPU ms/turn |", "|---|---|---|---|"]
    for row in result["nodes"][:top]:
        lines.append(f"| {row['node']} | {row['calls']} | {row['wall_ms_per_turn']:.2f} | "
                     f"{row['cpu_ms_per_turn']:.2f} |")
    lines.append(f"| (Rasa outside the graph) | | | {result['outside_graph_cpu_ms']:.2f} |")
    lines.append(f"| **whole turn** | {result['messages']} | {result['turn_wall_ms']:.2f} | "
                 f"{result['turn_cpu_ms']:.2f} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=MODELS_DIR,
                        help="a model archive, or a folder (its newest archive)")
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--top", type=int, default=15, help="nodes shown in the table")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    model = args.model
    if model.is_dir():
        model = max(model.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    log(f"profiling {args.messages} turns of {model}")
    result = asyncio.run(profile(model, args.messages))
    publish(result, table(result, args.top), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
