"""`bot cluster up|down|status`: the production topology on one machine.

N `rasa run` replicas share a PostgreSQL tracker store (bot/tracker_store.py) and a Redis
lock store (bot/lock_store.py); M stateless action servers; one nginx in front, rendered by
the same reverse proxy as production (bot/proxy.py): the public channels on one port,
HTTP to the least busy replica, socket.io sticky by address, and Rasa's action calls
balanced over the action servers with an apology when none answers. The widget's
socket.io servers share Redis (bot/web_widget.py), so a bot message reaches the customer
whichever replica sends it.

Every setting reaches Rasa the way the README's "Production" section tells users to set it:
deploy/endpoints.production.yml with the environment variables of `ClusterSecrets.env`.
PostgreSQL 15, Redis and nginx come from Debian's packages (installed when missing) and run
as private instances under `.data/cluster/` (data, logs, state), on 127.0.0.1 only, with
random passwords kept in files of mode 0600.

From Python (the tests, the load benchmark)::

    with running_cluster(replicas=2, actions=2) as cluster:
        cluster.url            # nginx, e.g. http://127.0.0.1:5005
        cluster.replicas[0]    # a replica: port, process (kill it, restart it)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from bot import services
from bot.debian import ensure_debian_binary
from bot.proxy import NginxSettings, start_nginx
from bot.services import (
    DATA_DIR, LOOPBACK, MODELS_DIR, ROOT, Endpoints, Service, ServiceError, SlackStandIn,
    free_port, log, shown,
)

CLUSTER_DIR = DATA_DIR / "cluster"
PRODUCTION_ENDPOINTS = ROOT / "deploy" / "endpoints.production.yml"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
DB_NAME, DB_USER = "csbot", "csbot"
#: Rasa's listen backlog (SANIC_BACKLOG, Rasa's setting; 100 by default): the connections
#: nginx opens while a replica's event loop runs a graph wait there. With 100, a burst of
#: 1,000 customers overflowed it and nginx got connection resets (502s, messages lost).
BACKLOG = "4096"


def _secret(path: Path) -> str:
    """The random secret in `path` (mode 0600), made on first use and kept, like the data
    it protects."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(services.new_token() + "\n")
    return path.read_text().strip()


def _as_postgres(*command: str) -> List[str]:
    """PostgreSQL's server tools refuse to run as root: they run as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@dataclass
class Postgres:
    """A private PostgreSQL 15 instance: data in `folder/data`, 127.0.0.1:`port` only,
    password authentication (scram-sha-256) for the `csbot` user."""

    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def password(self) -> str:
        return _secret(self.folder.parent / "postgres-password")

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        options = f"-p {self.port} -c listen_addresses={LOOPBACK} -k {self.folder}"
        command = _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                               "-l", str(self.folder / "postgres.log"), "-o", options, *args)
        code = subprocess.run(command, stdout=subprocess.DEVNULL).returncode
        if check and code != 0:
            raise ServiceError(f"pg_ctl {args[0]} failed; its log: "
                               f"{shown(self.folder / 'postgres.log')}")

    def start(self) -> None:
        ensure_debian_binary("postgresql-15", PG_BIN / "initdb", "CSBOT_INITDB")
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        self._pg_ctl("start")
        self._create_database()
        log(f"PostgreSQL up at {LOOPBACK}:{self.port} (data: {shown(self.data)})")

    def _initdb(self) -> None:
        # the password reaches initdb in a file only the postgres user can read, removed after
        password_file = self.folder / ".initdb-password"
        password_file.write_text(self.password + "\n")
        os.chmod(password_file, 0o600)
        if os.geteuid() == 0:
            shutil.chown(password_file, "postgres", "postgres")
        try:
            code = subprocess.run(_as_postgres(
                str(PG_BIN / "initdb"), "-D", str(self.data), "-U", DB_USER,
                "--auth=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8"),
                stdout=subprocess.DEVNULL).returncode
        finally:
            password_file.unlink()
        if code != 0:
            raise ServiceError(f"initdb failed for {shown(self.data)}")

    def _create_database(self) -> None:
        env = dict(os.environ, PGPASSWORD=self.password)
        exists = subprocess.run(
            [str(PG_BIN / "psql"), "-h", LOOPBACK, "-p", str(self.port), "-U", DB_USER, "-d",
             "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"],
            env=env, capture_output=True, text=True)
        if exists.stdout.strip() != "1":
            subprocess.run([str(PG_BIN / "createdb"), "-h", LOOPBACK, "-p", str(self.port),
                            "-U", DB_USER, DB_NAME], env=env, check=True)

    def restart(self) -> None:
        """A fast restart: the server closes every client connection."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "fast", check=False)


