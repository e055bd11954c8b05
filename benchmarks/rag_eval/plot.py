"""Draw the "I don't know" threshold curves of a rag_eval result as a PNG (needs matplotlib).

    python benchmarks/rag_eval/plot.py benchmarks/results/rag_eval.json out.png

Run with a Python that has matplotlib (the Rasa env's); ``python -m benchmarks.rag_eval``
calls it. One panel per question set: answerable questions refused (x) against
unanswerable questions answered (y) as the threshold moves, one line per mode, and a
dot at each mode's shipped threshold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(source: str, target: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = json.loads(Path(source).read_text(encoding="utf-8"))
    sets = [(name, modes) for name, modes in result["sets"].items()
            if any(m["retrieval"].get("curve") for m in modes.values())]
    fig, axes = plt.subplots(1, max(1, len(sets)), figsize=(5 * max(1, len(sets)), 4.5),
                             squeeze=False)
    for axis, (name, modes) in zip(axes[0], sets):
        for mode, entry in modes.items():
            curve = entry["retrieval"]["curve"]
            line, = axis.plot([p["answerable_refused"] for p in curve],
                              [p["unanswerable_answered"] for p in curve], label=mode)
            threshold = result["modes"][mode]["score_threshold"]
            shipped = min(curve, key=lambda p: abs(p["threshold"] - threshold))
            axis.plot([shipped["answerable_refused"]], [shipped["unanswerable_answered"]], "o",
                      color=line.get_color())
            axis.annotate(f"{threshold:g}", (shipped["answerable_refused"],
                                             shipped["unanswerable_answered"]),
                          textcoords="offset points", xytext=(6, 6), fontsize=8)
        axis.set_title(name)
        axis.set_xlabel('answerable refused ("I don\'t know")')
        axis.set_ylabel("unanswerable answered")
        axis.set_xlim(-0.02, 1.02)
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(target, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
