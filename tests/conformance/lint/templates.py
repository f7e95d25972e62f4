"""One template: its type, names, inputs and outputs, limits, images, exec sizes (``validate.go``
``validateTemplate``, ``validateLeaf``/``validateNonLeaf``, ``validateOutputs``); then its DAG or steps."""

from __future__ import annotations

import re
from typing import Any

from ..argo import TEMPLATE_TYPES, has
from .context import LEAF_POD_TYPES, Lint, Path, Template, as_dict, as_list, as_str
from .graphs import dag, steps
from .names import PARAM_NAME, field_name_problem, labels, names
from .variables import PARAM_REF, refs, template_scope

_RETRY_POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")
_OUTPUT_SOURCES = ("path", "jqFilter", "jsonPath", "parameter", "expression")
_WORKFLOW_PARAM_TAG = re.compile(r"{{\s*workflow\.parameters\.([-a-zA-Z0-9_]+)\s*}}")
#: Linux limits (4 KiB pages): one argv/env string (MAX_ARG_STRLEN, with its NUL) and all of them together.
MAX_ARG_STRLEN = 131072
ARG_MAX = 2097152


def template(lint: Lint, t: Template, *, inline: bool = False) -> None:
    """Every rule of one template, then of the DAG or steps it holds (inline templates recursively)."""
    body, path = t.body, t.path
    if not inline:
        _template_name(lint, t)
    types = [k for k in TEMPLATE_TYPES if has(body, k)]
    if not types:
        lint.error(path, f"template {t.name!r} has no type: give one of {', '.join(TEMPLATE_TYPES)}")
    elif len(types) > 1:
        lint.error(path, f"template {t.name!r} has several types ({', '.join(types)}); give exactly one")
    kind = types[0] if types else None
    leaf = kind not in ("dag", "steps")

    labels(lint, as_dict(as_dict(body.get("metadata")).get("labels")), (*path, "metadata", "labels"))
    inputs = as_dict(body.get("inputs"))
    names(lint, as_list(inputs.get("parameters")), (*path, "inputs", "parameters"), param=True)
    names(lint, as_list(inputs.get("artifacts")), (*path, "inputs", "artifacts"), param=True)
    _outputs(lint, t, kind)

    if not leaf:
        if body.get("activeDeadlineSeconds") is not None:
            lint.error(
                (*path, "activeDeadlineSeconds"), "activeDeadlineSeconds is only valid for leaf templates"
            )
        if body.get("timeout") not in (None, ""):
            lint.error((*path, "timeout"), f"{kind} templates do not support timeout")
    else:
        if body.get("parallelism") is not None:
            lint.error((*path, "parallelism"), "parallelism is only valid for steps and dag templates")
        timeout = body.get("timeout")
        if isinstance(timeout, str) and re.fullmatch(r"-?\d+", timeout.strip()):
            lint.error(
                (*path, "timeout"), f"timeout {timeout!r} needs a unit (a duration such as '{timeout}s')"
            )
    policy = as_dict(body.get("retryStrategy")).get("retryPolicy")
    if policy not in (None, "", *_RETRY_POLICIES):
        lint.error(
            (*path, "retryStrategy", "retryPolicy"),
            f"{policy!r} is not a valid RetryPolicy: one of {', '.join(_RETRY_POLICIES)}",
        )
    for k in ("container", "script"):
        if kind == k and not as_dict(body.get(k)).get("image") and not lint.default_images.get(k):
            lint.error((*path, k, "image"), f"{k}.image may not be empty")

    if kind in LEAF_POD_TYPES:
        _exec_sizes(lint, t, kind)
    scope = template_scope(lint, t, kind)

    def check_inline(inner: Template) -> None:
        template(lint, inner, inline=True)

    if kind == "dag":
        dag(lint, t, scope, check_inline=check_inline)
    elif kind == "steps":
        steps(lint, t, scope, check_inline=check_inline)
    else:
        refs(lint, body, path, scope)


def _template_name(lint: Lint, t: Template) -> None:
    path = (*t.path, "name")
    problem = field_name_problem(t.name)
    if problem:
        lint.error(path, f"template name {t.name!r} {problem}")
    elif t.type in LEAF_POD_TYPES and t.name != t.name.lower():
        # Argo accepts it, but v2 pod names are <workflow>-<template>-<hash> and must be DNS-1123
        # (argoproj/argo-workflows#9670): such a template fails when its pod is created.
        lint.error(
            path,
            f"template name {t.name!r} must be lower-case: Argo names its pods <workflow>-<template>-<hash>, "
            "and pod names are DNS-1123 subdomains",
        )


