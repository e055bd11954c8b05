"""Settings: knowledge.yml, defaults, validation, environment overrides."""

from __future__ import annotations

import pytest

from knowledge.config import DEFAULT_CONFIG_FILE, REPO_ROOT, ConfigError, KnowledgeConfig


def test_knowledge_yml_is_valid_and_spells_out_the_defaults():
    """The framework's defaults are knowledge.yml's, except the demo shop's own words."""
    assert DEFAULT_CONFIG_FILE.exists()
    shop = KnowledgeConfig.load(DEFAULT_CONFIG_FILE, environ={}).model_dump()
    framework = KnowledgeConfig().model_dump()
    for section, key in (("retrieval", "synonyms"), ("prompt", "persona"),
                         ("grounding", "product_words"), ("answers", "comparisons")):
        assert shop[section].pop(key) != framework[section].pop(key)
    shop.pop("answers")
    framework.pop("answers")  # every text of it is the shop's
    assert shop == framework
    assert "Threadline" not in KnowledgeConfig().model_dump_json()


def test_paths_are_relative_to_the_repository_root():
    config = KnowledgeConfig()
    assert config.index_path == REPO_ROOT / ".data" / "knowledge-index"
    assert config.template_path == REPO_ROOT / "knowledge" / "prompt_template.txt"
    assert config.source_paths == [REPO_ROOT / "data" / "knowledge"]


def test_overlap_must_be_smaller_than_the_chunk(tmp_path):
    with pytest.raises(ConfigError, match="chunk_overlap"):
        KnowledgeConfig.load(overrides={"ingest": {"chunk_size": 100, "chunk_overlap": 100}},
                             environ={})


def test_a_misspelt_key_is_an_error(tmp_path):
    bad = tmp_path / "knowledge.yml"
    bad.write_text("retrieval:\n  top_k: 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top_k"):
        KnowledgeConfig.load(bad, environ={})


def test_environment_overrides(tmp_path):
    config = KnowledgeConfig.load(environ={"CSBOT_KNOWLEDGE_INDEX": str(tmp_path / "idx"),
                                           "CSBOT_KNOWLEDGE_BACKEND": "openai"})
    assert config.index_path == tmp_path / "idx"
    assert config.generation.backend == "openai"


def test_model_cache_follows_csbot_home(monkeypatch, tmp_path):
    monkeypatch.setenv("CSBOT_HOME", str(tmp_path))
    assert KnowledgeConfig().model_cache_dir == tmp_path / "models"
    monkeypatch.delenv("CSBOT_HOME")
    assert KnowledgeConfig().model_cache_dir == REPO_ROOT / ".data" / "models"
