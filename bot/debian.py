"""Binaries from Debian's packages (nginx, chromium, PostgreSQL, Redis), installed with apt-get
when missing, so the tests and `bot cluster up` run on a fresh machine as they do here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bot.services import ServiceError, log


def ensure_debian_binary(package: str, binary: Path, override: str) -> Path:
    """`binary` from Debian's `package` (or the one $`override` names), installed with
    apt-get when missing."""
    path = Path(os.environ.get(override) or binary)
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    if not path.exists() and not os.environ.get(override):
        log(f"installing Debian's {package} ({' '.join(install)})")
        if subprocess.run(install).returncode != 0:  # stale package lists on a fresh machine
            subprocess.run(["apt-get", "update"])
            subprocess.run(install)
    if not path.exists():
        raise ServiceError(f"no {package} at {path}: run `{' '.join(install)}` as root, "
                           f"or point {override} at a {package} binary")
    return path


def ensure_nginx() -> Path:
    """Debian's nginx (or $NGINX): the reverse proxy and the cluster's load balancer."""
    return ensure_debian_binary("nginx", Path("/usr/sbin/nginx"), "NGINX")
