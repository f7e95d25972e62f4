"""``python -m tests.conformance FILE...``: check Argo YAML offline. Exit 0 clean, 1 problems, 2 unreadable."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .checks import check_manifest
from .hera_schema import ARGO_VERSION
from .lint import lint_manifest
from .problems import Problem
from .published import SCHEMAS_ENV, ArgoSchemas, SchemasUnavailable, default_schemas_dir, find_schemas

PROG = "python -m tests.conformance"


def _load_documents(path: Path) -> list[Any]:
    with path.open() as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check Argo Workflow, WorkflowTemplate, ClusterWorkflowTemplate and CronWorkflow YAML "
        f"offline: a closed schema from Hera's models (Argo {ARGO_VERSION}), Argo's published schema.json and "
        "CRDs (closed world) when available, and Argo's semantic rules. WorkflowTemplates among the files "
        "resolve templateRefs.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument(
        "--schemas",
        type=Path,
        default=None,
        help=f"directory of Argo's published schema.json and CRDs, required when given (default: ${SCHEMAS_ENV} "
        "or the copy vendored in tests/conformance/argo)",
    )
    parser.add_argument("--lint-only", action="store_true", help="only Argo's semantic rules (no schemas)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Check the files' documents; print one line per problem."""
    args = _parser().parse_args(argv)
    loaded: list[tuple[str, Any]] = []
    unreadable = False
    for file in args.files:
        try:
            docs = _load_documents(file)
        except OSError as err:
            print(f"{file}: cannot be read: {err.strerror or err}", file=sys.stderr)
            unreadable = True
            continue
        except yaml.YAMLError as err:
            print(f"{file}: not valid YAML: {err}", file=sys.stderr)
            unreadable = True
            continue
        for i, doc in enumerate(docs):
            loaded.append((f"{file}" + (f"#{i + 1}" if len(docs) > 1 else ""), doc))
    if unreadable:
        return 2
    schemas: ArgoSchemas | None = None
    if not args.lint_only:
        try:
            schemas = ArgoSchemas.load(args.schemas) if args.schemas is not None else find_schemas()
        except SchemasUnavailable as err:
            print(f"error: {err} (or use --lint-only)", file=sys.stderr)
            return 2
        if schemas is None:
            print(
                f"note: no published Argo schemas at {default_schemas_dir()}; checked against Hera's models "
                f"(Argo {ARGO_VERSION}) and Argo's semantic rules",
                file=sys.stderr,
            )
    templates = [
        d
        for _, d in loaded
        if isinstance(d, Mapping) and d.get("kind") in ("WorkflowTemplate", "ClusterWorkflowTemplate")
    ]
    failed = False
    for where, doc in loaded:
        problems: list[Problem] = (
            lint_manifest(doc, templates=templates)
            if args.lint_only
            else check_manifest(doc, schemas=schemas, templates=templates)
        )
        name = ""
        if isinstance(doc, Mapping):
            meta = doc.get("metadata") if isinstance(doc.get("metadata"), Mapping) else {}
            name = f" {doc.get('kind')}/{meta.get('name') or meta.get('generateName') or '?'}"
        for problem in problems:
            print(f"{where}{name}: {problem}")
        failed = failed or any(p.severity == "error" for p in problems)
    return 1 if failed else 0


__all__ = ["PROG", "main"]