def _outputs(lint: Lint, t: Template, kind: str | None) -> None:
    """validate.go validateOutputs / validateOutputParameter."""
    outputs = as_dict(t.body.get("outputs"))
    base = (*t.path, "outputs")
    names(lint, as_list(outputs.get("parameters")), (*base, "parameters"), param=True)
    names(lint, as_list(outputs.get("artifacts")), (*base, "artifacts"), param=True)
    for i, p in enumerate(as_list(outputs.get("parameters"))):
        p = as_dict(p)
        path = (*base, "parameters", i)
        value_from = p.get("valueFrom")
        if value_from is not None and p.get("value") is not None:
            lint.error(path, "has both valueFrom and value; choose one")
            continue
        if p.get("value") is not None:
            continue
        if not isinstance(value_from, dict):
            lint.error(path, "an output parameter needs valueFrom or value")
            continue
        _value_from(lint, value_from, (*path, "valueFrom"), kind)
        g = p.get("globalName")
        if isinstance(g, str) and g and not PARAM_REF.search(g) and not PARAM_NAME.match(g):
            lint.error(
                (*path, "globalName"), f"{g!r}: parameter names consist of letters, digits, '_' and '-'"
            )


def _value_from(lint: Lint, value_from: dict[str, Any], path: Path, kind: str | None) -> None:
    """An output parameter's valueFrom: one source, the one its template type reads."""
    sources = [k for k in _OUTPUT_SOURCES if value_from.get(k)]
    if value_from.get("supplied") is not None:
        sources.append("supplied")
    if not sources:
        lint.error(path, "valueFrom needs one of: path, jqFilter, jsonPath, parameter, expression, supplied")
    elif len(sources) > 1:
        lint.error(path, f"valueFrom has several sources ({', '.join(sources)}); choose one")
    if kind in ("container", "containerSet", "script") and not value_from.get("path"):
        lint.error((*path, "path"), f"valueFrom.path is required for {kind} templates")
    elif kind == "resource" and not (value_from.get("jqFilter") or value_from.get("jsonPath")):
        lint.error(path, "valueFrom.jqFilter or jsonPath is required for resource templates")
    elif kind in ("dag", "steps") and not (value_from.get("parameter") or value_from.get("expression")):
        lint.error(path, f"valueFrom.parameter or expression is required for {kind} templates")


def _exec_sizes(lint: Lint, t: Template, kind: str) -> None:
    """Each container's command, args and env, once literal workflow parameters are substituted, must
    fit what Linux can exec (edgefed rule: Argo substitutes them verbatim, then runc exec fails with
    E2BIG and the pod never starts)."""
    containers: list[tuple[Path, Any]] = []
    if kind in ("container", "script"):
        containers.append(((*t.path, kind), t.body.get(kind)))
    if kind == "containerSet":
        for i, c in enumerate(as_list(as_dict(t.body.get("containerSet")).get("containers"))):
            containers.append(((*t.path, "containerSet", "containers", i), c))
    for key in ("initContainers", "sidecars"):
        for i, c in enumerate(as_list(t.body.get(key))):
            containers.append(((*t.path, key, i), c))
    for cpath, container in containers:
        container = as_dict(container)
        strings: list[tuple[Path, str]] = []
        for key in ("command", "args"):
            strings += [
                ((*cpath, key, i), v) for i, v in enumerate(as_list(container.get(key))) if isinstance(v, str)
            ]
        for i, env in enumerate(as_list(container.get("env"))):
            env = as_dict(env)
            if isinstance(env.get("value"), str):
                strings.append(((*cpath, "env", i, "value"), f"{as_str(env.get('name'))}={env['value']}"))
        total = 0
        for path, text in strings:
            size = len(_substitute_literals(lint, text).encode()) + 1
            total += size
            if size > MAX_ARG_STRLEN:
                lint.error(
                    path,
                    f"is {size - 1:,} bytes once literal workflow parameters are substituted; Linux cannot exec "
                    f"an argument or environment string over {MAX_ARG_STRLEN - 1:,} bytes (MAX_ARG_STRLEN), "
                    "so the pod would fail to start (E2BIG): pass such data in a file or artifact instead",
                )
        if total > ARG_MAX:
            lint.error(
                cpath, f"command, args and env total {total:,} bytes, over Linux's ARG_MAX ({ARG_MAX:,})"
            )


def _substitute_literals(lint: Lint, text: str) -> str:
    if "{{" not in text:
        return text
    return _WORKFLOW_PARAM_TAG.sub(lambda m: lint.literal_params.get(m.group(1), m.group(0)), text)


__all__ = ["ARG_MAX", "MAX_ARG_STRLEN", "template"]
