"""Product knowledge of the assistant (action server side, actions env).

Documents (Markdown, HTML, PDF, text, CSV catalogues, JSON) are ingested into a signed
FAISS + BM25 index (``ingest``, ``loaders``, ``chunking``, ``embeddings``, ``lexical``,
``index_store``);
questions are answered from it (``retrieve``, ``prompt``, ``generate``, ``grounding``,
``extractive``, ``injection``), all tied together by ``assistant.KnowledgeAssistant``.
Settings: ``knowledge.yml`` at the repository root (``config``). Command line:
``python -m knowledge ingest|ask|verify``. See docs/knowledge.md.

Importing the package is cheap: modules load torch, transformers and FAISS only when
they are used.
"""
