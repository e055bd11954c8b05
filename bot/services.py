"""Starting the assistant's processes: training, the action server and the Rasa server.

The action server runs in the other Python environment (rasa-sdk + langchain need pydantic 2,
Rasa 3.6 needs pydantic 1), so it is always a subprocess started with that env's interpreter;
nothing here imports from `actions/`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager, Dict, Iterator, List, Optional

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / ".data"
MODELS_DIR = ROOT / "models"


class ServiceError(RuntimeError):
    """A process could not be started or did not become healthy; the message says why."""


def log(message: str) -> None:
    print(f"\033[1m[bot]\033[0m {message}", flush=True)


def offline_env(**extra: str) -> Dict[str, str]:
    """Environment for child processes: no model hub downloads, project on the path."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               RASA_TELEMETRY_ENABLED="false", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def actions_python() -> str:
    """The actions env's interpreter, as set up by scripts/setup.sh."""
    home = Path(os.environ.get("CSBOT_HOME", Path.home() / ".cache" / "csbot"))
    python = os.environ.get("CSBOT_ACTIONS_PYTHON") or str(home / "envs/actions/bin/python")
    if not Path(python).exists():
        raise ServiceError(
            f"the action server's Python environment is missing ({python}); "
            f"run `make setup` (scripts/setup.sh) first."
        )
    return python


def rasa(*args: str) -> List[str]:
    return [sys.executable, "-m", "rasa", *args]


def run(command: List[str], what: str, env: Optional[Dict[str, str]] = None) -> None:
    """Runs a step in the foreground, streaming its output; a failure stops with its name."""
    log(what)
    if subprocess.run(command, cwd=ROOT, env=env or offline_env()).returncode != 0:
        raise ServiceError(f"{what} failed (command: {' '.join(command)})")


def sentiment_settings() -> Optional[Dict[str, str]]:
    """The SentimentAnalyzer's options in config.yml when it uses the LoRA analyser."""
    pipeline = (yaml.safe_load((ROOT / "config.yml").read_text()) or {}).get("pipeline") or []
    for component in pipeline:
        if str(component.get("name", "")).endswith("SentimentAnalyzer"):
            if component.get("analyser") == "lora":
                return {
                    "model_path": component.get("model_path", "models/sentiment"),
                    "training_data": component.get("training_data", "data/sentiment/train.csv"),
                }
    return None


def train_sentiment() -> None:
    """Trains the LoRA sentiment analyser that config.yml asks for, when its data changed.

    It is trained from a labelled CSV rather than from Rasa's NLU data, so Rasa's own
    fingerprinting cannot see it; a stamp with the hash of the CSV and of the training code
    plays that role.
    """
    settings = sentiment_settings()
    if settings is None:
        return
    data, model = ROOT / settings["training_data"], ROOT / settings["model_path"]
    digest = hashlib.sha256()
    for source in (data, ROOT / "nlu" / "lora.py", ROOT / "nlu" / "sentiment_analysers.py"):
        digest.update(source.read_bytes())
    stamp = model / ".source-sha256"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        log(f"sentiment analyser up to date ({model.relative_to(ROOT)})")
        return
    log(f"training the LoRA sentiment analyser on {data.relative_to(ROOT)}")
    from nlu.sentiment_analysers import train_lora

    shutil.rmtree(model, ignore_errors=True)
    train_lora(data, model)
    stamp.write_text(digest.hexdigest())


def train() -> None:
    """`rasa train`; Rasa itself skips the parts whose data and config did not change."""
    train_sentiment()
    run(
        rasa("train", "--domain", "domain.yml", "--config", "config.yml", "--data", "data",
             "--out", str(MODELS_DIR)),
        "training the assistant (rasa train; cached when nothing changed)",
    )


def knowledge(*args: str) -> List[str]:
    """`python -m knowledge …` in the actions env (the package lives on that side)."""
    return [actions_python(), "-m", "knowledge", *args]


def ingest_knowledge() -> None:
    """Builds or updates the product-knowledge index (only changed files are re-embedded)."""
    run(knowledge("ingest", "--no-progress"),
        "indexing the knowledge base (data/knowledge; incremental)")


