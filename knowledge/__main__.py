"""Command line of the knowledge package (run it with the actions env's Python).

    python -m knowledge ingest PATH... [--index DIR] [--config FILE] [--rebuild]
                                      [--chunk-size N] [--chunk-overlap N] [--index-type T]
    python -m knowledge ask "question" [--product NAME] [--index DIR] [--backend B]
                                       [--k N] [--mmr] [--json]
    python -m knowledge verify [--index DIR]

``ingest`` builds or updates the index (only changed files are re-embedded) and
prints a summary; a file that cannot be read is reported and skipped, and the exit
status is 0 unless ``--strict`` is given. ``ask`` answers one question the way
the action server does. ``verify`` checks the index's signature and checksums.
Exit status: 0 ok, 1 some files skipped with ``--strict``, 2 bad settings or
index (missing, tampered, built with another encoder).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m knowledge",
                                     description="Product knowledge: ingest, ask, verify.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--index", type=Path, help="index folder (default: index.path of "
                       "knowledge.yml, .data/knowledge-index)")
        p.add_argument("--config", type=Path, help="settings file (default: knowledge.yml)")
        p.add_argument("-v", "--verbose", action="store_true")

    ingest = sub.add_parser("ingest", help="build or update the index from files and folders")
    ingest.add_argument("paths", nargs="*", type=Path,
                        help="files or folders (default: sources of knowledge.yml)")
    ingest.add_argument("--rebuild", action="store_true", help="re-embed everything")
    ingest.add_argument("--chunk-size", type=int)
    ingest.add_argument("--chunk-overlap", type=int)
    ingest.add_argument("--index-type", choices=["auto", "flat", "hnsw", "ivf"])
    ingest.add_argument("--no-progress", action="store_true")
    ingest.add_argument("--strict", action="store_true",
                        help="exit with status 1 when a file was skipped")
    common(ingest)

    ask = sub.add_parser("ask", help="answer a question from the index")
    ask.add_argument("question")
    ask.add_argument("--product", help="product the NLU found (filters the search)")
    ask.add_argument("--backend", choices=["transformers", "openai", "extractive"])
    ask.add_argument("--k", type=int)
    ask.add_argument("--mmr", action="store_true")
    ask.add_argument("--max-new-tokens", type=int)
    ask.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    common(ask)

    verify = sub.add_parser("verify", help="check the index's signature and checksums")
    common(verify)
    return parser


def _config(args: argparse.Namespace) -> Any:
    from knowledge.config import KnowledgeConfig

    overrides: Dict[str, Any] = {}
    if args.index:
        overrides.setdefault("index", {})["path"] = str(args.index.resolve())
    if getattr(args, "index_type", None):
        overrides.setdefault("index", {})["type"] = args.index_type
    ingest = {k: v for k, v in (("chunk_size", getattr(args, "chunk_size", None)),
                                ("chunk_overlap", getattr(args, "chunk_overlap", None))) if v}
    if ingest:
        overrides["ingest"] = ingest
    generation: Dict[str, Any] = {}
    if getattr(args, "backend", None):
        generation["backend"] = args.backend
    if getattr(args, "max_new_tokens", None):
        generation["max_new_tokens"] = args.max_new_tokens
    if generation:
        overrides["generation"] = generation
    if getattr(args, "mmr", False):
        overrides["retrieval"] = {"mmr": True}
    return KnowledgeConfig.load(args.config, overrides=overrides)


def _ingest(args: argparse.Namespace) -> int:
    from knowledge.ingest import Ingestor

    config = _config(args)
    paths: List[Path] = list(args.paths) or config.source_paths
    print(f"ingesting {', '.join(str(p) for p in paths)} into {config.index_path}",
          file=sys.stderr)
    report = Ingestor(config, progress=not args.no_progress).run(paths, rebuild=args.rebuild)
    print(report.summary())
    return 1 if args.strict and report.skipped else 0


def _ask(args: argparse.Namespace) -> int:
    from knowledge.assistant import KnowledgeAssistant

    config = _config(args)
    answer = KnowledgeAssistant(config).answer(args.question, product=args.product, k=args.k)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=1, ensure_ascii=False))
        return 0
    print(answer.text)
    for source in answer.sources:
        print(f"  [{source['n']}] {source['title']} — {source['url'] or source['source']}")
    print(f"  ({answer.kind}{': ' + answer.fallback_reason if answer.fallback_reason else ''})",
          file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from knowledge.index_store import read_manifest, resolve_key

    config = _config(args)
    manifest = read_manifest(config.index_path, resolve_key(config.index))
    print(f"{config.index_path}: signature and checksums ok; {manifest.get('vectors')} chunks "
          f"from {len(manifest.get('files', {}))} files, {manifest.get('index_type')} index, "
          f"encoder {manifest.get('embedding', {}).get('model')}, built {manifest.get('created')}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from knowledge.config import ConfigError
    from knowledge.index_store import IndexIntegrityError, IndexNotFound
    from knowledge.models import ModelNotFound
    from knowledge.prompt import TemplateError

    try:
        return {"ingest": _ingest, "ask": _ask, "verify": _verify}[args.command](args)
    except (ConfigError, IndexNotFound, IndexIntegrityError, ModelNotFound, TemplateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
