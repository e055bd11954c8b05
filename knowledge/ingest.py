"""Ingestion: folders of documents become a FAISS index on disk, incrementally.

``Ingestor(config).run([paths])`` (or ``python -m knowledge ingest PATH…``):

1. collects the files under each path (hidden files and ``ingest.exclude`` patterns
   such as ``README*`` are left out; other endings are counted as ignored);
2. hashes each file (SHA-256 of its bytes). A file whose hash, chunk settings and
   encoder match the existing index keeps its chunks and vectors untouched;
3. loads and splits new and changed files (``loaders``, ``chunking``); a chunk whose
   text was embedded before (same content hash) reuses that vector, so editing one
   paragraph re-embeds only the chunks that changed;
4. drops the chunks of files that are gone (the index mirrors the paths given);
5. embeds what is new (progress bar), tokenizes what is new for BM25 (``lexical``;
   unchanged chunks keep their tokens), builds the FAISS index and saves both signed
   (``index_store``), replacing the old folder in one rename.

A file that cannot be read or parsed is reported by name and skipped; the rest of
the index is still built. An existing index that fails its integrity check, or
was built with another encoder or other chunk settings, is rebuilt from scratch.
"""

from __future__ import annotations

import fnmatch
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from langchain_core.documents import Document

from knowledge.chunking import CHUNKING_VERSION, catalogue_names, split_documents, tag_products
from knowledge.config import KnowledgeConfig
from knowledge.embeddings import dimension, get_embeddings
from knowledge.index_store import (
    IndexIntegrityError,
    IndexNotFound,
    all_vectors,
    build_faiss_index,
    choose_index_type,
    file_sha256,
    index_kind,
    load_index,
    resolve_key,
    save_index,
)
from knowledge.lexical import TOKENIZER_VERSION, tokenize
from knowledge.loaders import LoaderError, file_format, load_file

logger = logging.getLogger(__name__)


@dataclass
class FileResult:
    """What happened to one file."""

    source: str
    status: str  # added | changed | unchanged | skipped
    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    error: str = ""


@dataclass
class IngestReport:
    """The summary of one ingestion run."""

    index_path: Path
    files: List[FileResult] = field(default_factory=list)
    removed_files: List[str] = field(default_factory=list)
    removed_chunks: int = 0
    ignored_files: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    tokenized: int = 0
    index_type: str = ""
    seconds: float = 0.0
    embed_seconds: float = 0.0
    flagged: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def skipped(self) -> List[FileResult]:
        return [f for f in self.files if f.status == "skipped"]

    @property
    def documents(self) -> int:
        return sum(f.documents for f in self.files if f.status != "skipped")

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    def summary(self) -> str:
        indexed = len(self.files) - len(self.skipped)
        lines = [
            f"Knowledge index {self.index_path} ({self.index_type}): {indexed} files, "
            f"{self.documents} documents, {self.chunks} chunks in {self.seconds:.1f} s",
            f"  files: {self.count('added')} added, {self.count('changed')} changed, "
            f"{self.count('unchanged')} unchanged, {len(self.removed_files)} removed, "
            f"{len(self.skipped)} skipped"
            + (f", {self.ignored_files} ignored (not a supported type)"
               if self.ignored_files else ""),
            f"  chunks: {self.embedded} embedded ({self.embed_seconds:.1f} s), {self.reused} "
            f"reused, {self.removed_chunks} removed; BM25: {self.tokenized} tokenized, "
            f"{self.chunks - self.tokenized} reused",
        ]
        for result in self.skipped:
            lines.append(f"  SKIPPED {result.source}: {result.error}")
        for name in self.removed_files:
            lines.append(f"  removed {name} (no longer in the folder)")
        for item in self.flagged:
            lines.append(f"  note: instruction-like text in {item} (kept as data; removed from "
                         "prompts)")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def collect_files(paths: Sequence[Path], config: KnowledgeConfig
                  ) -> Tuple[List[Tuple[Path, str]], List[FileResult], int]:
    """([(file, source name)], results for paths that do not exist, ignored count)."""
    settings = config.ingest
    found: Dict[str, Path] = {}
    missing: List[FileResult] = []
    ignored = 0

    def excluded(rel_parts: Sequence[str]) -> bool:
        name = rel_parts[-1]
        return any(part.startswith(".") for part in rel_parts) or any(
            fnmatch.fnmatch(name, pattern) for pattern in settings.exclude)

    for raw in paths:
        root = Path(raw).expanduser()
        if root.is_file():
            candidates = [(root, root.name)]
        elif root.is_dir():
            candidates = [(p, p.relative_to(root).as_posix())
                          for p in sorted(root.rglob("*")) if p.is_file()]
        else:
            missing.append(FileResult(str(raw), "skipped", error="no such file or folder"))
            continue
        for file, rel in candidates:
            if excluded(rel.split("/")):
                continue
            if file.suffix.lower() not in settings.extensions or file_format(file) is None:
                ignored += 1
                continue
            if rel in found and found[rel] != file:
                logger.warning("%s appears under two ingested folders; keeping %s", rel, found[rel])
                continue
            found[rel] = file
    return [(found[rel], rel) for rel in sorted(found)], missing, ignored


