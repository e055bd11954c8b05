"""Another business's own Rasa 3.6 project, built from the framework the way the README says.

`voltmart/` is a small electronics shop's project (its own domain, NLU data, rules, stories,
test stories, sentiment CSV, catalogue and policy pages; no file of the demo). It is copied
into a temporary folder and trained there once per session with plain `rasa train`, with the
framework found the documented way: the repository on PYTHONPATH (`bot.services.offline_env`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from project_helpers import TEMPLATE, Project, output_of, rasa_in  # noqa: E402


@pytest.fixture(scope="session")
def voltmart(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("own-project") / "voltmart"
    shutil.copytree(TEMPLATE, root)
    trained = rasa_in(root, "train", "--fixed-model-name", "voltmart")
    assert trained.returncode == 0, output_of(trained)
    return Project(root)
