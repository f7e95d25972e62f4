"""Every layer at once: :func:`check_manifest`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .argo import kind_of
from .hera_schema import check_hera
from .lint import lint_manifest
from .problems import Problem, unique
from .published import ArgoSchemas, check_crd, check_schema, find_schemas


def check_manifest(
    doc: Mapping[str, Any],
    *,
    schemas: ArgoSchemas | None = None,
    templates: Iterable[Mapping[str, Any]] | None = None,
) -> list[Problem]:
    """The closed schema derived from Hera's models, Argo's published schema.json and CRDs when
    available, and Argo's semantic rules; a problem two layers find alike is reported once.

    ``schemas`` defaults to :func:`find_schemas` (``None`` when the directory holds none of the files:
    then that layer is left out; the CLI says so). ``templates``: WorkflowTemplate /
    ClusterWorkflowTemplate documents that ``templateRef`` and ``workflowTemplateRef`` may name; when
    ``None``, such references are reported as warnings (not checked).
    """
    kind, problems = kind_of(doc)
    if kind is None:
        return problems
    schemas = schemas if schemas is not None else find_schemas()
    published = [*check_schema(doc, schemas), *check_crd(doc, schemas)] if schemas is not None else []
    return unique([*check_hera(doc), *published, *lint_manifest(doc, templates=templates)])


__all__ = ["check_manifest"]
