"""Split the customer-phrased questions into dev and test, stratified by kind, fixed seed.

    python -m benchmarks.rag_eval.split [--seed 13]

Reads both ``customer_dev.jsonl`` and ``customer_test.jsonl`` (their union is the
authored set), shuffles each kind with ``random.Random(seed)`` and writes the first
half of every kind (rounded up) to dev and the rest to test. Rerunning it with the
same seed reproduces the same files, so the split cannot drift. Tune on dev only;
report on test.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
DEV = HERE / "customer_dev.jsonl"
TEST = HERE / "customer_test.jsonl"
SEED = 13


def read(path: Path) -> List[Dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def split(items: List[Dict], seed: int = SEED) -> tuple[List[Dict], List[Dict]]:
    """(dev, test): half of each ``kind`` (dev gets the odd one), in id order."""
    by_kind: Dict[str, List[Dict]] = defaultdict(list)
    for item in sorted(items, key=lambda x: x["id"]):
        by_kind[item["kind"]].append(item)
    rng = random.Random(seed)
    dev: List[Dict] = []
    test: List[Dict] = []
    for kind in sorted(by_kind):
        group = list(by_kind[kind])
        rng.shuffle(group)
        half = (len(group) + 1) // 2
        dev.extend(group[:half])
        test.extend(group[half:])
    return sorted(dev, key=lambda x: x["id"]), sorted(test, key=lambda x: x["id"])


def write(path: Path, items: List[Dict]) -> None:
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items),
                    encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    items = {x["id"]: x for x in read(DEV) + read(TEST)}
    dev, test = split(list(items.values()), args.seed)
    write(DEV, dev)
    write(TEST, test)
    print(f"{len(dev)} dev and {len(test)} test questions (seed {args.seed})")


if __name__ == "__main__":
    main()