def seed_store(database: Path, reset: bool = False) -> None:
    """Creates the demo customers/orders database the business actions work on."""
    command = [actions_python(), "-m", "actions.seed", "--db", str(database)]
    run(command + (["--reset"] if reset else []), f"preparing the demo store {database}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, name: str, timeout: float) -> None:
    """Polls `url` until it answers 200; fails early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{name} exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise ServiceError(f"{name} did not answer {url} within {timeout:.0f} s")


@dataclass
class Endpoints:
    """Where the Rasa server finds the action server, the tracker store and the turn log."""

    action_port: int
    tracker_db: Path
    turn_log: Optional[Path] = None
    source: Path = ROOT / "endpoints.yml"

    def write(self, path: Path) -> Path:
        """Copies `source` with this run's action server URL and files (an SQL tracker
        store is pointed at `tracker_db`; others are kept as they are)."""
        config = yaml.safe_load(self.source.read_text()) if self.source.exists() else {}
        config = config or {}
        config.setdefault("action_endpoint", {})["url"] = (
            f"http://localhost:{self.action_port}/webhook")
        if (config.get("tracker_store") or {}).get("type") == "SQL":
            config["tracker_store"]["db"] = str(self.tracker_db)
        if self.turn_log is not None and config.get("event_broker"):
            config["event_broker"]["path"] = str(self.turn_log)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path


@contextmanager
def _service(
    name: str, command: List[str], env: Dict[str, str], health_url: str, log_file: Path,
    timeout: float, cwd: Path = ROOT,
) -> Iterator[subprocess.Popen]:
    """Runs a server process in `cwd` until the block ends, once `health_url` answers."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a") as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
        try:
            wait_until_healthy(health_url, process, name, timeout)
            log(f"{name} up at {health_url.rsplit('/', 1)[0]} (log: {log_file})")
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def rasa_server(
    port: int, endpoints: Path, log_file: Path, model: Path = MODELS_DIR,
    env: Optional[Dict[str, str]] = None, project: Path = ROOT,
) -> ContextManager[subprocess.Popen]:
    """`rasa run --enable-api` (the channels of `project`'s credentials.yml and the HTTP API)."""
    command = rasa("run", "--enable-api", "--cors", "*", "--port", str(port), "--model",
                   str(model), "--endpoints", str(endpoints), "--credentials", "credentials.yml")
    return _service("Rasa server", command, offline_env(**(env or {})),
                    f"http://localhost:{port}/status", log_file, 300, cwd=project)


def action_server(
    port: int, store: Optional[Path], log_file: Path, env: Optional[Dict[str, str]] = None,
    project: Path = ROOT,
) -> ContextManager[subprocess.Popen]:
    """`python -m rasa_sdk --actions actions` in the actions env, run in `project` (whose
    `actions` package wins over this repository's), on the demo `store` if one is given."""
    command = [actions_python(), "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)]
    store_env = {"CSBOT_STORE_DB": str(store)} if store else {}
    return _service("action server", command, offline_env(**store_env, **(env or {})),
                    f"http://localhost:{port}/health", log_file, 120, cwd=project)


@dataclass
class SlackStandIn:
    """The local Slack stand-in (bot/slack_standin.py) and the settings that point both
    servers at it, as real Slack tokens in the environment would point them at Slack."""

    port: int
    rasa_port: int
    bot_token: str = "xoxb-standin"
    signing_secret: str = "standin-signing-secret"
    staff_channel: str = "C0STAFF"

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def env(self) -> Dict[str, str]:
        return {"SLACK_BOT_TOKEN": self.bot_token, "SLACK_SIGNING_SECRET": self.signing_secret,
                "SLACK_API_URL": f"{self.url}/api/", "SLACK_STAFF_CHANNEL": self.staff_channel}

    def run(self, log_file: Path) -> ContextManager[subprocess.Popen]:
        command = [sys.executable, "-m", "bot.slack_standin", "--port", str(self.port),
                   "--bot-token", self.bot_token, "--signing-secret", self.signing_secret,
                   "--events-url", f"http://localhost:{self.rasa_port}/webhooks/slack/events"]
        return _service("Slack stand-in", command, offline_env(),
                        f"{self.url}/_standin/messages", log_file, 60)
