"""The HTTP API's token and the server settings every command uses (the live checks are in
tests/server/test_http_api_locked.py)."""

import os
import stat

from bot.rasa_main import with_token
from bot.services import auth_token, cors_origins, serving_args


def test_a_random_token_per_run_is_written_for_the_owner_only(tmp_path, monkeypatch):
    monkeypatch.delenv("RASA_AUTH_TOKEN", raising=False)
    path = tmp_path / ".data" / "auth-token"
    first = auth_token(path)
    assert len(first) >= 40 and path.read_text().strip() == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.chmod(0o644)  # someone opened it up: the next run replaces the file
    second = auth_token(path)
    assert second != first and path.read_text().strip() == second
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_environment_token_wins_and_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setenv("RASA_AUTH_TOKEN", "from-the-operator")
    assert auth_token(tmp_path / "auth-token") == "from-the-operator"
    assert not (tmp_path / "auth-token").exists()


def test_cors_allows_the_configured_origins_or_the_servers_own(monkeypatch):
    monkeypatch.delenv("CSBOT_CORS_ORIGINS", raising=False)
    assert cors_origins(5005) == ["http://localhost:5005", "http://127.0.0.1:5005"]
    monkeypatch.setenv("CSBOT_CORS_ORIGINS", "https://shop.example, https://chat.example")
    assert cors_origins(5005) == ["https://shop.example", "https://chat.example"]
    assert "*" not in serving_args(5005)


def test_the_server_listens_on_loopback_with_the_api_behind_the_token(monkeypatch):
    monkeypatch.delenv("CSBOT_INTERFACE", raising=False)
    args = serving_args(5005, ["http://localhost:5005"])
    assert args[args.index("--interface") + 1] == "127.0.0.1"
    assert "--enable-api" in args
    assert with_token(["rasa", "run", *args], "t0k")[:3] == ["rasa", "run", "--auth-token=t0k"]
    assert with_token(["rasa", "train"], "t0k") == ["rasa", "train"]  # trains serve nothing
    assert with_token(["rasa", "run"], "") == ["rasa", "run"]
    assert with_token(["rasa", "run", "--auth-token=mine"], "t0k") == [
        "rasa", "run", "--auth-token=mine"]


def test_a_token_that_starts_with_a_dash_reaches_rasa_as_the_token():
    """secrets.token_urlsafe starts one token in 64 with "-": Rasa's own parser must read it
    as the token, not refuse to start ("argument -t/--auth-token: expected one argument")."""
    from rasa.__main__ import create_argument_parser

    argv = with_token(["rasa", "run", "--enable-api"], "-Ab3_x")
    assert create_argument_parser().parse_args(argv[1:]).auth_token == "-Ab3_x"
