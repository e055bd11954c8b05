"""One loader per file format: a file becomes section documents with their metadata.

Each loader returns langchain ``Document`` objects, one per section (Markdown
``##`` heading, HTML ``<h1>``-``<h3>``, an underlined heading of a text file, a
PDF page, a CSV row, a JSON entry). Splitting into chunks comes later
(``chunking``); what a loader must get right is the metadata every chunk keeps:

``source``      path of the file relative to the folder that was ingested
``doc_id``      what a citation or a benchmark's gold label names: the source, or
                ``products.csv#TL-HIKE-01`` for a catalogue row
``title``       the document's title (``# Title``, ``<title>``/``<h1>``, first line,
                PDF title, the product's name, the FAQ question)
``section``     the heading the text sits under ("" when none)
``url``         a ``URL:`` line, ``<link rel="canonical">``, a ``url`` column or key
``product_id``  a catalogue row's id, or the id in a heading like ``## Hiking Boots (TL-HIKE-01)``
``format``      md, html, txt, pdf, csv, json

langchain's loaders do the reading (``TextLoader``, ``JSONLoader``, ``PyPDFLoader``),
Python's ``csv`` module reads CSV rows (a quoted cell may span lines); HTML has its
own ``BaseLoader`` because ``BSHTMLLoader`` flattens
the page and loses the headings and table structure.

A file that cannot be read or parsed raises ``LoaderError`` naming the file; the
ingestion reports it and goes on with the others.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from knowledge.config import IngestSettings

FORMATS = {
    ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".txt": "txt",
    ".pdf": "pdf", ".csv": "csv", ".json": "json",
}

#: A product id in a heading, e.g. "## Hiking Boots (TL-HIKE-01)".
HEADING_PRODUCT_ID = re.compile(r"\(([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)\)\s*$")
URL_LINE = re.compile(r"^\s*URL:\s*(\S+)\s*$", re.IGNORECASE | re.MULTILINE)
MD_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
MD_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")


class LoaderError(RuntimeError):
    """A file could not be read or parsed; the message says which and why."""


def file_format(path: Path) -> Optional[str]:
    """The format name for a file ending, None for files that are not read."""
    return FORMATS.get(path.suffix.lower())


def load_file(path: Path, rel: str, settings: IngestSettings) -> List[Document]:
    """Section documents of one file, with ``source`` = ``rel``; raises ``LoaderError``."""
    fmt = file_format(path)
    if fmt is None:
        raise LoaderError(f"{rel}: unsupported file type {path.suffix!r}")
    loader: Callable[[Path, str, IngestSettings], List[Document]] = _LOADERS[fmt]
    try:
        docs = loader(path, rel, settings)
    except LoaderError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure means "corrupt file"
        raise LoaderError(f"{rel}: cannot read {fmt.upper()} file ({type(exc).__name__}: "
                          f"{_short(exc)})") from exc
    docs = [d for d in docs if d.page_content.strip()]
    if not docs:
        raise LoaderError(f"{rel}: no text found in the file")
    for doc in docs:
        doc.metadata.setdefault("doc_id", rel)
        doc.metadata["source"] = rel
        doc.metadata["format"] = fmt
        for key in ("title", "section", "url"):
            doc.metadata[key] = str(doc.metadata.get(key) or "")
    return docs


def _short(exc: Exception, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_text(path: Path) -> str:
    from langchain_community.document_loaders import TextLoader

    docs = TextLoader(str(path), encoding="utf-8").load()
    text = docs[0].page_content if docs else ""
    if "\x00" in text:
        raise LoaderError(f"{path.name}: binary data in a text file")
    return text


def _pop_url(text: str) -> Tuple[str, str]:
    """(text without its first ``URL:`` line, that URL)."""
    match = URL_LINE.search(text)
    if not match:
        return text, ""
    return text[: match.start()] + text[match.end():], match.group(1)


def _product_from_heading(heading: str) -> Optional[str]:
    match = HEADING_PRODUCT_ID.search(heading or "")
    return match.group(1) if match else None


# ----------------------------------------------------------------------------- Markdown
MARKDOWN_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3")]


def markdown_sections(text: str) -> List[Tuple[List[str], str]]:
    """[(headings h1..h3, body)] of a Markdown text, split by langchain's
    ``MarkdownHeaderTextSplitter`` (``#`` lines inside code fences are not headings);
    paragraphs stay separated by a blank line."""
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    splitter = MarkdownHeaderTextSplitter(MARKDOWN_HEADERS, strip_headers=True)
    sections = []
    for doc in splitter.split_text(text):
        heads = [str(doc.metadata.get(name, "")) for _, name in MARKDOWN_HEADERS]
        while heads and not heads[-1]:
            heads.pop()
        sections.append((heads, doc.page_content.replace("  \n", "\n\n").strip()))
    return sections


def load_markdown(path: Path, rel: str, settings: IngestSettings) -> List[Document]:
    """Markdown (read with langchain's ``TextLoader``): one document per heading section."""
    text, url = _pop_url(_read_text(path))
    text = MD_LINK.sub(r"\1 (\2)", text)
    text = MD_EMPHASIS.sub(r"\2", text)
    parts = markdown_sections(text)
    title = next((heads[0] for heads, _ in parts if heads and heads[0]), "") or path.stem
    docs = []
    for heads, body in parts:
        if not body:
            continue
        inner = [h for h in heads[1:] if h]
        section = " > ".join(inner)
        meta: Dict[str, Any] = {"title": title, "section": section, "url": url}
        product = next((p for p in map(_product_from_heading, reversed(inner)) if p), None)
        if product:
            meta["product_id"] = product
        docs.append(Document(page_content=body, metadata=meta))
    return docs


# ----------------------------------------------------------------------------- HTML
class HTMLSectionLoader(BaseLoader):
    """An HTML page as one document per ``<h1>``-``<h3>`` section.

    langchain's ``HTMLHeaderTextSplitter`` does the header-aware splitting; before it
    runs, BeautifulSoup drops scripts, styles and navigation and turns each table into
    its caption and one paragraph per row (``cell | cell``, header row first), because
    the splitter would otherwise give every cell a line of its own and a row would not
    survive chunking. The title is ``<title>`` (else the first ``<h1>``), the URL
    ``<link rel="canonical">`` (else a ``URL:`` paragraph).
    """

    HEADERS = [("h1", "h1"), ("h2", "h2"), ("h3", "h3")]
    SKIP = {"script", "style", "nav", "footer", "template", "noscript"}

    def __init__(self, file_path: str) -> None:
        self.file_path = file_path

    def lazy_load(self) -> Iterator[Document]:
        from bs4 import BeautifulSoup
        from langchain_text_splitters import HTMLHeaderTextSplitter

        raw = Path(self.file_path).read_bytes()
        if b"\x00" in raw:
            raise LoaderError(f"{Path(self.file_path).name}: binary data in an HTML file")
        soup = BeautifulSoup(raw.decode("utf-8"), "html.parser")
        if soup.find(True) is None:
            raise LoaderError(f"{Path(self.file_path).name}: no HTML elements found")
        title = soup.title.get_text(" ", strip=True) if soup.title else ""
        canonical = soup.find("link", rel="canonical")
        url = canonical.get("href", "") if canonical else ""
        h1 = soup.find("h1")
        if h1 is not None:
            title = h1.get_text(" ", strip=True) or title
        for tag in soup.find_all(list(self.SKIP)):
            tag.decompose()
        for table in soup.find_all("table"):
            replacement = soup.new_tag("div")
            for line in self._table_lines(table):
                paragraph = soup.new_tag("p")
                paragraph.string = line
                replacement.append(paragraph)
            table.replace_with(replacement)
        splitter = HTMLHeaderTextSplitter(self.HEADERS)
        sections: List[Tuple[List[str], List[str]]] = []
        for piece in splitter.split_text(str(soup.body or soup)):
            heads = [str(piece.metadata.get(name, "")) for _, name in self.HEADERS]
            while heads and not heads[-1]:
                heads.pop()
            text = piece.page_content.strip()
            if heads and text == heads[-1]:
                continue  # the heading itself
            if not sections or sections[-1][0] != heads:
                sections.append((heads, []))
            sections[-1][1].extend(p.strip() for p in text.split("  \n") if p.strip())
        for heads, lines in sections:
            body_lines = []
            for line in lines:
                match = URL_LINE.match(line)
                if match:
                    url = url or match.group(1)
                    continue
                body_lines.append(" ".join(line.split()))
            body = "\n\n".join(body_lines).strip()
            if not body:
                continue
            section = " > ".join(h for h in heads[1:] if h)
            meta: Dict[str, Any] = {"title": title, "section": section, "url": url}
            product = _product_from_heading(heads[-1] if heads else "")
            if product:
                meta["product_id"] = product
            yield Document(page_content=body, metadata=meta)

    @staticmethod
    def _table_lines(table: Any) -> List[str]:
        lines: List[str] = []
        caption = table.find("caption")
        if caption is not None:
            lines.append(caption.get_text(" ", strip=True) + ":")
        for tr in table.find_all("tr"):
            cells = [" ".join(c.get_text(" ", strip=True).split())
                     for c in tr.find_all(["th", "td"])]
            if any(cells):
                lines.append(" | ".join(cells))
        return lines


def load_html(path: Path, rel: str, settings: IngestSettings) -> List[Document]:
    return HTMLSectionLoader(str(path)).load()


# ----------------------------------------------------------------------------- plain text
def _is_heading(line: str, next_line: str) -> bool:
    stripped = line.strip()
    if not stripped or stripped.startswith(("-", "*", "•")):
        return False
    if next_line.strip() and set(next_line.strip()) <= {"-", "="} and len(next_line.strip()) >= 3:
        return True
    head = stripped.split("(")[0].strip()
    letters = [c for c in head if c.isalpha()]
    return len(letters) >= 3 and head.isupper() and len(stripped) <= 80


def load_text(path: Path, rel: str, settings: IngestSettings) -> List[Document]:
    """Plain text: the first line is the title; upper-case (or underlined) lines are headings."""
    text, url = _pop_url(_read_text(path))
    lines = text.splitlines()
    title = next((line.strip() for line in lines if line.strip()), path.stem)
    docs: List[Document] = []
    section, first = "", True
    body: List[str] = []
    skip_next = False

    def flush() -> None:
        content = "\n".join(body).strip()
        if content:
            docs.append(Document(page_content=content,
                                 metadata={"title": title, "section": section, "url": url}))

    for i, line in enumerate(lines):
        if skip_next:
            skip_next = False
            continue
        if first and line.strip():
            first = False
            if line.strip() == title:
                continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _is_heading(line, nxt) and (i == 0 or not lines[i - 1].strip()):
            flush()
            section, body = line.strip(), []
            skip_next = bool(nxt.strip()) and set(nxt.strip()) <= {"-", "="}
            continue
        body.append(line)
    flush()
    if title.isupper():
        title = title.title()
    for doc in docs:
        doc.metadata["title"] = title
    return docs


# ----------------------------------------------------------------------------- PDF
def load_pdf(path: Path, rel: str, settings: IngestSettings) -> List[Document]:
    from langchain_community.document_loaders import PyPDFLoader
    from pypdf import PdfReader

    reader = PdfReader(str(path), strict=False)
    info: Any = reader.metadata or {}
    pages = PyPDFLoader(str(path), mode="page").load()
    text_all = "\n".join(p.page_content for p in pages)
    title = str(info.get("/Title") or "").strip() or next(
        (line.strip() for line in text_all.splitlines() if line.strip()), path.stem)
    url = ""
    match = URL_LINE.search(text_all)
    if match:
        url = match.group(1)
    docs = []
    for page in pages:
        number = int(page.metadata.get("page", 0)) + 1
        content, _ = _pop_url(page.page_content)
        docs.append(Document(page_content=content.strip(), metadata={
            "title": title, "section": f"page {number}", "url": url, "page": number}))
    return docs


# ----------------------------------------------------------------------------- CSV
def load_csv(path: Path, rel: str, settings: IngestSettings) -> List[Document]:
    """One document per row (``csv`` module: quoted cells may hold commas and line breaks);
    the id column (``product_id``) makes it a catalogue row."""
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        rows = list(reader)
    if not header:
        raise LoaderError(f"{rel}: empty CSV file")
    columns = [c.strip() for c in header]
    id_col = settings.csv_id_column if settings.csv_id_column in columns else None
    title_col = settings.csv_title_column if settings.csv_title_column in columns else None
    docs = []
    for number, cells in enumerate(rows, start=1):
        if not any(c.strip() for c in cells):
            continue
        # A ragged row: missing cells are empty, extra cells (no column name) are dropped.
        row = dict(zip(columns, [c.strip() for c in cells] + [""] * (len(columns) - len(cells))))
        lines = [f"{key.replace('_', ' ').capitalize()}: {' '.join(value.split())}"
                 for key, value in row.items() if key and value and key not in (id_col,
                                                                                title_col, "url")]
        product_id = row.get(id_col, "") if id_col else ""
        title = row.get(title_col, "") if title_col else ""
        meta: Dict[str, Any] = {
            "title": title or (lines[0] if lines else f"row {number}"),
            "section": "", "url": row.get("url", ""), "row": number,
        }
        if product_id:
            meta.update(product_id=product_id, doc_id=f"{rel}#{product_id}", catalogue=True)
        else:
            meta["doc_id"] = f"{rel}#row-{number}"
        docs.append(Document(page_content="\n".join(lines), metadata=meta))
    return docs


# ----------------------------------------------------------------------------- JSON
def load_json(path: Path, rel: str, settings: IngestSettings) -> List[Document]:
    """A list of objects becomes one document per object (title/text/url keys from the
    settings, e.g. an FAQ's question/answer/url); any other JSON is indexed as text."""
    from langchain_community.document_loaders import JSONLoader

    data = json.loads(path.read_text(encoding="utf-8"))  # corrupt JSON fails here, by name
    title_key = text_key = url_key = None
    if isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        keys = set().union(*(x.keys() for x in data))
        text_key = next((k for k in settings.json_text_keys if k in keys), None)
        title_key = next((k for k in settings.json_title_keys if k in keys), None)
        url_key = next((k for k in settings.json_url_keys if k in keys), None)
    if text_key is None:
        docs = JSONLoader(str(path), jq_schema=".", text_content=False).load()
        return [Document(page_content=d.page_content,
                         metadata={"title": path.stem, "section": "", "url": ""}) for d in docs]

    def metadata(record: Dict[str, Any], meta: Dict[str, Any]) -> Dict[str, Any]:
        return {
            "title": str(record.get(title_key) or "") if title_key else "",
            "section": "",
            "url": str(record.get(url_key) or "") if url_key else "",
            "entry": meta.get("seq_num"),
        }

    loader = JSONLoader(str(path), jq_schema=".[]", content_key=text_key,
                        metadata_func=metadata, text_content=False)
    docs = loader.load()
    for doc in docs:
        if not doc.metadata["title"]:
            doc.metadata["title"] = f"{path.stem} entry {doc.metadata.get('entry')}"
    return docs


_LOADERS: Dict[str, Callable[[Path, str, IngestSettings], List[Document]]] = {
    "md": load_markdown, "html": load_html, "txt": load_text, "pdf": load_pdf,
    "csv": load_csv, "json": load_json,
}
