"""The whole test suite behind `make test`: lint and types (ruff, mypy), data validation,
both pytest suites, the routing test stories through the trained model, the end-to-end
conversations (tests/e2e) through live servers and the real action server, the web widget
in headless Chromium, the tests against a live Rasa server (REST channel, SQLite
tracker store), and the cluster's (replicas on PostgreSQL and Redis behind nginx).

Each part runs even if an earlier one failed, so one run shows every problem; the last line
is the total, `N passed, N failed`, and the exit code is non-zero on any failure.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import yaml

from bot.debian import ensure_debian_binary
from bot.e2e import command as e2e
from bot.services import (
    ROOT, Endpoints, ServiceError, action_server, actions_python, cors_origins, free_port, log,
    ingest_knowledge, new_token, offline_env, rasa, rasa_server, seed_store, train,
)

ARTIFACTS = ROOT / "artifacts"
# Which interpreter runs which tests: the process boundary is the folder boundary.
# tests/adoption: another business's own Rasa project trained and served from this framework
RASA_SIDE = ["tests/nlu", "tests/bot", "tests/policies", "tests/adoption"]
ACTIONS_SIDE = ["tests/actions", "tests/knowledge"]
# Need the trained model: run after the stories, which train it.
SERVER = ["tests/server"]
STORIES = "tests/stories"
# The production topology (bot/cluster.py): replicas, PostgreSQL, Redis, nginx; faults.
CLUSTER = ["tests/cluster"]
# End-to-end conversations (bot/e2e): real action server, freshly seeded store.
E2E = "tests/e2e"
# The web widget in a real browser: node's test runner + playwright-core (bot/web).
BROWSER = "tests/browser"
# What mypy checks on each side of the process boundary (the folder boundary): each side
# against its own environment's packages and Python version. ruff checks everything at once.
# (tests/ folders are pytest's rootdir-style modules, several named conftest: not checked)
RASA_TYPED = ["bot", "nlu", "policies", "tools", "benchmarks/nlu_benchmark.py",
              "benchmarks/train_nlu.py", "benchmarks/sentiment_eval", "benchmarks/load.py",
              "benchmarks/profile_turn.py"]
ACTIONS_TYPED = ["actions", "knowledge", "benchmarks/faiss_scale.py",
                 "benchmarks/gpu_generation.py", "benchmarks/rag_eval",
                 "benchmarks/injection_eval", "benchmarks/report.py"]


@dataclass
class Tally:
    """Passed/failed counts per part, for the closing summary."""

    parts: List[tuple] = field(default_factory=list)

    def add(self, name: str, passed: int, failed: int, skipped: int = 0) -> None:
        self.parts.append((name, passed, failed, skipped))

    def report(self) -> int:
        print("\n" + "=" * 60)
        for name, passed, failed, skipped in self.parts:
            extra = f", {skipped} skipped" if skipped else ""
            print(f"  {name:<28} {passed} passed, {failed} failed{extra}")
        passed = sum(p[1] for p in self.parts)
        failed = sum(p[2] for p in self.parts)
        skipped = sum(p[3] for p in self.parts)
        print("=" * 60)
        print(f"total: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
        return 1 if failed or skipped else 0


def pytest_part(tally: Tally, name: str, python: str, paths: List[str]) -> None:
    """Runs pytest on the existing `paths` with `python`, counting from its JUnit XML."""
    paths = [p for p in paths if (ROOT / p).exists()]
    if not paths:
        return
    report = ARTIFACTS / f"pytest-{name}.xml"
    log(f"pytest ({name}): {' '.join(paths)}")
    code = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *paths],
        cwd=ROOT, env=offline_env(),
    ).returncode
    if not report.exists():
        tally.add(f"pytest {name}", 0, 1)
        return
    root = ElementTree.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    if code not in (0, 5) and not failed:  # pytest itself failed (e.g. a bad option)
        failed = 1
    tally.add(f"pytest {name}", total - failed - skipped, failed, skipped)


def lint_part(tally: Tally) -> None:
    """ruff and mypy, configured in pyproject.toml, must report nothing; both tools live in
    the actions env, and mypy reads the Rasa side's imports from the Rasa env."""
    tools = Path(actions_python()).parent
    cache = ["--cache-dir", str(ARTIFACTS / "mypy-cache")]
    checks = [
        ("ruff", [str(tools / "ruff"), "check", "--no-cache", "."]),
        ("mypy (Rasa side)", [str(tools / "mypy"), *cache, "--python-executable", sys.executable,
                              "--python-version", "3.10", *RASA_TYPED]),
        ("mypy (actions side)", [str(tools / "mypy"), *cache, "--python-version", "3.11",
                                 *ACTIONS_TYPED]),
    ]
    for name, command in checks:
        log(name)
        code = subprocess.run(command, cwd=ROOT, env=offline_env()).returncode
        tally.add(name, int(code == 0), int(code != 0))


def validate_part(tally: Tally) -> None:
    """`rasa data validate` must report no problem at all (warnings fail too)."""
    log("rasa data validate --fail-on-warnings")
    code = subprocess.run(
        rasa("data", "validate", "--fail-on-warnings", "--domain", "domain.yml",
             "--data", "data", "--config", "config.yml"),
        cwd=ROOT, env=offline_env(),
    ).returncode
    tally.add("rasa data validate", int(code == 0), int(code != 0))


def count_stories(path: Path) -> int:
    """Number of stories in the YAML files under `path` (test stories or failed ones)."""
    files = [path] if path.is_file() else sorted(path.rglob("*.yml"))
    return sum(len((yaml.safe_load(f.read_text()) or {}).get("stories") or []) for f in files)


