"""What every benchmark does at the end: print the table, keep it in the JSON result."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the table."""
    print(message, file=sys.stderr, flush=True)


def publish(result: Dict[str, Any], table: str, out: Path) -> None:
    """Prints `table` and writes `result` (with the table) as JSON to `out`."""
    print(table)
    result["table"] = table
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    log(f"wrote {out}")
