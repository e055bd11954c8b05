"""`bot`: the project's command line (the `bot` entry point of pyproject.toml).

    bot start   train if needed, then run the action server and the Rasa server (web widget,
                Slack, REST), and a local Slack stand-in unless SLACK_BOT_TOKEN is set
    bot shell   the same, chatting in this terminal (rasa shell)
    bot train   only train
    bot test    the whole test suite (what `make test` and CI run)
    bot test e2e [PATH…]   end-to-end conversation tests against live servers (README)
    bot knowledge ingest|ask|verify …   the product-knowledge index (actions env)
    bot analytics export|report   per-turn exports / sentiment and hand-off report
                (redacted; from the tracker store, see docs/analytics.md)
    bot audit --advisories PATH   the pins of both lock files against OSV advisories
                (a file, a directory or osv.dev's zip export; see SECURITY.md)
    bot proxy nginx   the reverse-proxy configuration for production (README, "Production")
    bot cluster up|down|status   the production topology on this machine: Rasa replicas,
                action servers, PostgreSQL, Redis, nginx (README, "Production")
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import List, Optional, Tuple

from bot import services
from bot.e2e import command as e2e
from bot.services import (
    AUTH_TOKEN_FILE, DATA_DIR, LOGS_DIR, ROOT, Endpoints, ServiceError, SlackStandIn, log, shown,
)


def _stop(signum: int, _: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _prepare(action_port: int) -> Tuple[Path, Path]:
    """Trains if needed, indexes the knowledge base, seeds the store; returns the store and
    this run's endpoints file."""
    services.train()
    services.ingest_knowledge()
    store = DATA_DIR / "store.db"
    services.seed_store(store)
    endpoints = Endpoints(action_port, DATA_DIR / "tracker.db").write(DATA_DIR / "endpoints.yml")
    return store, endpoints


def _token_note(port: int) -> str:
    if os.environ.get("RASA_AUTH_TOKEN"):
        return "the HTTP API needs ?token=$RASA_AUTH_TOKEN (your environment's token)"
    where = AUTH_TOKEN_FILE.relative_to(ROOT)
    return (f"the HTTP API needs this run's token, in {where} (mode 0600; set RASA_AUTH_TOKEN "
            f"to choose one):\n"
            f"             curl -s \"localhost:{port}/conversations/me/tracker"
            f"?token=$(cat {where})\"")


def start(port: int, action_port: int, slack_port: int) -> int:
    """Runs the assistant until Ctrl-C: every server's output goes to its log file in
    .data/logs, and the console says what is happening and where to go."""
    slack = None if os.environ.get("SLACK_BOT_TOKEN") else SlackStandIn(slack_port, port)
    log("starting the assistant: train if needed, index the knowledge base, prepare the demo "
        "store, then start the servers" + (" (with the local Slack stand-in)" if slack else ""))
    store, endpoints = _prepare(action_port)
    token = services.auth_token()
    slack_env = slack.env() if slack else {}
    signal.signal(signal.SIGTERM, _stop)  # `kill` stops the child servers too, like Ctrl-C
    with ExitStack() as running:
        try:
            if slack:
                running.enter_context(slack.run(LOGS_DIR / "slack-standin.log"))
            running.enter_context(services.action_server(
                action_port, store, LOGS_DIR / "action-server.log", env=slack_env))
            log("starting the Rasa server (loading the model takes a minute)")
            rasa = running.enter_context(services.rasa_server(
                port, endpoints, LOGS_DIR / "rasa.log", env=slack_env, token=token))
            staff = (f"the local Slack stand-in's staff page, {slack.url}/ (no SLACK_BOT_TOKEN "
                     f"set)" if slack else "your Slack workspace (SLACK_BOT_TOKEN is set)")
            log(
                f"ready at http://localhost:{port}/webhooks/widget/chat\n"
                f"  customers: open that page and chat in the web widget\n"
                f"  staff:     hand-offs and `@csbot` chats arrive in {staff}\n"
                f"  REST:      curl -s localhost:{port}/webhooks/rest/webhook "
                f"-d '{{\"sender\": \"me\", \"message\": \"where is my order ORD-10012?\"}}'\n"
                f"  API:       {_token_note(port)}\n"
                f"  listening on {os.environ.get('CSBOT_INTERFACE', services.LOOPBACK)}; browsers "
                f"may call it from {' '.join(services.cors_origins(port))} (CSBOT_CORS_ORIGINS)\n"
                f"  logs:      {shown(LOGS_DIR)}/ (rasa.log, action-server.log, train.log, ...)\n"
                f"  Ctrl-C stops everything; `make shell` chats in the terminal instead"
            )
            code = rasa.wait()
            log(f"the Rasa server stopped (exit code {code}); see {shown(LOGS_DIR)}/rasa.log")
            return code
        except KeyboardInterrupt:
            log("stopping")
            return 0