@dataclass
class Redis:
    """A private Redis: 127.0.0.1:`port`, a random `requirepass`, nothing saved to disk
    (it holds only locks and socket.io messages in flight)."""

    folder: Path
    port: int
    process: Optional[subprocess.Popen] = None

    @property
    def password(self) -> str:
        return _secret(self.folder.parent / "redis-password")

    def start(self, detached: bool = False) -> subprocess.Popen:
        binary = ensure_debian_binary("redis-server", Path("/usr/bin/redis-server"),
                                      "CSBOT_REDIS_SERVER")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "redis.conf"  # the password stays off the command line
        config.write_text(f"bind {LOOPBACK}\nport {self.port}\nrequirepass {self.password}\n"
                          f"save \"\"\nappendonly no\ndir {self.folder}\n"
                          f"logfile {self.folder / 'redis.log'}\n")
        os.chmod(config, 0o600)
        self.process = subprocess.Popen([str(binary), str(config)], start_new_session=detached)
        services.wait_for_port(self.port, self.process, "Redis", 30)
        log(f"Redis up at {LOOPBACK}:{self.port}")
        return self.process


def _descendants(pid: int) -> List[int]:
    """The processes below `pid` (Linux's /proc), children first."""
    try:
        children = [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                    for child in (task / "children").read_text().split()]
    except FileNotFoundError:  # it has just exited
        return []
    return children + [d for child in children for d in _descendants(child)]


@dataclass
class Replica:
    """One `rasa run` of the cluster, restartable on its port."""

    port: int
    service: Service
    process: subprocess.Popen

    def kill(self) -> None:
        """Kills it as a crash would: the process and its children at once (rasa-sdk serves
        from a Sanic worker process, which would go on serving without its manager)."""
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()

    def restart(self) -> None:
        """Stops it (if it still runs) and starts it again on the same port."""
        if self.process.poll() is None:
            services.stop(self.process)
        self.process = self.service.spawn()
        self.service.wait_healthy(self.process)


@dataclass
class Cluster:
    """A running cluster: where it serves, its parts, and how to reach Rasa's API."""

    url: str
    folder: Path
    token: str
    postgres: Postgres
    redis: Redis
    replicas: List[Replica]
    actions: List[Replica]
    nginx: subprocess.Popen
    others: List[subprocess.Popen] = field(default_factory=list)
    slack: Optional[SlackStandIn] = None  # when the cluster runs the local Slack stand-in

    def processes(self) -> Dict[str, subprocess.Popen]:
        named = {f"rasa-{i}": r.process for i, r in enumerate(self.replicas)}
        named.update({f"actions-{i}": a.process for i, a in enumerate(self.actions)})
        named.update({"nginx": self.nginx, **{f"other-{i}": p for i, p in enumerate(self.others)}})
        if self.redis.process is not None:
            named["redis"] = self.redis.process
        return named

    def write_state(self) -> None:
        state = {"url": self.url, "postgres": {"folder": str(self.postgres.folder),
                                               "port": self.postgres.port},
                 "pids": {name: p.pid for name, p in self.processes().items()},
                 "replicas": [r.port for r in self.replicas],
                 "actions": [a.port for a in self.actions]}
        (self.folder / "state.json").write_text(json.dumps(state, indent=2) + "\n")

    def stop(self) -> None:
        for process in self.processes().values():
            if process.poll() is None:
                services.stop(process)
        self.postgres.stop()
        (self.folder / "state.json").unlink(missing_ok=True)


