"""Training half of the NLU benchmark, run as one process per pipeline by `nlu_benchmark`.

A process of its own gives the parent an exact peak-RSS figure for the training (the rusage
that `os.wait4` returns covers this process only) and keeps one pipeline's memory (or
TensorFlow's thread pools) from leaking into the next pipeline's numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import List, Optional


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    """The four paths/names `rasa.model_training.train_nlu` needs, plus where to report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--nlu", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--report", required=True, help="JSON file to write the result to")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Trains with Rasa's own API and reports the archive path and the train_nlu seconds.

    The seconds measured here exclude interpreter start-up and Rasa's import time, which
    the parent's wall clock includes; both end up in the benchmark JSON.
    """
    args = parse_args(argv)
    import rasa.model_training  # imported after argument parsing: it takes seconds

    start = time.perf_counter()
    model_path = rasa.model_training.train_nlu(
        config=args.config,
        nlu_data=args.nlu,
        output=args.output,
        fixed_model_name=args.model_name,
    )
    seconds = time.perf_counter() - start
    if not model_path:
        print(f"train_nlu produced no model for {args.config}", file=sys.stderr)
        return 1
    Path(args.report).write_text(
        json.dumps({"model_path": str(model_path), "train_nlu_seconds": seconds})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
