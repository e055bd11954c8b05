"""Fixtures of the knowledge tests: real data, real encoder, real FAISS, temporary indexes.

The real knowledge base (data/knowledge) is ingested once per session into a temporary
folder with its own key file; nothing touches the repository's .data/knowledge-index or
its key. The bundled MiniLM encoder is loaded once per process (knowledge.embeddings).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for path in (ROOT, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from knowledge.config import KnowledgeConfig  # noqa: E402
from knowledge.ingest import Ingestor, IngestReport  # noqa: E402
from knowledge.retrieve import Retriever  # noqa: E402

DATA = ROOT / "data" / "knowledge"


def make_config(tmp: Path, **sections: Dict[str, Any]) -> KnowledgeConfig:
    """Settings with the index and its key under ``tmp``; ``sections`` override the rest."""
    overrides: Dict[str, Any] = {
        # One torch thread: the 2-core test machines are shared with other jobs, where two
        # threads per process oversubscribe the cores (see knowledge.yml, torch_threads).
        "torch_threads": 1,
        "index": {"path": str(tmp / "index"), "key_file": str(tmp / "index.key")},
        "generation": {"backend": "extractive"},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return KnowledgeConfig.load(overrides=overrides, environ={})


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's knowledge settings, index or key from the environment."""
    for name in ("CSBOT_KNOWLEDGE_CONFIG", "CSBOT_KNOWLEDGE_INDEX", "CSBOT_KNOWLEDGE_BACKEND",
                 "CSBOT_KNOWLEDGE_KEY", "CSBOT_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)


class RealIndex:
    """The real knowledge base, ingested once: its settings, report and retriever."""

    def __init__(self, config: KnowledgeConfig, report: IngestReport) -> None:
        self.config = config
        self.report = report
        self.path = config.index_path
        self._retriever: Optional[Retriever] = None

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            self._retriever = Retriever.from_config(self.config)
        return self._retriever

    def key(self) -> str:
        return self.config.key_file.read_text(encoding="utf-8").strip()


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> RealIndex:
    tmp = tmp_path_factory.mktemp("real-kb")
    config = make_config(tmp)
    report = Ingestor(config, progress=False).run([DATA])
    return RealIndex(config, report)


@pytest.fixture
def index_copy(real_index: RealIndex, tmp_path: Path) -> Path:
    """A copy of the real index folder, free to tamper with."""
    target = tmp_path / "index"
    shutil.copytree(real_index.path, target)
    return target


class FakeGenerator:
    """A generation backend that returns fixed replies and records its prompts."""

    name = "fake"

    def __init__(self, reply: str = "", error: Optional[BaseException] = None) -> None:
        self.reply = reply
        self.error = error
        self.prompts: List[List[Dict[str, str]]] = []

    def generate(self, messages, *, max_new_tokens=None, timeout_s=None):
        from knowledge.generate import Generation

        self.prompts.append(list(messages))
        if self.error is not None:
            raise self.error
        return Generation(text=self.reply, backend=self.name, seconds=0.01)


@pytest.fixture
def fake_generator() -> Iterator[FakeGenerator]:
    yield FakeGenerator()
