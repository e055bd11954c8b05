"""Test helpers: documents of every format, including a real PDF, and rasa_sdk trackers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker


def pdf_bytes(title: str, lines: List[str]) -> bytes:
    """A minimal valid one-page PDF (Helvetica text, Info title) written byte by byte."""
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    content = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(
        f"({escape(line)}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({escape(title)}) /Producer (threadline tests) >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("latin-1")
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode("latin-1")
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode("latin-1")
    return bytes(out)


def write_format_folder(folder: Path) -> Dict[str, Path]:
    """One small document per supported format, plus two corrupt files and a README."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "md": folder / "gift-wrap.md",
        "html": folder / "guides" / "belt-sizes.html",
        "txt": folder / "guides" / "umbrella-care.txt",
        "pdf": folder / "catalogue" / "lookbook.pdf",
        "csv": folder / "catalogue" / "accessories.csv",
        "json": folder / "faq.json",
    }
    files["html"].parent.mkdir(parents=True, exist_ok=True)
    files["pdf"].parent.mkdir(parents=True, exist_ok=True)
    files["md"].write_text(
        "# Gift Wrapping\nURL: https://shop.example/help/gift-wrap\n\n"
        "Make a present of it.\n\n## Prices\n\nGift wrapping costs $4.50 per item and takes "
        "one extra business day.\n\n## Messages\n\nA gift message can be up to 200 characters.\n",
        encoding="utf-8")
    files["html"].write_text(
        "<html><head><title>Belt Sizes | Shop</title>"
        "<link rel='canonical' href='https://shop.example/help/belts'></head><body>"
        "<h1>Belt Sizes</h1><p>Pick a belt by your waist size.</p>"
        "<h2>Choosing a size</h2><p>Order your jeans waist size plus 2 inches.</p>"
        "<table><caption>Belt sizes</caption><tr><th>Belt</th><th>Waist</th></tr>"
        "<tr><td>34</td><td>32</td></tr></table></body></html>", encoding="utf-8")
    files["txt"].write_text(
        "UMBRELLA CARE\nURL: https://shop.example/help/umbrellas\n\nKeep it dry.\n\n"
        "DRYING\n------\nOpen the umbrella and let it dry for 12 hours before folding.\n",
        encoding="utf-8")
    files["pdf"].write_bytes(pdf_bytes("Autumn Lookbook", [
        "Autumn Lookbook", "The Harbour Trench Coat is water-resistant and costs 210 dollars.",
        "URL: https://shop.example/lookbook"]))
    files["csv"].write_text(
        "product_id,name,price,colours,url\n"
        "AC-UMB-01,Storm Umbrella,35.00,\"black, navy\",https://shop.example/p/AC-UMB-01\n"
        "AC-CAP-01,Wool Cap,29.00,grey,https://shop.example/p/AC-CAP-01\n", encoding="utf-8")
    files["json"].write_text(json.dumps([
        {"question": "Do you gift wrap?", "answer": "Yes, for $4.50 per item.",
         "url": "https://shop.example/faq#gift"},
        {"question": "Can I pay in instalments?", "answer": "Not at the moment.",
         "url": "https://shop.example/faq#instalments"},
    ]), encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf \x00\x01\x02")
    (folder / "broken.json").write_text('[{"question": "unterminated', encoding="utf-8")
    (folder / "README.md").write_text("# About this folder\nNot customer content.\n",
                                      encoding="utf-8")
    (folder / "notes.docx").write_bytes(b"not a supported type")
    return files


def make_tracker(text: str, *, slots: Optional[Dict[str, Any]] = None,
                 entities: Optional[List[Dict[str, Any]]] = None,
                 intent: str = "product_question",
                 earlier: Optional[List[Dict[str, Any]]] = None) -> Tracker:
    """A tracker as Rasa sends it to the action server, after the customer's message."""
    all_slots = {"product": None, "knowledge_found": None}
    all_slots.update(slots or {})
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.97},
              "entities": entities or []}
    events: List[Dict[str, Any]] = [{"event": "action", "name": "action_listen"}]
    events += earlier or []
    events.append({"event": "user", "text": text, "parse_data": latest})
    return Tracker("knowledge-test", all_slots, latest, events, False, None, {}, "action_listen")


def product_entity(value: str) -> List[Dict[str, Any]]:
    return [{"entity": "product", "value": value, "start": 0, "end": len(value),
             "extractor": "RegexEntityExtractor"}]