def secrets_env(postgres: Postgres, redis: Redis) -> Dict[str, str]:
    """The environment variables of deploy/endpoints.production.yml (README, "Production")."""
    redis_url = f"redis://:{redis.password}@{LOOPBACK}:{redis.port}/2"
    return {"DB_HOST": LOOPBACK, "DB_PORT": str(postgres.port), "DB_NAME": DB_NAME,
            "DB_USER": DB_USER, "DB_PASSWORD": postgres.password,
            "REDIS_HOST": LOOPBACK, "REDIS_PORT": str(redis.port),
            "REDIS_PASSWORD": redis.password, "CSBOT_SOCKETIO_REDIS_URL": redis_url}


def start_cluster(replicas: int = 2, actions: int = 2, port: int = 5005,
                  folder: Path = CLUSTER_DIR, model: Path = MODELS_DIR,
                  detached: bool = False, slack: bool = True,
                  env: Optional[Dict[str, str]] = None) -> Cluster:
    """Starts every part and returns once all answer; on a failure what started is stopped.

    `detached`: the processes outlive this command (`bot cluster up`; `bot cluster down`
    stops them). `env`: more environment for the replicas and the action servers (e.g.
    TICKET_LOCK_LIFETIME, CSBOT_KNOWLEDGE_BACKEND)."""
    if replicas < 1 or actions < 1:
        raise ServiceError("a cluster needs at least one replica and one action server")
    if (folder / "state.json").exists():
        raise ServiceError(f"a cluster already runs from {shown(folder)} "
                           f"(`bot cluster down` stops it)")
    folder.mkdir(parents=True, exist_ok=True)
    logs = folder / "logs"
    postgres = Postgres(folder / "postgres", free_port())
    redis = Redis(folder / "redis", free_port())
    started: List[subprocess.Popen] = []
    try:
        postgres.start()
        started.append(redis.start(detached))
        store = folder / "store.db"
        services.seed_store(store)
        token = services.auth_token(folder / "auth-token")
        standin = SlackStandIn(free_port(), port) if slack and not os.environ.get(
            "SLACK_BOT_TOKEN") else None
        slack_env = standin.env() if standin else {}
        standin_part = standin.service(logs / "slack-standin.log") if standin else None
        others = [standin_part.spawn(detached)] if standin_part else []
        started += others
        action_ports = [free_port() for _ in range(actions)]
        server_env = {**slack_env, **(env or {})}
        action_parts = [services.action_service(p, store, logs / f"actions-{i}.log", env=server_env)
                        for i, p in enumerate(action_ports)]
        actions_port = free_port()
        replica_env = {"SANIC_BACKLOG": BACKLOG, **server_env, **secrets_env(postgres, redis)}
        rasa_ports = [free_port() for _ in range(replicas)]
        rasa_parts = []
        for i, rasa_port in enumerate(rasa_ports):
            endpoints = Endpoints(actions_port, folder / "unused.db", logs / f"turns-{i}.jsonl",
                                  source=PRODUCTION_ENDPOINTS).write(folder / f"endpoints-{i}.yml")
            rasa_parts.append(services.rasa_service(
                rasa_port, endpoints, logs / f"rasa-{i}.log", model=model, env=replica_env,
                token=token, origins=services.cors_origins(port)))
        log(f"starting {actions} action server(s) and {replicas} Rasa replica(s) (loading the "
            f"model takes a minute or two)")
        action_processes = [part.spawn(detached) for part in action_parts]
        rasa_processes = [part.spawn(detached) for part in rasa_parts]
        started += action_processes + rasa_processes
        for part, process in zip(action_parts + rasa_parts, action_processes + rasa_processes):
            part.wait_healthy(process)
        nginx = start_nginx(folder / "nginx", NginxSettings(
            [f"{LOOPBACK}:{p}" for p in rasa_ports], f"{LOOPBACK}:{port}", rest=True,
            actions=[f"{LOOPBACK}:{p}" for p in action_ports],
            actions_listen=f"{LOOPBACK}:{actions_port}"), port, detached)
        started.append(nginx)
        if standin_part:
            standin_part.wait_healthy(others[0])
    except BaseException:
        for process in started:
            if process.poll() is None:
                services.stop(process)
        postgres.stop()
        raise
    cluster = Cluster(
        f"http://{LOOPBACK}:{port}", folder, token, postgres, redis,
        [Replica(p, s, pr) for p, s, pr in zip(rasa_ports, rasa_parts, rasa_processes)],
        [Replica(p, s, pr) for p, s, pr in zip(action_ports, action_parts, action_processes)],
        nginx, others, standin)
    cluster.write_state()
    return cluster


