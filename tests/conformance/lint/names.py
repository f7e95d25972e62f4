"""Names: object metadata (Kubernetes' ObjectMeta validation), labels, and the names of templates,
steps, tasks, parameters and artifacts (``validate.go``)."""

from __future__ import annotations

import re
from typing import Any

from ..problems import short
from .context import Lint, Path, as_dict

# validate.go: workflowFieldNameFmt / workflowFieldMaxLength (templates, steps, DAG tasks)
_FIELD_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
_FIELD_NAME_MAX = 128
# validate.go: paramOrArtifactNameRegex (parameters, artifacts, globalName)
PARAM_NAME = re.compile(r"^[-a-zA-Z0-9_]+$")
# k8s.io/apimachinery/pkg/util/validation
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: validate.go maxCharsInObjectName / maxCharsInCronWorkflowName
_MAX_NAME = {"Workflow": 63, "WorkflowTemplate": 63, "ClusterWorkflowTemplate": 63, "CronWorkflow": 52}


def dns_subdomain_problem(value: str, *, max_len: int = 253) -> str | None:
    if len(value) > max_len:
        return f"must be at most {max_len} characters (is {len(value)})"
    if not _DNS1123_SUBDOMAIN.match(value):
        return (
            "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending "
            "with a letter or digit"
        )
    return None


def qualified_name_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or dns_subdomain_problem(prefix)):
        return f"prefix {prefix!r} must be a DNS-1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return "name part must be at most 63 characters: letters, digits, '-', '_' and '.', starting and ending alphanumeric"
    return None


def field_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid template, step or DAG task name."""
    if len(name) > _FIELD_NAME_MAX:
        return f"must be at most {_FIELD_NAME_MAX} characters"
    if not _FIELD_NAME.match(name):
        return "must consist of letters, digits and '-', starting with a letter or digit"
    return None


def metadata(lint: Lint, meta: dict[str, Any], path: Path) -> None:
    """API server: ObjectMeta validation; validate.go: name length."""
    name, generate = meta.get("name"), meta.get("generateName")
    if not name and not generate:
        lint.error(path, "metadata.name or metadata.generateName is required")
    limit = _MAX_NAME[lint.kind]
    if isinstance(name, str) and name:
        problem = dns_subdomain_problem(name)
        if problem:
            lint.error((*path, "name"), f"{name!r} {problem}")
        if len(name) > limit:
            lint.error(
                (*path, "name"),
                f"{lint.kind} names must be at most {limit} characters (is {len(name)}): Argo uses them as label values"
                + (
                    "; CronWorkflows leave room for the '-<timestamp>' suffix"
                    if lint.kind == "CronWorkflow"
                    else ""
                ),
            )
    if isinstance(generate, str) and generate:
        # apimachinery ValidateObjectMeta: a prefix is validated with a trailing '-' masked
        masked = generate[:-1] + "a" if generate.endswith("-") and len(generate) > 1 else generate
        problem = dns_subdomain_problem(masked)
        if problem:
            lint.error((*path, "generateName"), f"{generate!r} {problem} (a trailing '-' is allowed)")
    namespace = meta.get("namespace")
    if isinstance(namespace, str) and namespace and not _DNS1123_LABEL.match(namespace):
        lint.error((*path, "namespace"), f"{namespace!r} must be a DNS-1123 label")
    labels(lint, as_dict(meta.get("labels")), (*path, "labels"))
    for key in as_dict(meta.get("annotations")):
        problem = qualified_name_problem(str(key))
        if problem:
            lint.error((*path, "annotations", key), f"invalid annotation key: {problem}")


def labels(lint: Lint, given: dict[str, Any], path: Path) -> None:
    """Label keys are qualified names; literal values are label values (a ``{{...}}`` value is not checked)."""
    for key, value in given.items():
        problem = qualified_name_problem(str(key))
        if problem:
            lint.error((*path, key), f"invalid label key: {problem}")
        if (
            isinstance(value, str)
            and "{{" not in value
            and (len(value) > 63 or not _LABEL_VALUE.match(value))
        ):
            lint.error(
                (*path, key),
                f"invalid label value {short(value)}: at most 63 characters, letters, digits, '-', '_' and '.', "
                "starting and ending alphanumeric",
            )


def names(lint: Lint, items: list[Any], path: Path, *, param: bool) -> None:
    """Each item has a valid name (parameter/artifact names when ``param``), unique in the list."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        name = as_dict(item).get("name")
        if not isinstance(name, str) or not name:
            lint.error((*path, i, "name"), "name is required")
            continue
        if param and not PARAM_NAME.match(name):
            lint.error(
                (*path, i, "name"),
                f"{name!r}: parameter/artifact names consist of letters, digits, '_' and '-'",
            )
        if not param:
            problem = field_name_problem(name)
            if problem:
                lint.error((*path, i, "name"), f"{name!r} {problem}")
        if name in seen:
            lint.error((*path, i, "name"), f"{name!r} is not unique (also [{seen[name]}])")
        seen.setdefault(name, i)


__all__ = [
    "PARAM_NAME",
    "dns_subdomain_problem",
    "field_name_problem",
    "labels",
    "metadata",
    "names",
    "qualified_name_problem",
]
