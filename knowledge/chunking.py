"""Section documents become chunks: split, headed, hashed, tagged with products.

Each section is split with langchain's ``RecursiveCharacterTextSplitter``
(``ingest.chunk_size`` / ``ingest.chunk_overlap`` characters, paragraph, line,
then word boundaries); a catalogue row is one chunk, whatever its length.
Every chunk then starts with a one-line heading, e.g.
``Returns Policy — The return window`` or ``Hiking Boots (TL-HIKE-01)``, so a
chunk cut out of the middle of a page still says what it is about: the encoder
sees it, the language model sees it, and the extractive answer can name it.

A chunk's id and ``content_hash`` are the SHA-256 of the embedding model id and
the headed text: the same text under the same model is never embedded twice.
"""

from __future__ import annotations

import hashlib
import re
from typing import Dict, Iterable, List, Sequence

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from knowledge.config import IngestSettings
from knowledge.injection import instruction_like

HEADING_SEPARATOR = " — "
#: Bump when loading or splitting changes, so that ingestion re-splits unchanged files.
CHUNKING_VERSION = 3


def heading(metadata: Dict) -> str:
    """The line that introduces a chunk: title, section, product id."""
    title = metadata.get("title") or metadata.get("source") or ""
    section = metadata.get("section") or ""
    product = metadata.get("product_id")
    if metadata.get("catalogue"):
        return f"{title} ({product})" if product else title
    parts = [title] + ([section] if section and section != title else [])
    return HEADING_SEPARATOR.join(parts)


def content_hash(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\x00{text}".encode("utf-8")).hexdigest()


def split_documents(docs: Sequence[Document], settings: IngestSettings,
                    model_id: str) -> List[Document]:
    """Chunks of ``docs`` (one file's sections) with heading, hash, position and flags."""
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
        add_start_index=True,
    )
    chunks: List[Document] = []
    seen: Dict[str, int] = {}
    for doc in docs:
        head = heading(doc.metadata)
        # A catalogue row stays whole: its price and its description answer questions
        # about the same product, and a chunk without the other cannot.
        pieces = [doc] if doc.metadata.get("catalogue") else splitter.split_documents([doc])
        for piece in pieces:
            body = piece.page_content.strip()
            if not body:
                continue
            text = f"{head}\n{body}" if head else body
            meta = dict(piece.metadata)
            digest = content_hash(model_id, text)
            # The same text twice in one file (a repeated boiler-plate line) keeps two chunks
            # with distinct ids; the vector is still computed once.
            count = seen.get(digest, 0)
            seen[digest] = count + 1
            meta["content_hash"] = digest
            meta["id"] = digest if count == 0 else f"{digest}-{count}"
            meta["heading"] = head
            if instruction_like(body):
                meta["flags"] = ["instruction-like text"]
            chunks.append(Document(page_content=text, metadata=meta))
    for position, chunk in enumerate(chunks):
        chunk.metadata["chunk"] = position
    return chunks


def catalogue_names(chunks: Iterable[Document]) -> Dict[str, str]:
    """{product name: product id} from the catalogue rows among ``chunks``."""
    names: Dict[str, str] = {}
    for chunk in chunks:
        meta = chunk.metadata
        if meta.get("catalogue") and meta.get("product_id") and meta.get("title"):
            names[str(meta["title"])] = str(meta["product_id"])
    return names


def tag_products(chunks: Sequence[Document], names: Dict[str, str]) -> None:
    """Set ``products`` (sorted ids) on every chunk: the catalogue products it names.

    Recomputed over the whole index at each ingest (it is metadata, not embedded),
    so a renamed or new product is tagged in files that did not change.
    """
    if not names:
        for chunk in chunks:
            chunk.metadata["products"] = [chunk.metadata["product_id"]] if chunk.metadata.get(
                "product_id") else []
        return
    ordered = sorted(names, key=len, reverse=True)
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(n) for n in ordered) + r")\b", re.IGNORECASE)
    lookup = {n.lower(): pid for n, pid in names.items()}
    for chunk in chunks:
        found = {lookup[m.group(1).lower()] for m in pattern.finditer(chunk.page_content)}
        if chunk.metadata.get("product_id"):
            found.add(chunk.metadata["product_id"])
        chunk.metadata["products"] = sorted(found)
