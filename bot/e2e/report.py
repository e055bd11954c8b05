"""What a run tells people and CI systems: failure reports, JUnit XML, the summary line.

With `--repeat K` every case ran K times; a case passes only if all K runs passed, and the
summary adds pass^k as τ-bench reports it (the share of cases that passed every one of the
K runs) next to the share of single runs that passed (pass^1).
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from bot.e2e.runner import CaseRun


@dataclass
class Summary:
    passed: int
    failed: int
    #: runs per case (K > 1 only) → (cases, cases passing all K runs, runs, runs passed)
    repeated: Dict[int, Tuple[int, int, int, int]]

    def line(self) -> str:
        text = f"{self.passed} passed, {self.failed} failed"
        for k, (cases, all_k, runs, runs_passed) in sorted(self.repeated.items()):
            text += (f"; {cases} cases run {k} times: pass^{k} = {all_k / cases:.2f}, "
                     f"pass^1 = {runs_passed / runs:.2f}")
        return text


def by_case(results: Sequence[CaseRun]) -> Dict[str, List[CaseRun]]:
    grouped: Dict[str, List[CaseRun]] = {}
    for result in results:
        grouped.setdefault(result.case.id, []).append(result)
    return grouped


def summarise(results: Sequence[CaseRun]) -> Summary:
    """A case passes only if every one of its runs passed."""
    grouped = by_case(results)
    passed = sum(all(r.passed for r in runs) for runs in grouped.values())
    repeated: Dict[int, Tuple[int, int, int, int]] = {}
    for runs in grouped.values():
        if len(runs) > 1:
            cases, all_k, total, ok = repeated.get(len(runs), (0, 0, 0, 0))
            repeated[len(runs)] = (cases + 1, all_k + all(r.passed for r in runs),
                                   total + len(runs), ok + sum(r.passed for r in runs))
    return Summary(passed, len(grouped) - passed, repeated)


def failure_text(result: CaseRun) -> str:
    """Test case, step (index and YAML), expected, got, and the transcript up to there."""
    failure = result.failure
    assert failure is not None
    where = (f"step {failure.step.index}:\n{textwrap.indent(failure.step.yaml(), '    ')}"
             if failure.step else "before the first step")
    lines = [f"FAILED {result.case.file}: test case {result.case.name!r}"
             + (f" (run {result.run})" if result.run > 1 else ""),
             f"  at {where}",
             f"  expected: {failure.expected}",
             f"  got:      {failure.got}",
             f"  conversation {result.sender}:"]
    lines += [f"    {who:>4}: {text}" for who, text in result.transcript] or ["    (nothing sent)"]
    return "\n".join(lines)


def write_junit(results: Sequence[CaseRun], path: Path) -> Path:
    """One <testcase> per test case (classname = file), failing if any of its runs failed."""
    grouped = by_case(results)
    failed = sum(not all(r.passed for r in runs) for runs in grouped.values())
    root = ElementTree.Element("testsuites")
    suite = ElementTree.SubElement(root, "testsuite", name="e2e", tests=str(len(grouped)),
                                failures=str(failed), errors="0", skipped="0",
                                time=f"{sum(r.seconds for r in results):.2f}")
    for runs in grouped.values():
        case = runs[0].case
        element = ElementTree.SubElement(suite, "testcase", classname=case.file.stem,
                                         name=case.name, file=str(case.file),
                                         time=f"{sum(r.seconds for r in runs):.2f}")
        bad = [r for r in runs if not r.passed]
        if bad:
            failure = bad[0].failure
            ElementTree.SubElement(
                element, "failure",
                message=(f"step {failure.step.index}: " if failure and failure.step else "")
                + f"expected {failure.expected if failure else ''}",
            ).text = "\n\n".join(failure_text(r) for r in bad)
    path.parent.mkdir(parents=True, exist_ok=True)
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
