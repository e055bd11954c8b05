"""`bot audit`: the pins of both lock files against an advisory source in OSV format.

This machine cannot reach a vulnerability service, so the advisories come from the command
line: ``bot audit --advisories PATH`` where PATH is

* one OSV record (``{"id": ..., "affected": [...]}``), a JSON list of records, or an OSV
  query answer (``{"vulns": [...]}``) in a ``.json`` file;
* a directory of such files (searched recursively), e.g. osv.dev's export unpacked;
* osv.dev's export itself, ``PyPI/all.zip`` from
  https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip (one record per file).

Only ``PyPI`` entries are read. A pin is affected when its version is listed in an entry's
``versions`` or lies in one of its ``ECOSYSTEM`` ranges (introduced ≤ v < fixed, or
v ≤ last_affected), as the OSV schema defines them. The exit code is 1 when any pin is
affected, 2 when the source cannot be read, else 0.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence

from packaging.version import InvalidVersion, Version, parse

from bot.services import ROOT

LOCK_FILES = (ROOT / "requirements" / "rasa.lock", ROOT / "requirements" / "actions.lock")
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


class AuditError(ValueError):
    """The lock files or the advisory source cannot be read; the message says which."""


def canonical(name: str) -> str:
    """PEP 503 name: ``PyJWT`` and ``pyjwt``, ``slack_bolt`` and ``slack-bolt`` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    lock: str
    package: str
    version: str


@dataclass(frozen=True)
class Finding:
    pin: Pin
    advisory: str
    fixed_in: str


def read_pins(lock_files: Iterable[Path]) -> List[Pin]:
    """Every ``name==version`` line of the lock files (comments and options skipped)."""
    pins = []
    for lock in lock_files:
        try:
            lines = Path(lock).read_text().splitlines()
        except OSError as error:
            raise AuditError(f"cannot read lock file {lock}: {error.strerror}") from error
        for line in lines:
            match = _PIN.match(line)
            if match:
                pins.append(Pin(Path(lock).name, match.group(1), match.group(2)))
    return pins


def _records(document: Any, where: str) -> Iterator[Dict[str, Any]]:
    if isinstance(document, list):
        for item in document:
            yield from _records(item, where)
    elif isinstance(document, dict) and isinstance(document.get("vulns"), list):
        yield from _records(document["vulns"], where)
    elif isinstance(document, dict) and "id" in document:
        yield document
    else:
        raise AuditError(f"{where} is not an OSV record, a list of them or {{\"vulns\": [...]}}")


def _load(text: bytes, where: str) -> List[Dict[str, Any]]:
    try:
        document = json.loads(text)
    except ValueError as error:  # includes bytes that are not UTF-8
        raise AuditError(f"{where} is not valid JSON: {error}") from error
    return list(_records(document, where))


def read_advisories(source: Path) -> List[Dict[str, Any]]:
    """OSV records from a JSON file, a directory of them, or an osv.dev zip export."""
    source = Path(source)
    if source.is_dir():
        files = sorted(source.rglob("*.json"))
        if not files:
            raise AuditError(f"no .json files in {source}")
        return [record for path in files for record in _load(path.read_bytes(), str(path))]
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            return [record for name in archive.namelist() if name.endswith(".json")
                    for record in _load(archive.read(name), f"{source}:{name}")]
    if not source.is_file():
        raise AuditError(f"advisory source {source} does not exist")
    return _load(source.read_bytes(), str(source))


def _version(text: str) -> Optional[Version]:
    try:
        version = parse(text)
    except InvalidVersion:
        return None
    return version if isinstance(version, Version) else None


def _range_hit(version: Version, events: Sequence[Dict[str, str]]) -> Optional[str]:
    """The fixed-in text when ``version`` lies in this ECOSYSTEM range, else None (the OSV
    schema's evaluation: events in version order, each one switching "affected" on or off)."""
    parsed = [(kind, Version("0") if value == "0" else _version(str(value)), str(value))
              for event in events for kind, value in event.items()]
    bounds = sorted(((kind, bound, text) for kind, bound, text in parsed if bound is not None),
                    key=lambda item: item[1])
    affected = False
    for kind, bound, _ in bounds:
        if kind == "introduced" and version >= bound:
            affected = True
        elif (kind in ("fixed", "limit") and version >= bound) or \
                (kind == "last_affected" and version > bound):
            affected = False
    if not affected:
        return None
    for kind, bound, text in bounds:
        if kind == "fixed" and bound > version:
            return text
        if kind == "last_affected" and bound >= version:
            return f"after {text}"
    return "no fix yet"


def affects(record: Dict[str, Any], pin: Pin) -> Optional[str]:
    """The fixed-in text when ``record`` affects ``pin``, else None."""
    version = _version(pin.version)
    for entry in record.get("affected") or []:
        package = entry.get("package") or {}
        if package.get("ecosystem") != "PyPI" or canonical(package.get("name", "")) \
                != canonical(pin.package):
            continue
        hits = {_range_hit(version, r.get("events") or []) for r in entry.get("ranges") or []
                if version is not None and r.get("type") == "ECOSYSTEM"}
        fixed = sorted(hit for hit in hits if hit)
        if fixed:
            return ", ".join(fixed)
        if pin.version in (entry.get("versions") or []):
            return "see advisory"
    return None


def audit(pins: Iterable[Pin], advisories: Iterable[Dict[str, Any]]) -> List[Finding]:
    by_package: Dict[str, List[Dict[str, Any]]] = {}
    for record in advisories:
        if record.get("withdrawn"):
            continue
        for entry in record.get("affected") or []:
            name = canonical((entry.get("package") or {}).get("name", ""))
            if record not in by_package.setdefault(name, []):
                by_package[name].append(record)
    findings = []
    for pin in pins:
        for record in by_package.get(canonical(pin.package), []):
            fixed_in = affects(record, pin)
            if fixed_in is not None:
                aliases = [a for a in record.get("aliases") or [] if a != record["id"]]
                name = record["id"] + (f" ({', '.join(aliases)})" if aliases else "")
                findings.append(Finding(pin, name, fixed_in))
    return findings


def table(findings: Sequence[Finding]) -> str:
    rows = [("lock file", "package", "pinned", "advisory", "fixed in")] + [
        (f.pin.lock, f.pin.package, f.pin.version, f.advisory, f.fixed_in) for f in findings]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def run(advisories: Path, lock_files: Sequence[Path] = LOCK_FILES) -> int:
    """Prints the affected pins; 1 when there are any, 2 when an input cannot be read."""
    try:
        pins = read_pins(lock_files)
        records = read_advisories(advisories)
    except AuditError as error:
        print(f"bot audit: {error}")
        return 2
    findings = audit(pins, records)
    print(f"{len(pins)} pins in {', '.join(Path(p).name for p in lock_files)} checked "
          f"against {len(records)} advisories from {advisories}")
    if not findings:
        print("no pinned package is affected")
        return 0
    print(table(findings))
    print(f"{len(findings)} affected pin(s); see SECURITY.md for what applies to this project")
    return 1
