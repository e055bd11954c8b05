"""`bot test e2e [PATH…]`: start (or attach to) the servers, run the cases, report.

Without `--url` it starts a real action server and `rasa run --enable-api` for the project
folder (`--project`, default this repository) on free local ports, with a throw-away tracker
store. For this repository it first does what `bot start` does (train if needed, update the
knowledge index) and gives the action server a freshly seeded demo store, the local Slack
stand-in as staff channel, and `python -m actions.fixtures` as fixtures command. Any other
Rasa 3.6 project runs as its folder holds it: its `models/`, `endpoints.yml`,
`credentials.yml` and `actions` package.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shlex
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import aiohttp

from bot import services
from bot.e2e.format import FormatError, TestCase, load
from bot.e2e.report import Summary, failure_text, summarise, write_junit
from bot.e2e.runner import CaseRun, ServerError, run_all
from bot.services import ROOT, Endpoints, ServiceError, SlackStandIn, free_port, log

DEFAULT_PATHS = ["tests/e2e"]
DEFAULT_JUNIT = "artifacts/e2e/junit.xml"


@dataclass
class Options:
    paths: Sequence[str]
    url: Optional[str] = None
    token: Optional[str] = None
    project: Path = ROOT
    concurrency: int = 8
    repeat: int = 1
    fixtures_command: Optional[str] = None
    junit: Path = ROOT / DEFAULT_JUNIT
    name_filter: Optional[str] = None
    logs: Optional[Path] = None  # server logs (default: in the temporary folder)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="test-case files or folders (default: the project's "
                        f"{' '.join(DEFAULT_PATHS)})")
    parser.add_argument("--url", help="attach to this running Rasa server (REST channel and "
                        "HTTP API enabled) instead of starting one")
    parser.add_argument("--token", help="the Rasa server's --auth-token (default: "
                        "$RASA_AUTH_TOKEN)")
    parser.add_argument("--project", type=Path, default=ROOT,
                        help="the Rasa project folder whose servers to start (default: this "
                        "repository)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="test cases in flight at once (default 8)")
    parser.add_argument("--repeat", type=int, default=1, metavar="K",
                        help="run each case K times and report pass^k (default 1)")
    parser.add_argument("--fixtures-command", help="command run before each case that has "
                        "fixtures, with them as JSON on stdin (default for this repository: "
                        "python -m actions.fixtures on the test store)")
    parser.add_argument("--junit", type=Path, default=Path(DEFAULT_JUNIT),
                        help=f"JUnit XML report (default {DEFAULT_JUNIT})")
    parser.add_argument("-k", dest="name_filter", metavar="TEXT",
                        help="only the test cases whose name contains TEXT")


def options_from(args: argparse.Namespace) -> Options:
    project = args.project.resolve()
    paths = args.paths or [str(project / p) for p in DEFAULT_PATHS]
    return Options(paths, args.url, args.token, project, args.concurrency, args.repeat,
                   args.fixtures_command, args.junit.resolve(), args.name_filter)


@contextmanager
def live_servers(project: Path, work: Path, token: str,
                 logs: Path) -> Iterator[Tuple[str, Optional[str]]]:
    """Action server + Rasa server for `project`; yields their URL and fixtures command."""
    own = project == ROOT
    rasa_port, action_port = free_port(), free_port()
    store, fixtures, env = None, None, {"RASA_AUTH_TOKEN": token}
    with ExitStack() as stack:
        if own:
            services.train()
            services.ingest_knowledge()
            store = work / "store.db"
            services.seed_store(store, reset=True)
            fixtures = f"{shlex.quote(services.actions_python())} -m actions.fixtures " \
                       f"--db {shlex.quote(str(store))}"
            slack = SlackStandIn(free_port(), rasa_port)
            stack.enter_context(slack.run(logs / "slack-standin.log"))
            env.update(slack.env())
        endpoints = Endpoints(action_port, work / "tracker.db", work / "turns.jsonl",
                              source=project / "endpoints.yml").write(work / "endpoints.yml")
        stack.enter_context(services.action_server(
            action_port, store, logs / "action-server.log", env=env, project=project))
        stack.enter_context(services.rasa_server(
            rasa_port, endpoints, logs / "rasa.log", model=project / "models", env=env,
            token=token, project=project))
        yield f"http://localhost:{rasa_port}", fixtures


def execute(options: Options, cases: List[TestCase]) -> List[CaseRun]:
    """Runs `cases` on the server at options.url, or on servers started for the project."""
    token = options.token or os.environ.get("RASA_AUTH_TOKEN")

    def run(url: str, token: Optional[str], fixtures: Optional[str]) -> List[CaseRun]:
        log(f"e2e: {len(cases)} test cases against {url} ({options.concurrency} at once)")
        return asyncio.run(run_all(url, cases, token, options.concurrency, options.repeat,
                                   options.fixtures_command or fixtures, progress=progress))

    if options.url:
        return run(options.url, token, None)
    token = token or secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="csbot-e2e-") as tmp:
        logs = options.logs or Path(tmp)
        with live_servers(options.project, Path(tmp), token, logs) as (url, fixtures):
            return run(url, token, fixtures)


def progress(result: CaseRun) -> None:
    """One line per finished run, so a long run shows it is moving."""
    run = f" (run {result.run})" if result.run > 1 else ""
    print(f"  {'ok  ' if result.passed else 'FAIL'} {result.case.id}{run} "
          f"[{result.seconds:.1f} s]", flush=True)


def report(results: List[CaseRun], junit: Path) -> Summary:
    """Prints every failure, writes the JUnit XML, prints and returns the summary."""
    for result in results:
        if not result.passed:
            print(failure_text(result) + "\n", flush=True)
    write_junit(results, junit)
    summary = summarise(results)
    log(f"e2e: {summary.line()} (JUnit XML: {junit})")
    return summary


def run(options: Options) -> Optional[Summary]:
    """Loads, runs and reports; None (after saying why) when the files or servers failed."""
    try:
        cases = load([Path(p) for p in options.paths], options.name_filter)
        if not cases:
            raise FormatError("no test case matches")
        results = execute(options, cases)
    except FormatError as error:
        log(f"e2e: {error}")
        return None
    except (ServiceError, ServerError, aiohttp.ClientError, OSError) as error:
        log(f"e2e: could not run the tests: {error}")
        return None
    return report(results, options.junit)


def main(options: Options) -> int:
    """Exit code: 0 all passed, 1 some failed, 2 the files or the servers had a problem."""
    summary = run(options)
    return 2 if summary is None else int(summary.failed > 0)
