"""The index on disk: no pickle anywhere, and a tampered index is refused with a clear error."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest
from conftest import ROOT

from knowledge.index_store import (
    IndexIntegrityError,
    IndexNotFound,
    load_index,
    resolve_key,
)
from knowledge.retrieve import Retriever


def key_of(real_index):
    return resolve_key(real_index.config.index)


def test_index_folder_holds_no_pickle(real_index):
    names = sorted(os.listdir(real_index.path))
    assert names == ["bm25.json", "docstore.json", "index.faiss", "manifest.json",
                     "manifest.sig"]
    store = json.loads((real_index.path / "docstore.json").read_text(encoding="utf-8"))
    assert len(store["chunks"]) == real_index.report.chunks


def test_loading_never_unpickles(real_index, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used while loading the index")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    stored = load_index(real_index.path, key_of(real_index))
    assert stored.index.ntotal == real_index.report.chunks


def test_a_planted_pickle_is_never_read(real_index, index_copy, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (index_copy / "index.pkl").write_bytes(pickle.dumps(Payload()))
    load_index(index_copy, key_of(real_index))
    assert not marker.exists()


def test_edited_docstore_is_refused(real_index, index_copy):
    path = index_copy / "docstore.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("139.99", "1.99", 1), encoding="utf-8")
    with pytest.raises(IndexIntegrityError, match="docstore.json was modified"):
        load_index(index_copy, key_of(real_index))


def test_edited_bm25_tokens_are_refused(real_index, index_copy):
    """Planting a word in a chunk's BM25 tokens (to pull it up for a query) is tampering."""
    path = index_copy / "bm25.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tokens"][0] = data["tokens"][0] + ["free", "free", "free"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(IndexIntegrityError, match="bm25.json was modified"):
        load_index(index_copy, key_of(real_index))
    with pytest.raises(IndexIntegrityError, match="bm25.json"):
        Retriever.from_config(real_index.config, index_copy)


def test_a_missing_bm25_file_is_refused(real_index, index_copy):
    (index_copy / "bm25.json").unlink()
    with pytest.raises(IndexIntegrityError, match="bm25.json was modified or replaced"):
        load_index(index_copy, key_of(real_index))


def test_replaced_vectors_are_refused(real_index, index_copy):
    path = index_copy / "index.faiss"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexIntegrityError, match="index.faiss was modified"):
        load_index(index_copy, key_of(real_index))


def test_edited_manifest_is_refused(real_index, index_copy):
    """Rewriting the checksums in the manifest does not help: the HMAC covers them."""
    doc = index_copy / "docstore.json"
    doc.write_text(doc.read_text(encoding="utf-8").replace("139.99", "1.99", 1),
                   encoding="utf-8")
    import hashlib

    manifest_path = index_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["checksums"]["docstore.json"] = hashlib.sha256(doc.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    with pytest.raises(IndexIntegrityError, match="signature does not match"):
        load_index(index_copy, key_of(real_index))


def test_missing_signature_and_wrong_key_are_refused(real_index, index_copy):
    with pytest.raises(IndexIntegrityError, match="signature does not match"):
        load_index(index_copy, b"another key")
    (index_copy / "manifest.sig").unlink()
    with pytest.raises(IndexIntegrityError, match="manifest.sig is missing"):
        load_index(index_copy, key_of(real_index))


def test_no_index_yet(tmp_path, real_index):
    with pytest.raises(IndexNotFound, match="python -m knowledge ingest"):
        load_index(tmp_path / "none", key_of(real_index))


def test_retriever_refuses_a_tampered_index(real_index, index_copy):
    config = real_index.config.with_overrides({"index": {"path": str(index_copy)}})
    (index_copy / "docstore.json").write_text("{}", encoding="utf-8")
    with pytest.raises(IndexIntegrityError, match="refusing to load"):
        Retriever.from_config(config)


def test_cli_verify_reports_tampering(real_index, index_copy):
    env = dict(os.environ, CSBOT_KNOWLEDGE_KEY=real_index.key(), HF_HUB_OFFLINE="1")
    ok = subprocess.run([sys.executable, "-m", "knowledge", "verify", "--index", str(index_copy)],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "signature and checksums ok" in ok.stdout
    doc = index_copy / "docstore.json"
    doc.write_text(doc.read_text(encoding="utf-8").replace("Hiking", "Hacking", 1),
                   encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "knowledge", "verify", "--index", str(index_copy)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "error: refusing to load the knowledge index" in bad.stderr
    assert "docstore.json was modified" in bad.stderr
