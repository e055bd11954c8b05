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
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
from contextlib import ExitStack
from typing import List, Optional

from bot import services
from bot.e2e import command as e2e
from bot.services import DATA_DIR, ROOT, Endpoints, ServiceError, SlackStandIn, log


def _stop(signum: int, _: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _serve(rasa_args: List[str], action_port: int, slack: Optional[SlackStandIn] = None) -> int:
    """Seeds the store, starts the action server (and the Slack stand-in), then runs Rasa in
    the foreground."""
    services.train()
    services.ingest_knowledge()
    store = DATA_DIR / "store.db"
    services.seed_store(store)
    endpoints = Endpoints(action_port, DATA_DIR / "tracker.db").write(DATA_DIR / "endpoints.yml")
    slack_env = slack.env() if slack else {}
    signal.signal(signal.SIGTERM, _stop)  # `kill` stops the child servers too, like Ctrl-C
    with ExitStack() as running:
        if slack:
            running.enter_context(slack.run(DATA_DIR / "logs" / "slack-standin.log"))
        running.enter_context(services.action_server(
            action_port, store, DATA_DIR / "logs" / "action-server.log", env=slack_env))
        command = services.rasa(*rasa_args, "--model", "models", "--endpoints", str(endpoints),
                                "--credentials", "credentials.yml")
        try:
            return subprocess.run(command, cwd=ROOT,
                                  env=services.offline_env(**slack_env)).returncode
        except KeyboardInterrupt:
            return 0


def start(port: int, action_port: int, slack_port: int) -> int:
    slack = None if os.environ.get("SLACK_BOT_TOKEN") else SlackStandIn(slack_port, port)
    staff = (f"the local Slack stand-in at {slack.url}/ (no SLACK_BOT_TOKEN set)" if slack
             else "your Slack workspace (SLACK_BOT_TOKEN is set)")
    log(
        f"starting the assistant; when Rasa says the server is up:\n"
        f"  customers: open http://localhost:{port}/webhooks/widget/chat (the web widget)\n"
        f"  staff:     hand-offs and `@csbot` chats arrive in {staff}\n"
        f"  REST:      curl -s localhost:{port}/webhooks/rest/webhook "
        f"-d '{{\"sender\": \"me\", \"message\": \"where is my order ORD-10012?\"}}'\n"
        f"  (or run `make shell` instead of `make start` to chat in the terminal; Ctrl-C stops)"
    )
    return _serve(["run", "--enable-api", "--cors", "*", "--port", str(port)], action_port, slack)


def shell(action_port: int) -> int:
    return _serve(["shell"], action_port)


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
