"""`bot proxy nginx`: the reverse-proxy configuration for production, from
deploy/nginx/csbot.conf.template.

Rasa serves its channels and its HTTP API on one port, and the API must not face the
internet; nginx in front exposes only the public channels (the widget, its socket.io
connection, Slack's events, optionally REST) and closes every other path. The upstream
block takes one or more Rasa servers; with several, clients stick to one by address
(``ip_hash``), because a socket.io session lives in one server's memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "csbot.conf.template"
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
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

    def __post_init__(self) -> None:
        if not self.upstreams:
            raise ValueError("at least one upstream Rasa server (HOST:PORT) is needed")
        for upstream in self.upstreams:
            if not _ADDRESS.match(upstream):
                raise ValueError(f"upstream {upstream!r} is not HOST:PORT")
        for name in ("listen", "server_name", "max_body"):
            if not re.fullmatch(r"[A-Za-z0-9.\-_:\[\]* ]+", getattr(self, name)):
                raise ValueError(f"{name} {getattr(self, name)!r} has characters nginx "
                                 f"would read as syntax")


def render_nginx(settings: NginxSettings) -> str:
    """The template with the settings filled in."""
    values = {
        "balance": "ip_hash;" if len(settings.upstreams) > 1 else "",
        "servers": "\n".join(f"    server {u};" for u in settings.upstreams),
        "listen": settings.listen, "server_name": settings.server_name,
        "max_body": settings.max_body, "rest": _REST if settings.rest else "",
    }
    text = TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text
