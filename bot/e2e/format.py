"""The end-to-end test-case format: loading and validating `test_cases:` YAML files.

Close to Rasa Pro's end-to-end format, so a Rasa user can read it without a manual::

    fixtures:                       # optional, named, handed to --fixtures-command
      - processing_order: {orders: [{order_id: ORD-20001, email: a@example.com}]}
    test_cases:
      - test_case: cancel an order
        fixtures: [processing_order]
        steps:
          - user: "cancel my order ORD-20001"
          - utter: utter_ask_email            # a response by name, any variation
          - user: "a@example.com"
          - slot_was_set: {email: a@example.com}
          - bot: /is cancelled/               # exact text, or /regex/

Every step is a one-key mapping. `user` sends a message; every other step checks the turn
that the latest `user` step started (see `checks.py` for what each compares). A file that
breaks the format is refused as a whole, with an error naming the file and the test case,
before anything is sent to a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import yaml

USER = "user"
#: Step kinds that check the latest turn, with the YAML type their value must have.
CHECKS: Dict[str, Tuple[type, ...]] = {
    "bot": (str,),
    "utter": (str,),
    "action": (str,),
    "intent": (str,),
    "slot_was_set": (dict, list, str),
    "slot_was_not_set": (list, str),
    "slots": (dict,),
    "custom": (dict,),
    "sentiment": (str,),
    "handoff": (str, type(None)),
}
SENTIMENTS = ("negative", "neutral", "positive")
CASE_KEYS = {"test_case", "steps", "fixtures"}
#: `repeat: K` runs every case of the file K times (generative answers: pass^k);
#: `concurrency: N` keeps at most N of the file's runs in flight (a model that answers one
#: request at a time).
TOP_KEYS = {"test_cases", "fixtures", "repeat", "concurrency", "version"}


class FormatError(ValueError):
    """A test-case file that does not follow the format; the message names file and case."""


@dataclass(frozen=True)
class Step:
    """One step: its kind (`user`, `bot`, …), its value, and its 1-based index in the case."""

    kind: str
    value: Any
    index: int

    def yaml(self) -> str:
        """The step as it reads in the file, for failure reports."""
        return yaml.safe_dump([{self.kind: self.value}], sort_keys=False,
                              allow_unicode=True, width=1000).strip()


@dataclass(frozen=True)
class Fixture:
    name: str
    data: Any


@dataclass(frozen=True)
class TestCase:
    name: str
    file: Path
    steps: Tuple[Step, ...]
    fixtures: Tuple[Fixture, ...] = field(default=())
    repeat: int = 1  # runs per test run: the file's `repeat`, or more with --repeat
    concurrency: Optional[int] = None  # the file's cap on its runs in flight at once

    @property
    def id(self) -> str:
        return f"{self.file.stem}::{self.name}"


def is_regex(text: Any) -> bool:
    """`/…/` marks a regular expression (searched, dot matches newlines)."""
    return isinstance(text, str) and len(text) >= 2 and text.startswith("/") and text.endswith("/")


def slot_expectations(value: Any) -> List[Tuple[str, Any, bool]]:
    """`slot_was_set` values as (slot, expected value, whether a value was given).

    Accepts `{slot: value}`, a bare `slot` (set to anything non-null), or a list of both
    (Rasa Pro writes `- slot_was_set: [- slot: value]`)."""
    items = value if isinstance(value, list) else [value]
    found: List[Tuple[str, Any, bool]] = []
    for item in items:
        if isinstance(item, str):
            found.append((item, None, False))
        elif isinstance(item, dict):
            found.extend((str(slot), expected, True) for slot, expected in item.items())
        else:
            raise ValueError(f"expected a slot name or {{slot: value}}, got {item!r}")
    return found


def _check_step(kind: str, value: Any) -> None:
    """Raises ValueError with what is wrong with one step's value."""
    if kind == USER:
        if not isinstance(value, str):
            raise ValueError("`user` takes the message text")
        return
    if kind not in CHECKS:
        known = ", ".join([USER, *CHECKS])
        raise ValueError(f"unknown step `{kind}` (known: {known})")
    if not isinstance(value, CHECKS[kind]):
        types = " or ".join(t.__name__ for t in CHECKS[kind])
        raise ValueError(f"`{kind}` takes a {types}, got {type(value).__name__} {value!r}")
    if kind in ("slot_was_set", "slot_was_not_set"):
        expectations = slot_expectations(value)
        if kind == "slot_was_not_set" and any(given for _, _, given in expectations):
            raise ValueError("`slot_was_not_set` takes slot names only")
        if not expectations:
            raise ValueError(f"`{kind}` names no slot")
    if kind == "sentiment" and value not in SENTIMENTS:
        raise ValueError(f"`sentiment` is one of {', '.join(SENTIMENTS)}, got {value!r}")
    if kind in ("custom", "slots") and not value:
        raise ValueError(f"`{kind}` needs at least one entry")
    if kind == "bot" and isinstance(value, str) and is_regex(value):
        try:
            re.compile(value[1:-1])
        except re.error as error:
            raise ValueError(f"bad regular expression {value}: {error}") from None


