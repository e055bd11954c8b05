"""Runs test cases against a live Rasa server: REST channel in, HTTP API tracker out.

Each run of a test case talks under its own fresh sender id, so cases are independent and
run concurrently (bounded by `concurrency`): a hundred cases take about as long as the
slowest few. Before its first message a case with fixtures hands them, as JSON on stdin, to
the fixtures command (e.g. one that seeds a store for the action server); the runner itself
knows nothing of any project.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shlex
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import aiohttp

from bot.e2e.checks import Turn, check
from bot.e2e.format import USER, Step, TestCase


class ServerError(RuntimeError):
    """The Rasa server did not answer as the HTTP API promises."""


@dataclass
class Failure:
    step: Optional[Step]  # None: the case could not start (fixtures, server)
    expected: str
    got: str


@dataclass
class CaseRun:
    """One run of one test case."""

    case: TestCase
    run: int
    sender: str
    transcript: List[Tuple[str, str]] = field(default_factory=list)
    failure: Optional[Failure] = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.failure is None


class RasaClient:
    """The REST channel and the tracker endpoint of one Rasa server (token optional)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: Optional[str],
                 timeout: float) -> None:
        self.session, self.url, self.token = session, url.rstrip("/"), token
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    def _params(self, **extra: str) -> Dict[str, str]:
        return {**({"token": self.token} if self.token else {}), **extra}

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.session.request(method, self.url + path, timeout=self.timeout,
                                        **kwargs) as response:
            body = await response.text()
            if response.status != 200:
                raise ServerError(f"{method} {path} answered {response.status}: {body[:300]}")
            return json.loads(body)

    async def say(self, sender: str, text: str) -> List[Dict[str, Any]]:
        return await self._json("POST", "/webhooks/rest/webhook",
                                json={"sender": sender, "message": text})

    async def tracker(self, sender: str) -> Dict[str, Any]:
        return await self._json("GET", f"/conversations/{sender}/tracker",
                                params=self._params(include_events="ALL"))

    async def responses(self) -> Dict[str, List[Dict[str, Any]]]:
        """The domain's responses (for `utter` steps), from the server's own domain."""
        domain = await self._json("GET", "/domain", params=self._params(),
                                  headers={"Accept": "application/json"})
        return domain.get("responses") or {}


def sender_id(case: TestCase, run: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", case.name.lower()).strip("-")[:40]
    return f"e2e-{slug}-{run}-{uuid.uuid4().hex[:8]}"


async def apply_fixtures(command: Optional[str], case: TestCase, sender: str) -> Optional[str]:
    """Runs the fixtures command for a case that has fixtures; an error text, or None."""
    if not case.fixtures:
        return None
    if not command:
        return "the test case has fixtures but no --fixtures-command was given"
    payload = {"test_case": case.name, "sender_id": sender,
               "fixtures": [{"name": f.name, "data": f.data} for f in case.fixtures]}
    process = await asyncio.create_subprocess_exec(
        *shlex.split(command), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate(json.dumps(payload).encode())
    if process.returncode != 0:
        return f"exit code {process.returncode}: {output.decode(errors='replace')[-800:]}"
    return None


async def run_case(client: RasaClient, case: TestCase, run: int,
                   responses: Dict[str, List[Dict[str, Any]]],
                   fixtures_command: Optional[str]) -> CaseRun:
    """Plays the steps in order and stops at the first one that does not hold."""
    result = CaseRun(case, run, sender_id(case, run))
    started = time.monotonic()
    step: Optional[Step] = None
    try:
        error = await apply_fixtures(fixtures_command, case, result.sender)
        if error:
            result.failure = Failure(None, "the fixtures to load", error)
            return result
        seen, turn = 0, Turn("", [], {})
        for step in case.steps:
            if step.kind == USER:
                result.transcript.append(("user", step.value))
                await client.say(result.sender, step.value)
                tracker = await client.tracker(result.sender)
                events = tracker.get("events") or []
                turn = Turn(step.value, events[seen:], tracker.get("slots") or {})
                seen = len(events)
                result.transcript.extend(("bot", m.get("text") or json.dumps(m.get("data")))
                                         for m in turn.bot_messages)
                continue
            failed = check(step, turn, responses)
            if failed:
                result.failure = Failure(step, *failed)
                return result
    except (ServerError, aiohttp.ClientError, asyncio.TimeoutError) as error:
        result.failure = Failure(step, "an answer from the Rasa server",
                                 f"{type(error).__name__}: {error}")
    finally:
        result.seconds = time.monotonic() - started
    return result


async def run_all(url: str, cases: Sequence[TestCase], token: Optional[str] = None,
                  concurrency: int = 8, repeat: int = 1, fixtures_command: Optional[str] = None,
                  timeout: float = 300.0,
                  progress: Optional[Callable[[CaseRun], None]] = None) -> List[CaseRun]:
    """Every case `repeat` times (or its file's `repeat`, if more), at most `concurrency`
    runs at once (and no more of a file's than its own `concurrency`)."""
    limit = asyncio.Semaphore(max(1, concurrency))
    per_file = {case.file: asyncio.Semaphore(case.concurrency)
                for case in cases if case.concurrency}
    async with aiohttp.ClientSession() as session:
        client = RasaClient(session, url, token, timeout)
        responses = await client.responses()

        async def bounded(case: TestCase, run: int) -> CaseRun:
            async with per_file.get(case.file) or contextlib.nullcontext():
                async with limit:
                    result = await run_case(client, case, run, responses, fixtures_command)
            if progress:
                progress(result)
            return result

        runs = [(case, run) for case in cases for run in range(1, max(repeat, case.repeat) + 1)]
        # Capped files first: their one-at-a-time chain is the long pole, so it starts at
        # once and the other files fill the remaining slots around it.
        runs.sort(key=lambda item: item[0].concurrency is None)
        return list(await asyncio.gather(*(bounded(case, run) for case, run in runs)))
