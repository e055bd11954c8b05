"""`bot proxy nginx`: the reverse-proxy configuration for production, from
deploy/nginx/csbot.conf.template.

Rasa serves its channels and its HTTP API on one port, and the API must not face the
internet; nginx in front exposes only the public channels (the widget, its socket.io
connection, Slack's events, optionally REST) and closes every other path. It takes one or
more Rasa servers: HTTP requests go to the least busy one (``least_conn``), skipping one that
is down; socket.io clients stick to one by address (``hash $remote_addr``), because a
socket.io session lives in one server's memory.

With action servers (`actions`, as `bot cluster up` runs them) a second server block on
`actions_listen` balances Rasa's action calls over them; when none answers, it replies as an
action server would, with the domain response `utter_actions_unavailable`, so the customer
gets an apology instead of silence and the conversation goes on.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

from bot.debian import ensure_nginx
from bot.services import ServiceError, wait_for_port

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "csbot.conf.template"
#: How long nginx skips a server that failed a request before trying it again.
FAIL_TIMEOUT = "5s"
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
_ACTIONS = """
upstream csbot_actions {
    least_conn;
%(servers)s
}

# Rasa's action_endpoint points here; only Rasa (on this machine or network) calls it.
server {
    listen %(listen)s;
    server_tokens off;
    client_max_body_size 16m;  # a tracker with a long conversation
    proxy_http_version 1.1;
    proxy_next_upstream error timeout;
    proxy_read_timeout %(read_timeout)s;

    location = /webhook {
        proxy_pass http://csbot_actions;
        proxy_intercept_errors on;
        error_page 502 503 504 = @unavailable;
    }

    location = /health {
        proxy_pass http://csbot_actions;
    }

    location / {
        return 404;
    }

    # No action server answered: what an action server answers, with a domain response.
    location @unavailable {
        default_type application/json;
        return 200 '{"events": [], "responses": [{"response": "utter_actions_unavailable"}]}';
    }
}
"""
_REST = """
    # The REST channel (POST {"sender", "message"}): for your own back end.
    location = /webhooks/rest/webhook {
        proxy_pass http://csbot_rasa;
    }
"""


@dataclass
class NginxSettings:
    """What the template needs: where Rasa runs and where nginx listens."""

    upstreams: List[str] = field(default_factory=lambda: ["127.0.0.1:5005"])
    listen: str = "80"
    server_name: str = "_"
    rest: bool = False
    max_body: str = "256k"
    read_timeout: str = "180s"
    actions: List[str] = field(default_factory=list)
    actions_listen: str = "127.0.0.1:5055"

    def __post_init__(self) -> None:
        if not self.upstreams:
            raise ValueError("at least one upstream Rasa server (HOST:PORT) is needed")
        for upstream in [*self.upstreams, *self.actions]:
            if not _ADDRESS.match(upstream):
                raise ValueError(f"upstream {upstream!r} is not HOST:PORT")
        for name in ("listen", "server_name", "max_body", "read_timeout", "actions_listen"):
            if not re.fullmatch(r"[A-Za-z0-9.\-_:\[\]* ]+", getattr(self, name)):
                raise ValueError(f"{name} {getattr(self, name)!r} has characters nginx "
                                 f"would read as syntax")


#: nginx's main configuration for a private instance in folder `work` (the cluster's, the
#: tests'): in the foreground, one process, its pid, logs and temporary files in `work`, the
#: rendered csbot.conf included.
MAIN_CONFIG = """daemon off;
master_process off;
worker_rlimit_nofile 16384;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{
    worker_connections 8192;
}}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    include {work}/csbot.conf;
}}
"""


def render_nginx(settings: NginxSettings) -> str:
    """The template with the settings filled in."""
    actions = _ACTIONS % {
        "servers": "\n".join(f"    server {a} max_fails=1 fail_timeout={FAIL_TIMEOUT};"
                             for a in settings.actions),
        "listen": settings.actions_listen, "read_timeout": settings.read_timeout,
    }
    values = {
        "balance": "least_conn;" if len(settings.upstreams) > 1 else "",
        "servers": "\n".join(f"    server {u} max_fails=1 fail_timeout={FAIL_TIMEOUT};"
                             for u in settings.upstreams),
        "fail_timeout": FAIL_TIMEOUT, "read_timeout": settings.read_timeout,
        "listen": settings.listen, "server_name": settings.server_name,
        "max_body": settings.max_body, "rest": _REST if settings.rest else "",
        "actions": actions if settings.actions else "",
    }
    text = TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def start_nginx(work: Path, settings: NginxSettings, port: int,
                detached: bool = False) -> subprocess.Popen:
    """Debian's nginx with `settings`, as a private instance in `work` (its own prefix, pid,
    logs), listening on `port` once this returns; `detached`: it outlives this command."""
    binary = ensure_nginx()
    work.mkdir(parents=True, exist_ok=True)
    (work / "csbot.conf").write_text(render_nginx(settings))
    (work / "nginx.conf").write_text(MAIN_CONFIG.format(work=work))
    command = [str(binary), "-p", str(work), "-c", str(work / "nginx.conf"),
               "-e", str(work / "error.log")]
    with open(work / "nginx.out", "a") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=detached)
    try:
        wait_for_port(port, process, "nginx", 30)
    except ServiceError as error:
        process.kill()
        raise ServiceError(f"{error}: {(work / 'nginx.out').read_text()}"
                           f"{(work / 'error.log').read_text()}") from error
    return process
