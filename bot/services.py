"""Starting the assistant's processes: training, the action server and the Rasa server.

The action server runs in the other Python environment (rasa-sdk + langchain need pydantic 2,
Rasa 3.6 needs pydantic 1), so it is always a subprocess started with that env's interpreter;
nothing here imports from `actions/`.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager, Dict, Iterator, List, Optional

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / ".data"
LOGS_DIR = DATA_DIR / "logs"
MODELS_DIR = ROOT / "models"
AUTH_TOKEN_FILE = DATA_DIR / "auth-token"
#: Where Rasa listens unless CSBOT_INTERFACE says otherwise: this machine only.
LOOPBACK = "127.0.0.1"


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
    """Rasa's command line; `run` and `shell` get RASA_AUTH_TOKEN (bot/rasa_main.py)."""
    return [sys.executable, "-m", "bot.rasa_main", *args]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def auth_token(path: Path = AUTH_TOKEN_FILE) -> str:
    """The HTTP API token: RASA_AUTH_TOKEN, or a new random one for this run, written to
    `path` (mode 0600) so the operator's own tools can read it."""
    token = os.environ.get("RASA_AUTH_TOKEN")
    if token:
        return token
    token = new_token()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a file someone else made readable is not reused
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    return token


def cors_origins(port: int) -> List[str]:
    """Origins whose pages may call the server (and open the widget's socket) from a
    browser: CSBOT_CORS_ORIGINS (space- or comma-separated), else the server's own."""
    configured = os.environ.get("CSBOT_CORS_ORIGINS", "").replace(",", " ").split()
    return configured or [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]


def serving_args(port: int, origins: Optional[List[str]] = None) -> List[str]:
    """`rasa run` settings of every server the project starts: the HTTP API behind the token
    (RASA_AUTH_TOKEN, added by bot/rasa_main.py), this machine's loopback interface unless
    CSBOT_INTERFACE names another, CORS for the configured origins only."""
    return ["--enable-api", "--interface", os.environ.get("CSBOT_INTERFACE", LOOPBACK),
            "--port", str(port), "--cors", *(origins or cors_origins(port))]


def run(
    command: List[str], what: str, env: Optional[Dict[str, str]] = None,
    log_file: Optional[Path] = None,
) -> None:
    """Runs a step in the foreground; a failure stops with its name.

    With `log_file` the step's output (progress bars, TensorFlow's and the encoder's load
    reports) goes there and the console gets one line; a failure prints the log's tail.
    """
    log(what if log_file is None else f"{what}; log: {shown(log_file)}")
    if log_file is None:
        code = subprocess.run(command, cwd=ROOT, env=env or offline_env()).returncode
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a") as output:
            code = subprocess.run(command, cwd=ROOT, env=env or offline_env(), stdout=output,
                                  stderr=subprocess.STDOUT).returncode
    if code != 0:
        if log_file is not None:
            # the log's last 40 lines, each as the terminal showed it (progress bars redraw
            # their line with carriage returns)
            lines = log_file.read_text(errors="replace").split("\n")[-40:]
            print("\n".join(line.rsplit("\r", 1)[-1] for line in lines))
        raise ServiceError(f"{what} failed (command: {' '.join(command)})")


def check_yaml() -> None:
    """Fails with the file, line and column of a YAML syntax error in the domain, the config
    or the training data, before anything reads them.

    Rasa names the file for the domain and the data, but not for config.yml: its schema check
    parses the text without the file name ("Failed to read YAML ... line 5, column 1").
    """
    from rasa.shared.exceptions import YamlException
    from rasa.shared.utils.io import read_yaml_file

    data = sorted((ROOT / "data").rglob("*.yml"))
    for path in [ROOT / "domain.yml", ROOT / "config.yml", *data]:
        try:
            read_yaml_file(path)
        except YamlException as error:
            raise ServiceError(str(error)) from error


def shown(path: Path) -> str:
    """A path as the reader would type it: relative to the repository when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def train() -> None:
    """`rasa train` (every model, the sentiment analyser too); Rasa itself skips the parts
    whose data and config did not change."""
    check_yaml()
    run(
        rasa("train", "--domain", "domain.yml", "--config", "config.yml", "--data", "data",
             "--out", str(MODELS_DIR)),
        "training the assistant with `rasa train` (seconds when nothing changed, several "
        "minutes the first time)", log_file=LOGS_DIR / "train.log",
    )


def knowledge(*args: str) -> List[str]:
    """`python -m knowledge …` in the actions env (the package lives on that side)."""
    return [actions_python(), "-m", "knowledge", *args]


def ingest_knowledge() -> None:
    """Builds or updates the product-knowledge index (only changed files are re-embedded)."""
    run(knowledge("ingest", "--no-progress"),
        "indexing the knowledge base (data/knowledge; incremental)",
        log_file=LOGS_DIR / "knowledge.log")


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
    raise ServiceError(f"{name} did not answer {url.split('?')[0]} within {timeout:.0f} s")


def wait_for_port(port: int, process: Optional[subprocess.Popen], name: str,
                  timeout: float) -> None:
    """Waits until something accepts connections on 127.0.0.1:`port` (a server that speaks
    no HTTP: nginx before its upstreams, PostgreSQL, Redis); fails early if it died."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise ServiceError(f"{name} exited with code {process.returncode} while starting")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError as error:
            if time.monotonic() > deadline:
                raise ServiceError(f"{name} did not listen on port {port} within "
                                   f"{timeout:.0f} s") from error
            time.sleep(0.2)


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


