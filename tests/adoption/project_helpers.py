"""Helpers for the own-project tests: the project's files and running Rasa inside it.

Kept out of ``conftest.py`` so test modules can import them by name.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.services import offline_env

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "voltmart"


@dataclass
class Project:
    root: Path

    @property
    def model(self) -> Path:
        return self.root / "models" / "voltmart.tar.gz"


def rasa_in(project: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`rasa …` run inside `project`, as its developer would run it."""
    return subprocess.run([sys.executable, "-m", "rasa", *args], cwd=project,
                          env=offline_env(), capture_output=True, text=True, timeout=timeout)


def output_of(result: subprocess.CompletedProcess) -> str:
    return f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
