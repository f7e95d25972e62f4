"""Facts about Argo's documents that every conformance layer shares: kinds, template types, presence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .problems import Problem, json_type

API_VERSION = "argoproj.io/v1alpha1"
#: The kinds the checks know, in the order their CRD files are listed.
KINDS: tuple[str, ...] = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")
#: A template's type is the one of these fields it sets (the CRDs' CEL rule allows at most one).
TEMPLATE_TYPES: tuple[str, ...] = (
    "container",
    "script",
    "dag",
    "steps",
    "resource",
    "suspend",
    "containerSet",
    "data",
    "http",
    "plugin",
)
#: Where an artifact may live (the CRDs' CEL rule allows at most one).
ARTIFACT_LOCATIONS: tuple[str, ...] = (
    "s3",
    "git",
    "http",
    "artifactory",
    "hdfs",
    "raw",
    "oss",
    "gcs",
    "azure",
    "plugin",
)


def has(obj: Any, key: str) -> bool:
    """``obj`` is a mapping that sets ``key`` to something other than null (CEL's ``has()``)."""
    return isinstance(obj, Mapping) and key in obj and obj[key] is not None


def count(obj: Any, keys: Iterable[str]) -> int:
    """How many of ``keys`` ``obj`` sets."""
    return sum(1 for k in keys if has(obj, k))


def kind_of(doc: Any) -> tuple[str | None, list[Problem]]:
    """The document's kind when the checks know it; else ``None`` and the problem saying why."""
    if not isinstance(doc, Mapping):
        return None, [Problem("(document)", f"expected a mapping, found {json_type(doc)}")]
    kind = doc.get("kind")
    if kind not in KINDS:
        return None, [
            Problem(
                "kind",
                f"unsupported kind {kind!r}: expected one of {', '.join(KINDS)} (core kinds are checked elsewhere)",
            )
        ]
    return kind, []


__all__ = ["API_VERSION", "ARTIFACT_LOCATIONS", "KINDS", "TEMPLATE_TYPES", "count", "has", "kind_of"]