@dataclass
class Service:
    """A server process: how to start it and the URL that answers 200 once it is ready."""

    name: str
    command: List[str]
    env: Dict[str, str]
    health_url: str
    log_file: Path
    timeout: float
    cwd: Path = ROOT

    def spawn(self, detached: bool = False) -> subprocess.Popen:
        """Starts the process, its output going to `log_file`; `detached`: in its own
        session, so it outlives this command (`bot cluster up`) and Ctrl-C here."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "a") as output:
            return subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=output,
                                    stderr=subprocess.STDOUT, start_new_session=detached)

    def wait_healthy(self, process: subprocess.Popen) -> None:
        try:
            wait_until_healthy(self.health_url, process, self.name, self.timeout)
        except ServiceError as error:
            raise ServiceError(f"{error}; its log: {shown(self.log_file)}") from error
        log(f"{self.name} up at {self.health_url.rsplit('/', 1)[0]} "
            f"(log: {shown(self.log_file)})")

    @contextmanager
    def running(self) -> Iterator[subprocess.Popen]:
        """Runs the server until the block ends, once `health_url` answers."""
        process = self.spawn()
        try:
            self.wait_healthy(process)
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def rasa_service(
    port: int, endpoints: Path, log_file: Path, model: Path = MODELS_DIR,
    env: Optional[Dict[str, str]] = None, token: Optional[str] = None,
    origins: Optional[List[str]] = None, credentials: Optional[Path] = None,
    project: Path = ROOT,
) -> Service:
    """`rasa run` in `project` with the channels of `credentials` (default: the project's
    credentials.yml) and the HTTP API behind `token` (without one, a random token nobody
    knows: the API stays closed), on the loopback interface, CORS for `origins` (default:
    see `cors_origins`)."""
    token = token or new_token()
    credentials = credentials or project / "credentials.yml"
    command = rasa("run", *serving_args(port, origins), "--model", str(model),
                   "--endpoints", str(endpoints), "--credentials", str(credentials))
    return Service("Rasa server", command,
                   offline_env(**{**(env or {}), "RASA_AUTH_TOKEN": token}),
                   f"http://localhost:{port}/status?token={token}", log_file, 300, cwd=project)


def action_service(
    port: int, store: Optional[Path], log_file: Path, env: Optional[Dict[str, str]] = None,
    project: Path = ROOT,
) -> Service:
    """`python -m rasa_sdk --actions actions` in the actions env, run in `project` (whose
    `actions` package wins over this repository's), on the demo `store` if one is given; it
    listens on the loopback interface unless SANIC_HOST (rasa-sdk's setting) names another,
    because anyone who reaches it can run any action on a tracker of their making."""
    command = [actions_python(), "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)]
    store_env = {"CSBOT_STORE_DB": str(store)} if store else {}
    return Service("action server", command,
                   offline_env(**store_env, SANIC_HOST=os.environ.get("SANIC_HOST", LOOPBACK),
                               **(env or {})),
                   f"http://localhost:{port}/health", log_file, 120, cwd=project)


def rasa_server(port: int, endpoints: Path, log_file: Path,
                **options: Any) -> ContextManager[subprocess.Popen]:
    """The Rasa server of `rasa_service` (same options), until the block ends."""
    return rasa_service(port, endpoints, log_file, **options).running()


def action_server(port: int, store: Optional[Path], log_file: Path,
                  **options: Any) -> ContextManager[subprocess.Popen]:
    """The action server of `action_service` (same options), until the block ends."""
    return action_service(port, store, log_file, **options).running()


@dataclass
class SlackStandIn:
    """The local Slack stand-in (tools/slack_standin.py, a development tool) and the settings
    that point both servers at it, as real Slack tokens in the environment would point them
    at Slack. Its tokens and signing secret are random for each run."""

    port: int
    rasa_port: int
    bot_token: str = field(default_factory=lambda: "xoxb-" + new_token())
    signing_secret: str = field(default_factory=new_token)
    app_token: str = field(default_factory=lambda: "xapp-" + new_token())
    staff_channel: str = "C0STAFF"

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def env(self) -> Dict[str, str]:
        return {"SLACK_BOT_TOKEN": self.bot_token, "SLACK_SIGNING_SECRET": self.signing_secret,
                "SLACK_API_URL": f"{self.url}/api/", "SLACK_STAFF_CHANNEL": self.staff_channel}

    def run(self, log_file: Path) -> ContextManager[subprocess.Popen]:
        """Runs it until the block ends."""
        return self.service(log_file).running()

    def service(self, log_file: Path) -> Service:
        """The stand-in's process; the secrets travel in its environment, never on its
        command line."""
        command = [sys.executable, "-m", "tools.slack_standin", "--port", str(self.port),
                   "--events-url", f"http://localhost:{self.rasa_port}/webhooks/slack/events"]
        return Service("Slack stand-in", command,
                       offline_env(**self.env(), SLACK_APP_TOKEN=self.app_token),
                       f"{self.url}/_standin/messages", log_file, 60)