@contextmanager
def running_cluster(replicas: int = 2, actions: int = 2, port: Optional[int] = None,
                    folder: Path = CLUSTER_DIR, model: Path = MODELS_DIR, slack: bool = True,
                    env: Optional[Dict[str, str]] = None) -> Iterator[Cluster]:
    """`start_cluster` (on a free port unless `port` is given) until the block ends."""
    cluster = start_cluster(replicas, actions, port or free_port(), folder, model,
                            slack=slack, env=env)
    try:
        yield cluster
    finally:
        cluster.stop()


def up(replicas: int, actions: int, port: int) -> int:
    """`bot cluster up`: trains if needed, indexes the knowledge base, starts the cluster in
    the background and prints where it serves."""
    services.train()
    services.ingest_knowledge()
    cluster = start_cluster(replicas, actions, port, detached=True)
    where = shown(cluster.folder)
    log(f"ready at {cluster.url}/webhooks/widget/chat\n"
        f"  customers: open that page and chat in the web widget (nginx, port {port})\n"
        f"  REST:      curl -s {cluster.url}/webhooks/rest/webhook "
        f"-d '{{\"sender\": \"me\", \"message\": \"where is my order ORD-10012?\"}}'\n"
        f"  replicas:  {', '.join(str(r.port) for r in cluster.replicas)} (Rasa's HTTP API: "
        f"on each replica's port, not through nginx, with the token in {where}/auth-token:\n"
        f"             curl -s \"localhost:{cluster.replicas[0].port}/conversations/me/tracker"
        f"?token=$(cat {where}/auth-token)\")\n"
        f"  actions:   {', '.join(str(a.port) for a in cluster.actions)}; PostgreSQL on "
        f"{cluster.postgres.port}, Redis on {cluster.redis.port}\n"
        f"  logs:      {where}/logs/; state: {where}/state.json\n"
        f"  `bot cluster down` stops it")
    print(cluster.url, flush=True)
    return 0


def _read_state(folder: Path) -> Optional[dict]:
    path = folder / "state.json"
    return json.loads(path.read_text()) if path.exists() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def down(folder: Path = CLUSTER_DIR) -> int:
    """`bot cluster down`: stops every process `up` started (SIGTERM, then SIGKILL after
    15 s) and PostgreSQL; the data stays for the next `up`."""
    state = _read_state(folder)
    if state is None:
        log(f"no cluster runs from {shown(folder)}")
        return 0
    pids = [pid for pid in state["pids"].values() if _alive(pid)]
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    Postgres(Path(state["postgres"]["folder"]), state["postgres"]["port"]).stop()
    (folder / "state.json").unlink()
    log(f"cluster at {state['url']} stopped")
    return 0


def status(folder: Path = CLUSTER_DIR) -> int:
    """`bot cluster status`: each process of the running cluster, up or gone."""
    state = _read_state(folder)
    if state is None:
        log(f"no cluster runs from {shown(folder)}")
        return 1
    log(f"cluster at {state['url']}")
    gone = [name for name, pid in state["pids"].items() if not _alive(pid)]
    for name, pid in state["pids"].items():
        print(f"  {name:<12} pid {pid:<8} {'gone' if name in gone else 'running'}")
    return 1 if gone else 0