def stories_part(tally: Tally) -> None:
    """The routing test stories: user text → our NLU → policies → predicted actions.

    Rasa's story runner predicts the actions but never runs them (the stories' slot events
    are applied, not compared); what the actions do is e2e_part's job."""
    out = ARTIFACTS / "stories"
    shutil.rmtree(out, ignore_errors=True)
    total = count_stories(ROOT / STORIES)
    try:
        train()
        ingest_knowledge()
        with tempfile.TemporaryDirectory(prefix="csbot-test-") as tmp:
            store = Path(tmp) / "store.db"
            seed_store(store, reset=True)  # every run starts from the documented demo data
            port = free_port()
            endpoints = Endpoints(port, Path(tmp) / "tracker.db").write(Path(tmp) / "endpoints.yml")
            with action_server(port, store, ARTIFACTS / "action-server.log"):
                log(f"rasa test core: {total} test stories in {STORIES}")
                code = subprocess.run(
                    # --e2e: the user text goes through our NLU pipeline and the predicted
                    # intents and entities are checked too (without it Rasa would use the
                    # story's intent labels and never exercise the classifier).
                    rasa("test", "core", "--e2e", "--stories", STORIES, "--model", "models",
                         "--endpoints", str(endpoints), "--out", str(out)),
                    cwd=ROOT, env=offline_env(),
                ).returncode
    except ServiceError as error:
        log(f"conversation tests could not run: {error}")
        tally.add("conversation test stories", 0, max(total, 1))
        return
    failed_file = out / "failed_test_stories.yml"
    failed = count_stories(failed_file) if failed_file.exists() else total
    if code != 0 and failed == 0:
        failed = total
    if failed:
        log(f"{failed} test stories failed; Rasa's report: {failed_file}")
    tally.add("conversation test stories", total - failed, failed)


def e2e_part(tally: Tally) -> None:
    """The e2e test cases against live servers (`bot test e2e`), counted per test case."""
    options = e2e.Options([str(ROOT / E2E)], junit=ARTIFACTS / "e2e" / "junit.xml",
                          logs=ARTIFACTS / "e2e")
    summary = e2e.run(options)
    if summary is None:
        tally.add("e2e conversations", 0, 1)
        return
    tally.add("e2e conversations", summary.passed, summary.failed)


def ensure_chromium() -> Path:
    """Debian's chromium (or $CHROMIUM) for the browser tests."""
    return ensure_debian_binary("chromium", Path("/usr/bin/chromium"), "CHROMIUM")


def browser_part(tally: Tally) -> None:
    """The web widget in headless Chromium against a live assistant, counted from TAP."""
    try:
        chromium = ensure_chromium()
        ingest_knowledge()
        with tempfile.TemporaryDirectory(prefix="csbot-browser-") as tmp:
            store = Path(tmp) / "store.db"
            seed_store(store, reset=True)
            action_port, rasa_port, shop_port = free_port(), free_port(), free_port()
            endpoints = Endpoints(action_port, Path(tmp) / "tracker.db")
            endpoints_file = endpoints.write(Path(tmp) / "endpoints.yml")
            logs = ARTIFACTS / "browser"
            token = new_token()
            # the "other origin" shop page of the embed test is an origin configured for CORS
            origins = [*cors_origins(rasa_port), f"http://127.0.0.1:{shop_port}"]
            with action_server(action_port, store, logs / "action-server.log"), \
                    rasa_server(rasa_port, endpoints_file, logs / "rasa.log", token=token,
                                origins=origins):
                log(f"browser tests ({BROWSER}) in headless Chromium; screenshots in {logs}")
                result = subprocess.run(
                    ["node", "--test", "--test-reporter=tap", BROWSER], cwd=ROOT,
                    stdout=subprocess.PIPE, text=True,
                    env=offline_env(
                        CHROMIUM=str(chromium), RASA_AUTH_TOKEN=token,
                        SHOP_PORT=str(shop_port),
                        WIDGET_URL=f"http://localhost:{rasa_port}/webhooks/widget/chat"),
                )
    except (ServiceError, OSError) as error:
        log(f"browser tests could not run: {error}")
        tally.add("browser (web widget)", 0, 1)
        return
    print(result.stdout, flush=True)
    counts = {key: int(n) for key, n in re.findall(r"^# (\w+) (\d+)$", result.stdout, re.M)}
    failed = counts.get("fail", 0) + counts.get("cancelled", 0)
    if result.returncode != 0 and not failed:
        failed = 1
    tally.add("browser (web widget)", counts.get("pass", 0), failed,
              counts.get("skipped", 0) + counts.get("todo", 0))


def run_all() -> int:
    """Every part of the suite, then the summary; returns the exit code."""
    ARTIFACTS.mkdir(exist_ok=True)
    tally = Tally()
    try:
        lint_part(tally)
    except ServiceError as error:  # no actions env: the tools are missing
        log(str(error))
        tally.add("lint and types", 0, 1)
    validate_part(tally)
    pytest_part(tally, "rasa-side", sys.executable, RASA_SIDE)
    try:
        pytest_part(tally, "actions-side", actions_python(), ACTIONS_SIDE)
    except ServiceError as error:
        log(str(error))
        tally.add("pytest actions-side", 0, 1)
    stories_part(tally)
    e2e_part(tally)
    browser_part(tally)
    pytest_part(tally, "live-server", sys.executable, SERVER)
    pytest_part(tally, "cluster", sys.executable, CLUSTER)
    return tally.report()
