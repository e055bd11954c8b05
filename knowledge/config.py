"""Settings of the knowledge package, read from ``knowledge.yml`` at the repository root.

Every key has a default, so a missing file or a missing section is fine. Paths
are taken relative to the repository root (not the working directory), so the
CLI, the action server and the tests agree wherever they are started.

Environment overrides (handy for deployments and tests):

``CSBOT_KNOWLEDGE_CONFIG``   another settings file instead of ``knowledge.yml``
``CSBOT_KNOWLEDGE_INDEX``    the index folder (``index.path``)
``CSBOT_KNOWLEDGE_BACKEND``  the generation backend (``generation.backend``)
``CSBOT_KNOWLEDGE_KEY``      the HMAC key of the index (see ``index_store``); the
                             variable's name itself is ``index.key_env``
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Literal, Mapping, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = REPO_ROOT / "knowledge.yml"

ENV_CONFIG = "CSBOT_KNOWLEDGE_CONFIG"
ENV_INDEX = "CSBOT_KNOWLEDGE_INDEX"
ENV_BACKEND = "CSBOT_KNOWLEDGE_BACKEND"


class ConfigError(ValueError):
    """The settings file is unreadable or holds a value that cannot work."""


class _Section(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class IngestSettings(_Section):
    """How documents become chunks."""

    chunk_size: int = Field(800, gt=50, description="characters per chunk")
    chunk_overlap: int = Field(120, ge=0, description="characters shared by neighbouring chunks")
    #: File endings that are read; everything else in a folder is ignored (and counted).
    extensions: List[str] = [".md", ".markdown", ".html", ".htm", ".pdf", ".txt", ".csv", ".json"]
    #: File names (glob patterns) that are never indexed, e.g. a folder's README that
    #: describes the content rather than being content. Hidden files are always skipped.
    exclude: List[str] = ["README*", "readme*"]
    #: CSV: the column that identifies a row (becomes ``product_id``) and the one that names it.
    csv_id_column: str = "product_id"
    csv_title_column: str = "name"
    #: JSON: which keys hold an entry's title, text and URL (``jq`` paths are not needed for
    #: the usual list of objects; anything else is indexed as the whole file's text).
    json_title_keys: List[str] = ["question", "title", "name"]
    json_text_keys: List[str] = ["answer", "text", "content", "body", "description"]
    json_url_keys: List[str] = ["url", "link"]

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "IngestSettings":
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size "
                f"({self.chunk_size})"
            )
        return self


class EmbeddingSettings(_Section):
    """The sentence encoder of the index (must be the same at ingest and at query time)."""

    #: ``bundled:all-MiniLM-L6-v2`` (the packaged model), a local folder or a cached hub id.
    model: str = "bundled:all-MiniLM-L6-v2"
    device: str = "cpu"
    batch_size: int = Field(32, gt=0)
    #: How the encoder runs on the CPU. ``onnx``: exported at load (in memory, a few seconds)
    #: and run by ONNX Runtime, the same vectors as torch (differences around 1e-7) for well
    #: under half the CPU (knowledge/onnx_encoder.py); ``torch``: sentence-transformers
    #: itself. Any other device (``cuda``) always runs torch.
    cpu_runtime: Literal["onnx", "torch"] = "onnx"


class IndexSettings(_Section):
    """Where the index lives, its FAISS type and its integrity key."""

    path: str = ".data/knowledge-index"
    #: ``flat`` (exact inner product), ``hnsw`` (graph, approximate), ``ivf`` (inverted lists),
    #: ``auto``: flat below ``auto_flat_limit`` chunks, HNSW above (see docs/knowledge.md).
    type: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    auto_flat_limit: int = Field(50_000, gt=0)
    hnsw_m: int = Field(32, gt=1)
    hnsw_ef_search: int = Field(256, gt=0)
    ivf_nprobe: int = Field(32, gt=0)
    #: The HMAC key comes from this environment variable, else from ``key_file`` (created with
    #: a random key on the first ingest). Keep the key outside the index folder.
    key_env: str = "CSBOT_KNOWLEDGE_KEY"
    key_file: str = ".data/knowledge-index.key"


class RetrievalSettings(_Section):
    """Hybrid search, the "I don't know" threshold, MMR, the product filter."""

    k: int = Field(3, gt=0)
    #: Dense (FAISS) and lexical (BM25) rankings fused by reciprocal rank; False: dense only.
    hybrid: bool = True
    #: Chunks of each ranking that enter the fusion.
    candidates: int = Field(30, gt=0)
    rrf_k: float = Field(60.0, gt=0)
    dense_weight: float = Field(1.0, ge=0.0)
    lexical_weight: float = Field(1.0, ge=0.0)
    #: A passage's confidence = cosine similarity + coverage_weight x the share of the
    #: question's idf-weighted words it contains. Below ``score_threshold`` for every
    #: passage, the assistant says it does not know (tuned on benchmarks/rag_eval's dev split).
    coverage_weight: float = Field(0.2, ge=0.0)
    score_threshold: float = Field(0.44, ge=-1.0, le=3.0)
    mmr: bool = False
    fetch_k: int = Field(20, gt=0)
    mmr_lambda: float = Field(0.5, ge=0.0, le=1.0)
    #: Restrict the search to a product's chunks when the NLU found a product entity.
    product_filter: bool = True
    #: Ranking bonus for the catalogue row of a product the question names (by entity or by
    #: its catalogue name in the text): the product page is the authoritative source.
    product_boost: float = Field(0.1, ge=0.0, le=1.0)
    #: A customer's word → the knowledge base's words for it, added to the query of both
    #: rankings ({"subscription": "membership"}): the shop's vocabulary, in knowledge.yml.
    synonyms: Dict[str, str] = {}


class TransformersSettings(_Section):
    """The in-process causal LM."""

    #: ``bundled:SmolLM2-135M-Instruct`` (the packaged GGUF, dequantised once and cached),
    #: a local Hugging Face folder or a cached hub id.
    model: str = "bundled:SmolLM2-135M-Instruct"
    #: ``auto``: the GPU with ``device_map="auto"`` when there is one, else the CPU.
    device: str = "auto"
    #: ``auto``: bfloat16 on the GPU, float32 on the CPU.
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    #: Where the dequantised bundled model is cached; default ``$CSBOT_HOME/models`` when
    #: ``CSBOT_HOME`` is set, else ``.data/models``.
    cache_dir: Optional[str] = None


class OpenAISettings(_Section):
    """An OpenAI-compatible chat-completions endpoint (vLLM, TGI, llama.cpp server …)."""

    base_url: str = "http://localhost:8000/v1"
    model: str = "default"
    #: Name of the environment variable holding the API key (the key never goes in a file).
    api_key_env: str = "CSBOT_LLM_API_KEY"
    timeout_s: float = Field(15.0, gt=0)
    max_retries: int = Field(2, ge=0)
    retry_backoff_s: float = Field(0.5, ge=0)


class GenerationSettings(_Section):
    """Which generator writes the reply, and its limits."""

    #: ``transformers`` (in-process), ``openai`` (HTTP endpoint) or ``extractive`` (no LLM:
    #: always the quoted best passage).
    backend: Literal["transformers", "openai", "extractive"] = "transformers"
    max_new_tokens: int = Field(160, gt=0)
    temperature: float = Field(0.0, ge=0.0)
    #: A reply that takes longer than this is abandoned for the extractive answer.
    timeout_s: float = Field(30.0, gt=0)
    transformers: TransformersSettings = TransformersSettings()
    openai: OpenAISettings = OpenAISettings()


class PromptSettings(_Section):
    """The prompt template and what goes into it."""

    template: str = "knowledge/prompt_template.txt"
    #: Who the assistant is, for the template's ``{persona}`` (the shop's words).
    persona: str = "the customer-service assistant"
    #: Earlier conversation turns (customer and assistant messages) included.
    history_turns: int = Field(4, ge=0)
    max_passage_chars: int = Field(900, gt=100)
    max_history_chars: int = Field(300, gt=20)


class GroundingSettings(_Section):
    """The check of a generated reply against its passages, and the extractive answer."""

    enabled: bool = True
    #: Share of a reply's content words that must occur in the passages or the question.
    min_support: float = Field(0.5, ge=0.0, le=1.0)
    #: Words that end a product name beyond those of the indexed catalogue ("Trainers"):
    #: a capitalised phrase ending in one must appear in the passages.
    product_words: List[str] = []
    extractive_max_chars: int = Field(420, gt=50)


class ComparisonRule(_Section):
    """A number in the question checked against a limit in a passage (``comparisons``)."""

    name: str
    #: Regular expression the question must match (its topic words).
    when: str
    asks: Literal["money", "days_ago"]
    #: The query that retrieves the passage stating the limit.
    search: str
    #: Regular expression over a passage sentence with a named group ``limit``.
    limit: str
    meets: Literal["above", "at_least", "below", "at_most"]
    #: Reply templates when the number meets the limit and when it does not.
    met: str
    not_met: str

    @model_validator(mode="after")
    def _valid_patterns(self) -> "ComparisonRule":
        import re

        for name in ("when", "limit"):
            try:
                compiled = re.compile(getattr(self, name))
            except re.error as exc:
                raise ValueError(f"comparison {self.name!r}: {name} is not a valid regular "
                                 f"expression ({exc})") from exc
            if name == "limit" and "limit" not in compiled.groupindex:
                raise ValueError(f"comparison {self.name!r}: limit needs a (?P<limit>...) group")
        return self


class AnswerSettings(_Section):
    """The customer-facing words of the answers (the shop's, not the framework's)."""

    #: Below the threshold, an empty question, or the model said it does not know.
    unknown: str = ("I'm sorry, I don't know that one, and I'd rather not guess. "
                    "Shall I get a colleague who can find out for you?")
    #: In-role replies to a message that asks for the instructions / tries to re-program.
    refusal_prompt_leak: str = ("I can't share how I'm set up, but I'm happy to help with "
                                "orders, returns, shipping, your account or our products. "
                                "What would you like to know?")
    refusal_injection: str = ("I can't do that. I stick to our real products and policies. "
                              "Is there anything about an order, a return or a product I can "
                              "help with?")
    #: The extractive answer: {source} title and section, {quote} the quoted text, {n} citation.
    quote: str = 'From {source}: "{quote}" [{n}]'
    #: A filled comparison: {answer} its sentence, then the quote that states the limit.
    comparison: str = '{answer} [{n}] From {source}: "{quote}"'
    #: How amounts of money are written in comparisons.
    money_format: str = "${:,.2f}"
    #: Words after a number that make it an amount of money ("42 dollars").
    currency_words: List[str] = ["dollars", "dollar", "usd", "bucks"]
    comparisons: List[ComparisonRule] = []
    #: Catalogue column → words of a question that ask for it ({"price": ["how much"]}).
    field_cues: Dict[str, List[str]] = {}


class KnowledgeConfig(_Section):
    """All settings; ``KnowledgeConfig.load()`` reads them."""

    sources: List[str] = ["data/knowledge"]
    #: CPU threads for torch (encoder and in-process LM) and for the encoder's ONNX Runtime
    #: session, set once per process when the first model loads; None keeps their default (one
    #: per core). 1 suits the small machines this demo targets, where the action server shares
    #: two cores with Rasa and other jobs: two threads per process oversubscribed them
    #: (measured 6x slower generation).
    torch_threads: Optional[int] = Field(1, gt=0)
    ingest: IngestSettings = IngestSettings()
    embeddings: EmbeddingSettings = EmbeddingSettings()
    index: IndexSettings = IndexSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    generation: GenerationSettings = GenerationSettings()
    prompt: PromptSettings = PromptSettings()
    grounding: GroundingSettings = GroundingSettings()
    answers: AnswerSettings = AnswerSettings()

    @classmethod
    def load(
        cls,
        path: Optional[os.PathLike] = None,
        overrides: Optional[Mapping[str, Any]] = None,
        environ: Optional[Mapping[str, str]] = None,
    ) -> "KnowledgeConfig":
        """Settings from ``path`` (else ``$CSBOT_KNOWLEDGE_CONFIG``, else ``knowledge.yml``).

        ``overrides`` is a nested mapping applied on top of the file, e.g.
        ``{"retrieval": {"k": 8}}``; the environment overrides come last.
        """
        env = os.environ if environ is None else environ
        file = Path(path) if path else Path(env.get(ENV_CONFIG) or DEFAULT_CONFIG_FILE)
        data: Dict[str, Any] = {}
        if file.exists():
            try:
                data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"cannot read {file}: {exc}") from exc
            if not isinstance(data, dict):
                raise ConfigError(f"{file} must hold a mapping of settings")
        elif path:
            raise ConfigError(f"settings file {file} does not exist")
        data = _merge(data, overrides or {})
        if env.get(ENV_INDEX):
            data = _merge(data, {"index": {"path": env[ENV_INDEX]}})
        if env.get(ENV_BACKEND):
            data = _merge(data, {"generation": {"backend": env[ENV_BACKEND]}})
        try:
            return cls.model_validate(data)
        except ValueError as exc:
            raise ConfigError(f"invalid knowledge settings ({file}): {exc}") from exc

    def with_overrides(self, overrides: Mapping[str, Any]) -> "KnowledgeConfig":
        """A copy with a nested mapping of changes applied (validated again)."""
        return type(self).model_validate(_merge(self.model_dump(), overrides))

    # Paths, resolved against the repository root.
    @property
    def index_path(self) -> Path:
        return resolve_path(self.index.path)

    @property
    def key_file(self) -> Path:
        return resolve_path(self.index.key_file)

    @property
    def template_path(self) -> Path:
        return resolve_path(self.prompt.template)

    @property
    def source_paths(self) -> List[Path]:
        return [resolve_path(p) for p in self.sources]

    @property
    def model_cache_dir(self) -> Path:
        if self.generation.transformers.cache_dir:
            return resolve_path(self.generation.transformers.cache_dir)
        home = os.environ.get("CSBOT_HOME")
        return Path(home).expanduser() / "models" if home else REPO_ROOT / ".data" / "models"


def resolve_path(value: os.PathLike | str) -> Path:
    """``value`` as an absolute path; relative paths start at the repository root."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> Dict[str, Any]:
    """``base`` with ``extra`` merged in, nested mappings key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
