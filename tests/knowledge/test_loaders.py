"""Loaders on library parts: csv rows, Markdown and HTML header-aware sections."""

from __future__ import annotations

from knowledge.chunking import split_documents
from knowledge.config import IngestSettings
from knowledge.loaders import load_csv, load_html, load_markdown

SETTINGS = IngestSettings(chunk_size=200, chunk_overlap=20)


def test_a_multi_line_csv_cell_survives(tmp_path):
    path = tmp_path / "gadgets.csv"
    path.write_text(
        'product_id,name,price,description,url\n'
        'GX-1,Zen Laptop,999.00,"Light laptop.\nBattery: 14 hours, fast charge.\n\n'
        'Ships with a charger, a sleeve",https://example.test/gx-1\n'
        'GX-2,Quiet Headphones,199.00,Noise cancelling,\n', encoding="utf-8")
    docs = load_csv(path, "gadgets.csv", SETTINGS)
    assert [d.metadata["doc_id"] for d in docs] == ["gadgets.csv#GX-1", "gadgets.csv#GX-2"]
    first = docs[0]
    assert first.metadata["title"] == "Zen Laptop" and first.metadata["catalogue"]
    assert first.metadata["url"] == "https://example.test/gx-1"
    assert ("Description: Light laptop. Battery: 14 hours, fast charge. Ships with a charger, "
            "a sleeve") in first.page_content
    assert "Price: 999.00" in first.page_content
    # a catalogue row stays one chunk, headed with the product
    chunks = split_documents(docs, SETTINGS, "model")
    assert len(chunks) == 2 and chunks[0].page_content.startswith("Zen Laptop (GX-1)\n")


def test_markdown_sections_keep_their_titles(tmp_path):
    path = tmp_path / "help.md"
    path.write_text("# Delivery Help\nURL: https://example.test/help\n\nIntro text.\n\n"
                    "## Costs\n\nDelivery is free over 80.\n\nSecond paragraph.\n\n"
                    "### Islands (IS-1)\n\nIslands take longer.\n\n```\n# not a heading\n```\n",
                    encoding="utf-8")
    docs = load_markdown(path, "help.md", SETTINGS)
    assert [(d.metadata["title"], d.metadata["section"]) for d in docs] == [
        ("Delivery Help", ""), ("Delivery Help", "Costs"),
        ("Delivery Help", "Costs > Islands (IS-1)")]
    assert docs[0].metadata["url"] == "https://example.test/help"
    assert docs[1].page_content == "Delivery is free over 80.\n\nSecond paragraph."
    assert docs[2].metadata["product_id"] == "IS-1" and "# not a heading" in docs[2].page_content
    chunks = split_documents(docs, SETTINGS, "model")
    assert chunks[1].page_content.startswith("Delivery Help — Costs\n")


def test_html_sections_keep_their_titles_and_table_rows(tmp_path):
    path = tmp_path / "sizes.html"
    path.write_text(
        "<html><head><title>Sizes</title><link rel='canonical' href='https://example.test/s'>"
        "<script>var x = 1;</script></head><body><h1>Size Guide</h1><p>Measure first.</p>"
        "<h2>Shoes</h2><p>Shoes run small.</p><table><caption>Shoe sizes</caption>"
        "<tr><th>US</th><th>EU</th></tr><tr><td>9</td><td>42</td></tr></table>"
        "<h3>Wide fit</h3><ul><li>Wide is EE.</li></ul></body></html>", encoding="utf-8")
    docs = load_html(path, "sizes.html", SETTINGS)
    assert [d.metadata["section"] for d in docs] == ["", "Shoes", "Shoes > Wide fit"]
    assert all(d.metadata["title"] == "Size Guide" for d in docs)
    assert docs[0].metadata["url"] == "https://example.test/s"
    assert docs[1].page_content.split("\n\n") == ["Shoes run small.", "Shoe sizes:", "US | EU",
                                                 "9 | 42"]
    assert "var x" not in " ".join(d.page_content for d in docs)