class Ingestor:
    """Builds or updates the index configured in ``config`` (or at ``index_path``)."""

    def __init__(self, config: Optional[KnowledgeConfig] = None, embeddings: Any = None,
                 progress: bool = True) -> None:
        self.config = config or KnowledgeConfig.load()
        self._embeddings = embeddings
        self.progress = progress

    @property
    def embeddings(self) -> Any:
        if self._embeddings is None:
            self._embeddings = get_embeddings(self.config.embeddings, self.config.torch_threads)
        return self._embeddings

    def _settings_fingerprint(self, dim: int) -> Dict[str, Any]:
        ingest = self.config.ingest
        return {
            "embedding": {"model": self.config.embeddings.model, "dim": dim},
            "chunking": {"version": CHUNKING_VERSION,
                         "chunk_size": ingest.chunk_size, "chunk_overlap": ingest.chunk_overlap,
                         "csv_id_column": ingest.csv_id_column,
                         "csv_title_column": ingest.csv_title_column},
        }

    def _previous(self, index_path: Path, key: bytes, fingerprint: Dict[str, Any],
                  report: IngestReport):
        """(manifest, chunks by source, vectors by content hash, BM25 tokens by content hash)
        of the index being updated."""
        try:
            stored = load_index(index_path, key)
        except IndexNotFound:
            return {}, {}, {}, {}
        except IndexIntegrityError as exc:
            report.notes.append(f"the existing index was not trusted and is rebuilt: {exc}")
            return {}, {}, {}, {}
        manifest = stored.manifest
        tokens: Dict[str, List[str]] = {}
        if stored.lexical.get("tokenizer") == TOKENIZER_VERSION:
            tokens = {record["metadata"].get("content_hash", ""): list(words) for record, words
                      in zip(stored.chunks, stored.lexical.get("tokens", []))}
        same = all(manifest.get(k) == v for k, v in fingerprint.items())
        vectors = all_vectors(stored.index)
        by_source: Dict[str, List[Tuple[Dict[str, Any], np.ndarray]]] = {}
        by_hash: Dict[str, np.ndarray] = {}
        for record, vector in zip(stored.chunks, vectors):
            source = record["metadata"].get("source", "")
            by_source.setdefault(source, []).append((record, vector))
            by_hash[record["metadata"].get("content_hash", "")] = vector
        if not same:
            # Same files, other chunks: nothing can be reused, but the report still tells
            # changed files from new ones and counts what is dropped.
            report.notes.append("encoder or chunk settings changed: every file is re-embedded")
            manifest = dict(manifest, files={
                rel: dict(info, sha256=None) for rel, info in manifest.get("files", {}).items()})
            by_hash = {}
        return manifest, by_source, by_hash, tokens

    def run(self, paths: Sequence[Path], index_path: Optional[Path] = None,
            rebuild: bool = False) -> IngestReport:
        started = time.perf_counter()
        index_path = Path(index_path) if index_path else self.config.index_path
        report = IngestReport(index_path=index_path)
        key = resolve_key(self.config.index, create=True)
        dim = dimension(self.embeddings)
        fingerprint = self._settings_fingerprint(dim)
        model_id = f"{self.config.embeddings.model}|{dim}"

        files, missing, report.ignored_files = collect_files(paths, self.config)
        report.files.extend(missing)
        if rebuild:
            old_manifest, old_chunks, old_vectors, old_tokens = {}, {}, {}, {}
        else:
            old_manifest, old_chunks, old_vectors, old_tokens = self._previous(
                index_path, key, fingerprint, report)
        old_files: Dict[str, Dict[str, Any]] = old_manifest.get("files", {})

        # (Document, vector or None) in index order; None means "to embed".
        entries: List[Tuple[Document, Optional[np.ndarray]]] = []
        file_meta: Dict[str, Dict[str, Any]] = {}
        iterator = files
        if self.progress and files:
            from tqdm import tqdm

            iterator = tqdm(files, desc="reading", unit="file", file=sys.stderr, leave=False)
        for path, rel in iterator:
            try:
                sha = file_sha256(path)
            except OSError as exc:
                report.files.append(FileResult(rel, "skipped", error=f"cannot read: {exc}"))
                continue
            previous = old_files.get(rel)
            if previous and previous.get("sha256") == sha and rel in old_chunks:
                kept = old_chunks[rel]
                for record, vector in kept:
                    entries.append((Document(page_content=record["text"],
                                             metadata=dict(record["metadata"])), vector))
                report.files.append(FileResult(rel, "unchanged", previous.get("documents", 0),
                                               len(kept)))
                file_meta[rel] = previous
                continue
            try:
                docs = load_file(path, rel, self.config.ingest)
                chunks = split_documents(docs, self.config.ingest, model_id)
            except LoaderError as exc:
                report.files.append(FileResult(rel, "skipped", error=str(exc).split(": ", 1)[-1]))
                continue
            result = FileResult(rel, "changed" if previous else "added", len(docs), len(chunks))
            for chunk in chunks:
                vector = old_vectors.get(chunk.metadata["content_hash"])
                if vector is None:
                    result.embedded += 1
                entries.append((chunk, vector))
            report.files.append(result)
            file_meta[rel] = {"sha256": sha, "format": docs[0].metadata.get("format", ""),
                              "documents": len(docs), "chunks": len(chunks)}

        current = {rel for _, rel in files}
        report.removed_files = sorted(rel for rel in old_files if rel not in current)
        old_ids = {record["id"] for kept in old_chunks.values() for record, _ in kept}
        new_ids = {doc.metadata["id"] for doc, _ in entries}
        report.removed_chunks = len(old_ids - new_ids)

        docs_in_order = [doc for doc, _ in entries]
        tag_products(docs_in_order, catalogue_names(docs_in_order))
        report.flagged = sorted({
            f"{d.metadata['source']}" + (f" § {d.metadata['section']}" if d.metadata.get("section")
                                         else "")
            for d in docs_in_order if d.metadata.get("flags")})

        vectors = self._embed_missing(entries, report, dim)
        kind = choose_index_type(self.config.index, len(entries))
        index = build_faiss_index(vectors, kind, self.config.index)
        records = [{"id": d.metadata["id"], "text": d.page_content, "metadata": d.metadata}
                   for d in docs_in_order]
        manifest = dict(fingerprint)
        manifest["files"] = file_meta
        manifest["skipped"] = {r.source: r.error for r in report.skipped}
        tokens = [old_tokens.get(d.metadata["content_hash"]) or tokenize(d.page_content)
                  for d in docs_in_order]
        report.tokenized = sum(1 for d in docs_in_order if d.metadata["content_hash"]
                               not in old_tokens)
        save_index(index_path, index, records, manifest, key,
                   lexical={"tokenizer": TOKENIZER_VERSION, "tokens": tokens})

        report.chunks = len(entries)
        report.reused = report.chunks - report.embedded
        report.index_type = index_kind(index)
        report.seconds = time.perf_counter() - started
        return report

    def _embed_missing(self, entries: List[Tuple[Document, Optional[np.ndarray]]],
                       report: IngestReport, dim: int) -> np.ndarray:
        todo = [i for i, (_, vector) in enumerate(entries) if vector is None]
        vectors = np.zeros((len(entries), dim), dtype=np.float32)
        for i, (_, vector) in enumerate(entries):
            if vector is not None:
                vectors[i] = vector
        if not todo:
            return vectors
        started = time.perf_counter()
        batch = max(1, self.config.embeddings.batch_size)
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc="embedding", unit="chunk", file=sys.stderr)
        try:
            for start in range(0, len(todo), batch):
                positions = todo[start:start + batch]
                texts = [entries[i][0].page_content for i in positions]
                embedded = np.asarray(self.embeddings.embed_documents(texts), dtype=np.float32)
                vectors[positions] = embedded
                if bar is not None:
                    bar.update(len(positions))
        finally:
            if bar is not None:
                bar.close()
        report.embedded = len(todo)
        report.embed_seconds = time.perf_counter() - started
        return vectors