def shell(action_port: int) -> int:
    """`rasa shell` in this terminal, with the action server running in the background; its
    REST channel listens on the loopback interface only, no HTTP API."""
    store, endpoints = _prepare(action_port)
    signal.signal(signal.SIGTERM, _stop)
    with ExitStack() as running:
        running.enter_context(services.action_server(
            action_port, store, LOGS_DIR / "action-server.log"))
        command = services.rasa("shell", "--interface", services.LOOPBACK, "--model", "models",
                                "--endpoints", str(endpoints), "--credentials", "credentials.yml")
        try:
            return subprocess.run(command, cwd=ROOT, env=services.offline_env()).returncode
        except KeyboardInterrupt:
            return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser("start", help="run the assistant (REST on --port)")
    start_parser.add_argument("--port", type=int, default=5005)
    start_parser.add_argument("--action-port", type=int, default=5055)
    start_parser.add_argument("--slack-standin-port", type=int, default=5080,
                              help="port of the local Slack stand-in (without SLACK_BOT_TOKEN)")
    shell_parser = commands.add_parser("shell", help="chat with the assistant in this terminal")
    shell_parser.add_argument("--action-port", type=int, default=5055)
    commands.add_parser("train", help="train the assistant (cached when nothing changed)")
    test_parser = commands.add_parser("test", help="run the whole test suite")
    test_parts = test_parser.add_subparsers(dest="test_part")
    e2e.add_arguments(test_parts.add_parser(
        "e2e", help="end-to-end conversation tests (tests/e2e) against live servers"))
    commands.add_parser(
        "knowledge", add_help=False,
        help="product knowledge: ingest PATH… | ask QUESTION | verify (docs/knowledge.md)")
    analytics_parser = commands.add_parser(
        "analytics", help="export turns / report sentiment and hand-offs (docs/analytics.md)")
    analytics_actions = analytics_parser.add_subparsers(dest="analytics_action", required=True)
    for action, what in (("export", "turns.csv + turns.parquet"),
                         ("report", "the export, PNG charts and report.html")):
        action_parser = analytics_actions.add_parser(action, help=f"write {what} to --out")
        action_parser.add_argument("--endpoints", help="endpoints file naming the tracker store "
                                   "(default: .data/endpoints.yml if present, else endpoints.yml)")
        action_parser.add_argument("--out", default="artifacts/analytics", help="output folder")
        action_parser.add_argument("--conversation", metavar="ID", help="only this conversation")
        action_parser.add_argument("--top", type=int, default=5,
                                   help="how many most negative conversations to show")
    audit_parser = commands.add_parser(
        "audit", help="list pinned packages affected by the advisories in PATH (SECURITY.md)")
    audit_parser.add_argument("--advisories", required=True, metavar="PATH",
                              help="OSV JSON file, directory of OSV JSON files, or osv.dev's "
                              "PyPI/all.zip")
    audit_parser.add_argument("--lock", action="append", metavar="FILE",
                              help="lock file to check (repeatable; default: "
                              "requirements/rasa.lock and requirements/actions.lock)")
    proxy_parser = commands.add_parser(
        "proxy", help="print the nginx configuration that exposes only the public channels")
    proxy_parser.add_argument("server", choices=["nginx"])
    proxy_parser.add_argument("--upstream", action="append", metavar="HOST:PORT",
                              help="a Rasa server (repeat for several; default 127.0.0.1:5005)")
    proxy_parser.add_argument("--listen", default="80", help="nginx's listen address or port")
    proxy_parser.add_argument("--server-name", default="_")
    proxy_parser.add_argument("--rest", action="store_true",
                              help="also expose the REST channel /webhooks/rest/webhook")
    cluster_parser = commands.add_parser(
        "cluster", help="N Rasa replicas + M action servers behind nginx, on PostgreSQL and "
        "Redis (README, \"Production\")")
    cluster_actions = cluster_parser.add_subparsers(dest="cluster_action", required=True)
    up_parser = cluster_actions.add_parser("up", help="start it in the background; prints "
                                           "the URL it serves on")
    up_parser.add_argument("--replicas", type=int, default=2, help="Rasa replicas")
    up_parser.add_argument("--actions", type=int, default=2, help="action servers")
    up_parser.add_argument("--port", type=int, default=5005, help="nginx's port (127.0.0.1)")
    cluster_actions.add_parser("down", help="stop it (the conversations stay in PostgreSQL)")
    cluster_actions.add_parser("status", help="is each of its processes running?")
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "knowledge":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "knowledge":  # runs in the action server's environment
            return subprocess.run(services.knowledge(*rest), cwd=ROOT,
                                  env=services.offline_env()).returncode
        if args.command == "start":
            return start(args.port, args.action_port, args.slack_standin_port)
        if args.command == "shell":
            return shell(args.action_port)
        if args.command == "train":
            services.train()
            return 0
        if args.command == "audit":
            from bot import audit

            return audit.run(Path(args.advisories),
                             [Path(p) for p in args.lock] if args.lock else audit.LOCK_FILES)
        if args.command == "proxy":
            from bot.proxy import NginxSettings, render_nginx

            print(render_nginx(NginxSettings(args.upstream or ["127.0.0.1:5005"], args.listen,
                                             args.server_name, args.rest)), end="")
            return 0
        if args.command == "cluster":
            from bot import cluster

            if args.cluster_action == "up":
                return cluster.up(args.replicas, args.actions, args.port)
            return cluster.down() if args.cluster_action == "down" else cluster.status()
        if args.command == "analytics":
            from bot import analytics

            return analytics.run(args.analytics_action, args.endpoints, args.out,
                                 args.conversation, args.top)
        if args.test_part == "e2e":
            return e2e.main(e2e.options_from(args))
        from bot.testing import run_all

        return run_all()
    except ServiceError as error:
        log(f"error: {error}")
        return 1
