"""Ingestion: every format, metadata on every chunk, bad files skipped, incremental updates."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import DATA, make_config
from helpers import write_format_folder

from knowledge.embeddings import get_embeddings
from knowledge.index_store import load_index, resolve_key
from knowledge.ingest import Ingestor


def chunks_of(config):
    return load_index(config.index_path, resolve_key(config.index)).chunks


def test_real_knowledge_base(real_index):
    report = real_index.report
    sources = {f.source for f in report.files}
    assert "README.md" not in sources  # describes the folder, not customer content
    assert len(report.files) == 13 and not report.skipped
    assert report.count("added") == 13
    chunks = chunks_of(real_index.config)
    assert len(chunks) == report.chunks == report.embedded > 150
    rows = {c["metadata"]["doc_id"] for c in chunks if c["metadata"].get("catalogue")}
    assert len(rows) == 53 and "products.csv#TL-HIKE-01" in rows
    for chunk in chunks:
        meta = chunk["metadata"]
        for key in ("source", "doc_id", "title", "section", "url", "format", "content_hash"):
            assert key in meta, (key, meta)
        assert meta["url"].startswith("https://shop.threadline.example/")
        assert chunk["text"].startswith(meta["heading"])
    hike = next(c for c in chunks if c["metadata"]["doc_id"] == "products.csv#TL-HIKE-01")
    assert hike["metadata"]["title"] == "Hiking Boots"
    assert hike["metadata"]["product_id"] == "TL-HIKE-01"
    review = next(c for c in chunks if c["metadata"]["source"] == "guides/customer-reviews.md"
                  and c["metadata"]["section"].startswith("Hiking Boots"))
    assert review["metadata"]["product_id"] == "TL-HIKE-01"
    wide = next(c for c in chunks if c["metadata"]["section"] == "Boots: widths and wide fit")
    assert {"TL-HIKE-01", "TL-SNOW-01", "TL-WORK-01"} <= set(wide["metadata"]["products"])
    faq = [c for c in chunks if c["metadata"]["source"] == "faq.json"]
    assert len(faq) == 26 and all("#" in c["metadata"]["url"] for c in faq)
    care = {c["metadata"]["section"] for c in chunks
            if c["metadata"]["source"] == "guides/care-guide.txt"}
    assert "SUEDE" in care
    # The injected review is kept as data and flagged.
    assert any("customer-reviews.md" in item for item in report.flagged)
    summary = report.summary()
    assert "13 files" in summary and f"{report.chunks} chunks" in summary and " s" in summary
    assert "documents" in summary


def test_one_file_per_format_and_corrupt_files_are_skipped(tmp_path):
    folder = tmp_path / "docs"
    files = write_format_folder(folder)
    config = make_config(tmp_path)
    report = Ingestor(config, progress=False).run([folder])
    skipped = {f.source: f.error for f in report.skipped}
    assert set(skipped) == {"broken.pdf", "broken.json"}
    assert "PDF" in skipped["broken.pdf"] and "JSON" in skipped["broken.json"]
    assert "SKIPPED broken.pdf" in report.summary() and "SKIPPED broken.json" in report.summary()
    assert report.ignored_files == 1  # notes.docx
    chunks = chunks_of(config)
    formats = {c["metadata"]["format"] for c in chunks}
    assert formats == {"md", "html", "txt", "pdf", "csv", "json"}
    by_source = {}
    for chunk in chunks:
        by_source.setdefault(chunk["metadata"]["source"], []).append(chunk)
    assert "README.md" not in by_source
    pdf = by_source["catalogue/lookbook.pdf"][0]
    assert "Harbour Trench Coat" in pdf["text"]
    assert pdf["metadata"]["title"] == "Autumn Lookbook"
    assert pdf["metadata"]["section"] == "page 1"
    assert pdf["metadata"]["url"] == "https://shop.example/lookbook"
    html = {c["metadata"]["section"]: c for c in by_source["guides/belt-sizes.html"]}
    assert html["Choosing a size"]["metadata"]["url"] == "https://shop.example/help/belts"
    assert "34 | 32" in html["Choosing a size"]["text"]
    rows = {c["metadata"]["product_id"]: c for c in by_source["catalogue/accessories.csv"]}
    assert rows["AC-UMB-01"]["metadata"]["doc_id"] == "catalogue/accessories.csv#AC-UMB-01"
    assert rows["AC-UMB-01"]["metadata"]["title"] == "Storm Umbrella"
    md = {c["metadata"]["section"] for c in by_source["gift-wrap.md"]}
    assert "Prices" in md
    txt = {c["metadata"]["section"] for c in by_source["guides/umbrella-care.txt"]}
    assert "DRYING" in txt
    faq = by_source["faq.json"]
    assert {c["metadata"]["title"] for c in faq} == {"Do you gift wrap?",
                                                      "Can I pay in instalments?"}
    assert files  # every format was written


class CountingEmbeddings:
    """Wraps the real encoder and counts the texts it embeds."""

    def __init__(self, inner):
        self.inner = inner
        self.texts = []

    def embed_documents(self, texts):
        self.texts.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_incremental_reingest(tmp_path):
    folder = tmp_path / "kb"
    (folder / "policies").mkdir(parents=True)
    for name in ("returns.md", "refunds.md", "shipping.md"):
        shutil.copy(DATA / "policies" / name, folder / "policies" / name)
    shutil.copy(DATA / "faq.json", folder / "faq.json")
    config = make_config(tmp_path)
    counter = CountingEmbeddings(get_embeddings(config.embeddings))

    first = Ingestor(config, embeddings=counter, progress=False).run([folder])
    assert first.embedded == first.chunks == len(counter.texts)
    before = chunks_of(config)
    refunds_before = [c for c in before if c["metadata"]["source"] == "policies/refunds.md"]

    counter.texts.clear()
    again = Ingestor(config, embeddings=counter, progress=False).run([folder])
    assert again.embedded == 0 and counter.texts == []
    assert again.count("unchanged") == 4

    # Change one paragraph of one file: only that file's changed chunks are embedded.
    path = folder / "policies" / "refunds.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("5-7 business days", "4-6 business days"), encoding="utf-8")
    counter.texts.clear()
    changed = Ingestor(config, embeddings=counter, progress=False).run([folder])
    statuses = {f.source: f.status for f in changed.files}
    assert statuses == {"policies/refunds.md": "changed", "policies/returns.md": "unchanged",
                        "policies/shipping.md": "unchanged", "faq.json": "unchanged"}
    assert 0 < changed.embedded <= len(refunds_before)
    assert changed.embedded < len(refunds_before) or len(refunds_before) == 1
    assert all("Refunds Policy" in t for t in counter.texts)
    assert any("4-6 business days" in t for t in counter.texts)
    after = chunks_of(config)
    assert not any("5-7 business days" in c["text"] for c in after
                   if c["metadata"]["source"] == "policies/refunds.md")

    # Delete one file: its chunks are gone, nothing is embedded.
    (folder / "policies" / "shipping.md").unlink()
    counter.texts.clear()
    deleted = Ingestor(config, embeddings=counter, progress=False).run([folder])
    assert deleted.removed_files == ["policies/shipping.md"]
    assert deleted.embedded == 0 and counter.texts == []
    remaining = chunks_of(config)
    assert not [c for c in remaining if c["metadata"]["source"] == "policies/shipping.md"]
    assert deleted.removed_chunks == len(after) - len(remaining) > 0
    manifest = json.loads((config.index_path / "manifest.json").read_text())
    assert "policies/shipping.md" not in manifest["files"]


def test_changed_chunk_settings_reembed_everything(tmp_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    shutil.copy(DATA / "policies" / "warranty.md", folder / "warranty.md")
    config = make_config(tmp_path)
    Ingestor(config, progress=False).run([folder])
    smaller = make_config(tmp_path, ingest={"chunk_size": 300, "chunk_overlap": 30})
    report = Ingestor(smaller, progress=False).run([folder])
    assert report.embedded == report.chunks and report.count("changed") == 1
    assert any("re-embedded" in note for note in report.notes)


def test_missing_path_is_reported(tmp_path):
    config = make_config(tmp_path)
    report = Ingestor(config, progress=False).run([tmp_path / "nowhere"])
    assert [f.source for f in report.skipped] == [str(tmp_path / "nowhere")]
    assert report.chunks == 0


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_other_index_types(tmp_path, kind, real_index):
    from knowledge.index_store import build_faiss_index, index_kind

    import numpy as np

    vectors = np.random.default_rng(0).standard_normal((1200, 8)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = build_faiss_index(vectors, kind, real_index.config.index)
    assert index_kind(index) == kind and index.ntotal == 1200
    scores, ids = index.search(vectors[:5], 1)
    assert list(ids[:, 0]) == [0, 1, 2, 3, 4]
