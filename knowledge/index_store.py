"""The index on disk: a format that cannot run code, signed with an HMAC.

langchain's ``FAISS.save_local`` pickles its docstore and ``FAISS.load_local``
unpickles it (hence ``allow_dangerous_deserialization``): whoever can write the
index folder could run code in the action server. This module never pickles.
An index folder holds:

``index.faiss``     the vectors, written by ``faiss.write_index`` (FAISS's own binary format)
``docstore.json``   every chunk's text and metadata, in the order of the vectors
``bm25.json``       every chunk's BM25 tokens, in the same order (``lexical``)
``manifest.json``   what built it (encoder, dimension, index type, chunk settings), the
                    SHA-256 of the three files above, and each source file's hash (for
                    incremental re-ingestion)
``manifest.sig``    HMAC-SHA256 of ``manifest.json`` under the index key

``load_index`` checks the signature and every checksum *before* it parses
anything else, and refuses a folder that fails with ``IndexIntegrityError``, so
even FAISS's binary reader only sees bytes this project wrote. The key comes
from ``$CSBOT_KNOWLEDGE_KEY`` (``index.key_env``) when set, else from
``index.key_file`` (default ``.data/knowledge-index.key``), which the first
ingest creates with 32 random bytes and mode 0600. Keep the key out of the
index folder: a replica that loads a copied index needs the same key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from knowledge.config import IndexSettings, resolve_path

FORMAT_NAME = "csbot-knowledge-index"
#: Version 2 added the BM25 tokens (``bm25.json``); a version-1 index is rebuilt by ingest.
FORMAT_VERSION = 2
INDEX_FILE = "index.faiss"
DOCSTORE_FILE = "docstore.json"
LEXICAL_FILE = "bm25.json"
DATA_FILES = (INDEX_FILE, DOCSTORE_FILE, LEXICAL_FILE)
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"


class IndexNotFound(FileNotFoundError):
    """There is no index at the configured path (it has not been built yet)."""


class IndexIntegrityError(RuntimeError):
    """The index folder fails its signature or checksum check and is not loaded."""


@dataclass
class StoredIndex:
    """What an index folder holds, verified."""

    index: Any  # faiss.Index
    chunks: List[Dict[str, Any]]  # {"id", "text", "metadata"} in vector order
    manifest: Dict[str, Any] = field(default_factory=dict)
    lexical: Dict[str, Any] = field(default_factory=dict)  # bm25.json: tokens in vector order


# ----------------------------------------------------------------------------- the key
def resolve_key(settings: IndexSettings, create: bool = False) -> bytes:
    """The HMAC key: ``$<key_env>``, else the key file (created when ``create``)."""
    value = os.environ.get(settings.key_env)
    if value:
        return value.encode("utf-8")
    path = resolve_path(settings.key_file)
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise IndexIntegrityError(f"the index key file {path} is empty")
        return key.encode("utf-8")
    if not create:
        raise IndexIntegrityError(
            f"no index key: set ${settings.key_env} or provide {path} (the key the index was "
            "built with)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key.encode("utf-8")


def file_sha256(path: Path) -> str:
    """Content hash of a file, read in blocks (index files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sign(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


# ----------------------------------------------------------------------------- FAISS index
def choose_index_type(settings: IndexSettings, count: int) -> str:
    """``auto`` → flat (exact) up to ``auto_flat_limit`` chunks, HNSW above.

    Measured with benchmarks/faiss_scale.py on 100,000 chunks (2-core CPU): flat 5.9 ms p50
    per query, HNSW (M 32, efSearch 256) 0.49 ms at recall@5 0.97. See docs/knowledge.md.
    """
    if settings.type != "auto":
        return settings.type
    return "flat" if count <= settings.auto_flat_limit else "hnsw"


def build_faiss_index(vectors: np.ndarray, kind: str, settings: IndexSettings) -> Any:
    """An inner-product FAISS index of ``kind`` holding ``vectors`` (rows, normalised)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    if kind == "ivf" and len(vectors) < 1000:
        kind = "flat"  # too few vectors to train inverted lists
    index: Any
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = max(40, 2 * settings.hnsw_m)
        index.hnsw.efSearch = settings.hnsw_ef_search
    elif kind == "ivf":
        nlist = int(max(16, min(4 * np.sqrt(len(vectors)), len(vectors) // 39)))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = settings.ivf_nprobe
    else:
        raise ValueError(f"unknown index type {kind!r}")
    if len(vectors):
        index.add(vectors)
    return index


def index_kind(index: Any) -> str:
    """``flat``, ``hnsw`` or ``ivf`` for a FAISS index object."""
    name = type(index).__name__
    if "HNSW" in name:
        return "hnsw"
    if "IVF" in name:
        return "ivf"
    return "flat"


def tune_for_search(index: Any, settings: IndexSettings) -> None:
    """Apply the search-time knobs (efSearch, nprobe) and enable ``reconstruct`` for IVF."""
    kind = index_kind(index)
    if kind == "hnsw":
        index.hnsw.efSearch = settings.hnsw_ef_search
    elif kind == "ivf":
        index.nprobe = settings.ivf_nprobe
        index.make_direct_map()


def all_vectors(index: Any) -> np.ndarray:
    """Every vector of ``index`` in order (reused by incremental ingestion)."""
    if index.ntotal == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    if index_kind(index) == "ivf":
        index.make_direct_map()
    return index.reconstruct_n(0, index.ntotal)


# ----------------------------------------------------------------------------- save / load
def save_index(path: Path, index: Any, chunks: List[Dict[str, Any]], manifest: Dict[str, Any],
               key: bytes, lexical: Dict[str, Any]) -> Path:
    """Write the five files into a new folder and swap it in place of ``path``."""
    import faiss

    if index.ntotal != len(chunks) or len(lexical.get("tokens", [])) != len(chunks):
        raise ValueError(f"{index.ntotal} vectors, {len(lexical.get('tokens', []))} token lists "
                         f"but {len(chunks)} chunks")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent))
    os.chmod(work, 0o755)
    try:
        faiss.write_index(index, str(work / INDEX_FILE))
        with open(work / DOCSTORE_FILE, "w", encoding="utf-8") as handle:
            json.dump({"format": FORMAT_NAME, "version": FORMAT_VERSION, "chunks": chunks},
                      handle, ensure_ascii=False, separators=(",", ":"))
        with open(work / LEXICAL_FILE, "w", encoding="utf-8") as handle:
            json.dump(dict(lexical, format=FORMAT_NAME, version=FORMAT_VERSION), handle,
                      ensure_ascii=False, separators=(",", ":"))
        manifest = dict(manifest)
        manifest.update({
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "index_type": index_kind(index),
            "vectors": int(index.ntotal),
            "checksums": {name: file_sha256(work / name) for name in DATA_FILES},
        })
        data = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")
        (work / MANIFEST_FILE).write_bytes(data)
        (work / SIGNATURE_FILE).write_text(_sign(key, data) + "\n", encoding="utf-8")
        old: Optional[Path] = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.rmdir(old)
            os.rename(path, old)
        os.rename(work, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return path


def read_manifest(path: Path, key: bytes) -> Dict[str, Any]:
    """The verified manifest of the index at ``path`` (signature and file checksums)."""
    path = Path(path)
    manifest_file = path / MANIFEST_FILE
    if not manifest_file.exists():
        raise IndexNotFound(
            f"no knowledge index at {path}: build it with `python -m knowledge ingest "
            "data/knowledge` (or `bot knowledge ingest`)"
        )
    data = manifest_file.read_bytes()
    signature_file = path / SIGNATURE_FILE
    if not signature_file.exists():
        raise IndexIntegrityError(
            f"refusing to load the knowledge index at {path}: {SIGNATURE_FILE} is missing, so "
            "its integrity cannot be checked; rebuild it with `python -m knowledge ingest`"
        )
    signature = signature_file.read_text(encoding="utf-8").strip()
    if not hmac.compare_digest(signature, _sign(key, data)):
        raise IndexIntegrityError(
            f"refusing to load the knowledge index at {path}: its signature does not match "
            "(the manifest was changed after the index was built, or it was built with another "
            "key); rebuild it with `python -m knowledge ingest`"
        )
    manifest = json.loads(data)
    if manifest.get("format") != FORMAT_NAME or manifest.get("version") != FORMAT_VERSION:
        raise IndexIntegrityError(f"{path} is not a version-{FORMAT_VERSION} knowledge index; "
                                  "rebuild it with `python -m knowledge ingest`")
    for name, expected in sorted(manifest.get("checksums", {}).items()):
        file = path / name
        if not file.exists() or file_sha256(file) != expected:
            raise IndexIntegrityError(
                f"refusing to load the knowledge index at {path}: {name} was modified or "
                "replaced after the index was built (checksum mismatch); rebuild it with "
                "`python -m knowledge ingest`"
            )
    if set(manifest.get("checksums", {})) != set(DATA_FILES):
        raise IndexIntegrityError(f"{path}: the manifest does not cover the index files")
    return manifest


def load_index(path: Path, key: bytes) -> StoredIndex:
    """The verified index at ``path``; raises ``IndexNotFound`` / ``IndexIntegrityError``."""
    import faiss

    path = Path(path)
    manifest = read_manifest(path, key)
    index = faiss.read_index(str(path / INDEX_FILE))
    with open(path / DOCSTORE_FILE, encoding="utf-8") as handle:
        store = json.load(handle)
    with open(path / LEXICAL_FILE, encoding="utf-8") as handle:
        lexical = json.load(handle)
    chunks = store.get("chunks", [])
    if index.ntotal != len(chunks) or index.ntotal != manifest.get("vectors") or len(
            lexical.get("tokens", [])) != len(chunks):
        raise IndexIntegrityError(f"{path}: {index.ntotal} vectors, "
                                  f"{len(lexical.get('tokens', []))} token lists but "
                                  f"{len(chunks)} chunks")
    return StoredIndex(index=index, chunks=chunks, manifest=manifest, lexical=lexical)