def _steps(raw: Any) -> Tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("`steps` must be a non-empty list")
    steps: List[Step] = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or len(item) != 1:
            raise ValueError(f"step {index} must be a mapping with exactly one key, got {item!r}")
        kind, value = next(iter(item.items()))
        try:
            _check_step(str(kind), value)
        except ValueError as error:
            raise ValueError(f"step {index}: {error}") from None
        if kind != USER and not any(s.kind == USER for s in steps):
            raise ValueError(f"step {index} (`{kind}`) checks a turn, but no `user` step "
                             "comes before it")
        steps.append(Step(str(kind), value, index))
    return tuple(steps)


def _fixtures(raw: Any) -> Dict[str, Any]:
    """Top-level fixtures: a list of one-key mappings (Rasa Pro's shape) or one mapping."""
    if raw is None:
        return {}
    items = raw if isinstance(raw, list) else [raw]
    fixtures: Dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"`fixtures` entries are {{name: data}} mappings, got {item!r}")
        fixtures.update({str(name): data for name, data in item.items()})
    return fixtures


def load_file(path: Path) -> List[TestCase]:
    """The test cases of one file; FormatError if any part of it is malformed."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise FormatError(f"{path}: cannot read it as YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("test_cases"), list):
        raise FormatError(f"{path}: expected a top-level `test_cases:` list")
    unknown = set(document) - TOP_KEYS
    if unknown:
        raise FormatError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(TOP_KEYS))})")
    repeat = document.get("repeat", 1)
    concurrency = document.get("concurrency")
    for key, value in (("repeat", repeat), ("concurrency", concurrency or 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise FormatError(f"{path}: `{key}` is a whole number, 1 or more, got {value!r}")
    try:
        fixtures = _fixtures(document.get("fixtures"))
    except ValueError as error:
        raise FormatError(f"{path}: {error}") from None
    cases: List[TestCase] = []
    names = set()
    for position, raw in enumerate(document["test_cases"], start=1):
        name = raw.get("test_case") if isinstance(raw, dict) else None
        label = f"test case {name!r}" if name else f"test case #{position}"
        try:
            if not isinstance(raw, dict) or not isinstance(name, str) or not name.strip():
                raise ValueError("each test case needs `test_case: <name>`")
            unknown = set(raw) - CASE_KEYS
            if unknown:
                raise ValueError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                                 f"(known: {', '.join(sorted(CASE_KEYS))})")
            if name in names:
                raise ValueError("the name is used twice in this file")
            wanted = raw.get("fixtures") or []
            if not isinstance(wanted, list):
                raise ValueError("`fixtures` lists fixture names")
            missing = [f for f in wanted if f not in fixtures]
            if missing:
                raise ValueError(f"unknown fixture(s) {', '.join(map(str, missing))}")
            cases.append(TestCase(name, path, _steps(raw.get("steps")),
                                  tuple(Fixture(f, fixtures[f]) for f in wanted), repeat,
                                  concurrency))
            names.add(name)
        except ValueError as error:
            raise FormatError(f"{path}, {label}: {error}") from None
    return cases


def discover(paths: Sequence[Path]) -> List[Path]:
    """The YAML files named, and those under the folders named, in a stable order."""
    files: List[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml")))
        elif path.exists():
            files.append(path)
        else:
            raise FormatError(f"{path}: no such file or folder")
    return files


def load(paths: Iterable[Path], name_filter: Optional[str] = None) -> List[TestCase]:
    """Every test case under `paths` (optionally only those whose name contains the filter)."""
    files = discover(list(paths))
    if not files:
        raise FormatError(f"no test-case files under {', '.join(map(str, paths))}")
    cases = [case for file in files for case in load_file(file)]
    if name_filter:
        cases = [case for case in cases if name_filter in case.name]
    return cases
