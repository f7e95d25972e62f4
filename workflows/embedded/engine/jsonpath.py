"""Kubernetes JSONPath, the subset a resource template's ``valueFrom.jsonPath`` needs.

Argo reads such an output with ``kubectl get <resource> -o jsonpath=<jsonPath>`` (``workflow/executor/
resource.go`` ``SaveResourceParameters``), i.e. ``k8s.io/client-go/util/jsonpath`` with missing keys
allowed (kubectl's ``--allow-missing-template-keys`` defaults to true). Hand-written because the Python
JSONPath libraries implement other dialects (Goessner's, RFC 9535), not this template language:

* a template is literal text with ``{...}`` actions: ``{.metadata.name}``, ``{.status.phase}``,
  ``{.status.outputs.parameters[?(@.name=="model-version")].value}``; ``$`` may start a path;
* steps: ``.field`` (``\\.`` escapes a dot in a field name), ``.*``, ``['field']``, ``[n]`` (negative
  from the end), ``[a:b]``, ``[*]``, filters ``[?(@.path OP literal)]`` with OP one of ``== != < > <=
  >=`` (literals: quoted strings, numbers, ``true``/``false``) or ``[?(@.path)]`` (exists);
* a missing key or index, or a filter that matches nothing, yields nothing: the output is the empty
  string (kubectl prints nothing; Argo stores ``""`` and does not use ``valueFrom.default`` then);
* several results are joined with spaces; strings print raw, numbers and booleans as Go's ``fmt``
  prints them (``1e+06``), objects and lists as Go's ``json.Marshal`` (compact, keys sorted).

``range``/``end``, recursive descent (``..``) and unions are not supported (:class:`JSONPathError`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import EngineError
from .gofmt import sprint, to_json

__all__ = ["JSONPathError", "evaluate_jsonpath", "parse_jsonpath"]


class JSONPathError(EngineError):
    """A JSONPath template this subset cannot parse, or kubectl would refuse to evaluate."""


@dataclass(frozen=True)
class _Field:
    name: str  # "*": every value


@dataclass(frozen=True)
class _Index:
    start: int | None
    stop: int | None
    single: bool  # [n] rather than [a:b] / [*]


@dataclass(frozen=True)
class _Filter:
    left: tuple[Any, ...]  # steps from '@'
    op: str | None  # None: exists
    right: Any  # a literal, or ("@", steps)


_Path = tuple[Any, ...]
_FIELD_RE = re.compile(r"(?:\\.|[^.\[\]{}()\s=!<>,'\"@$\\])+")
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def parse_jsonpath(template: str) -> list[str | _Path]:
    """The template as literal strings and parsed paths; :class:`JSONPathError` if unsupported."""
    parts: list[str | _Path] = []
    pos = 0
    while pos < len(template):
        start = template.find("{", pos)
        if start < 0:
            parts.append(template[pos:])
            break
        if start > pos:
            parts.append(template[pos:start])
        end = _closing_brace(template, start)
        body = template[start + 1 : end].strip()
        if body == "end" or body.startswith("range"):
            raise JSONPathError(f"jsonPath {template!r}: range/end is not supported by the embedded engine")
        parts.append(_parse_path(body, template))
        pos = end + 1
    return parts


def _closing_brace(template: str, start: int) -> int:
    quote = None
    for i in range(start + 1, len(template)):
        ch = template[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "}":
            return i
    raise JSONPathError(f"jsonPath {template!r}: unclosed action (missing '}}')")


def _parse_path(text: str, template: str) -> _Path:
    steps, rest = _parse_steps(text.removeprefix("$"), template, allow_at=False)
    if rest.strip():
        raise JSONPathError(f"jsonPath {template!r}: unexpected {rest.strip()!r}")
    return steps


def _parse_steps(text: str, template: str, *, allow_at: bool) -> tuple[_Path, str]:
    """Steps from the start of ``text``; the unparsed rest (where a filter's operator begins)."""
    steps: list[Any] = []
    i = 0

    def fail(what: str) -> JSONPathError:
        return JSONPathError(f"jsonPath {template!r}: {what} (at {text[i:]!r})")

    while i < len(text):
        ch = text[i]
        if text.startswith("..", i):
            raise fail("recursive descent '..' is not supported by the embedded engine")
        if ch == ".":
            m = _FIELD_RE.match(text, i + 1)
            if text.startswith("*", i + 1):
                steps.append(_Field("*"))
                i += 2
            elif m:
                steps.append(_Field(m.group().replace("\\.", ".")))
                i = m.end()
            else:
                raise fail("expected a field name after '.'")
        elif ch == "[":
            close, step = _parse_bracket(text, i, template)
            steps.append(step)
            i = close + 1
        elif ch.isspace() or (allow_at and ch in "=!<>)"):
            break
        else:
            raise fail("unexpected character")
    return tuple(steps), text[i:]


def _parse_bracket(text: str, i: int, template: str) -> tuple[int, Any]:
    if text.startswith("[?(", i):
        depth, j, quote = 0, i + 2, None
        while j < len(text):
            ch = text[j]
            if quote:
                quote = None if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if j >= len(text) or not text.startswith(")]", j):
            raise JSONPathError(f"jsonPath {template!r}: unclosed filter")
        return j + 1, _parse_filter(text[i + 3 : j].strip(), template)
    close = text.find("]", i)
    if close < 0:
        raise JSONPathError(f"jsonPath {template!r}: unclosed '['")
    inner = text[i + 1 : close].strip()
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return close, _Field(inner[1:-1])
    if inner == "*":
        return close, _Index(None, None, single=False)
    if re.fullmatch(r"-?\d+", inner):
        return close, _Index(int(inner), None, single=True)
    m = re.fullmatch(r"(-?\d*)\s*:\s*(-?\d*)", inner)
    if m:
        start = int(m.group(1)) if m.group(1) else None
        stop = int(m.group(2)) if m.group(2) else None
        return close, _Index(start, stop, single=False)
    raise JSONPathError(f"jsonPath {template!r}: unsupported subscript [{inner}]")


def _parse_filter(text: str, template: str) -> _Filter:
    if not text.startswith("@"):
        raise JSONPathError(f"jsonPath {template!r}: a filter must start with '@' (got {text!r})")
    left, rest = _parse_steps(text[1:], template, allow_at=True)
    rest = rest.strip()
    if not rest:
        return _Filter(left, None, None)
    m = re.match(r"(==|!=|<=|>=|<|>)\s*", rest)
    if not m:
        raise JSONPathError(f"jsonPath {template!r}: unrecognized filter operator in {text!r}")
    value = rest[m.end() :].strip()
    right: Any
    if value.startswith("@"):
        steps, tail = _parse_steps(value[1:], template, allow_at=True)
        if tail.strip():
            raise JSONPathError(f"jsonPath {template!r}: unexpected {tail.strip()!r} in filter")
        right = ("@", steps)
    elif len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        right = value[1:-1]
    elif value in ("true", "false"):
        right = value == "true"
    elif _NUMBER_RE.fullmatch(value):
        right = float(value) if any(c in value for c in ".eE") else int(value)
    else:
        raise JSONPathError(f"jsonPath {template!r}: unsupported filter value {value!r}")
    return _Filter(left, m.group(1), right)


def _walk(values: list[Any], steps: _Path, template: str) -> list[Any]:
    for step in steps:
        out: list[Any] = []
        for v in values:
            if isinstance(step, _Field):
                if isinstance(v, Mapping):
                    if step.name == "*":
                        out.extend(v[k] for k in sorted(v))
                    elif step.name in v:
                        out.append(v[step.name])
            elif isinstance(step, _Index):
                if not isinstance(v, list):
                    continue
                if step.single and step.start is not None:
                    n = step.start + len(v) if step.start < 0 else step.start
                    if 0 <= n < len(v):
                        out.append(v[n])
                else:
                    out.extend(v[step.start : step.stop])
            else:
                if not isinstance(v, list):
                    raise JSONPathError(
                        f"jsonPath {template!r}: {_print(v)} is not array or slice and cannot be filtered"
                    )
                out.extend(item for item in v if _keep(item, step, template))
        values = out
    return values


def _keep(item: Any, flt: _Filter, template: str) -> bool:
    lefts = _walk([item], flt.left, template)
    if flt.op is None:
        return bool(lefts)
    rights = _walk([item], flt.right[1], template) if isinstance(flt.right, tuple) else [flt.right]
    if not lefts or not rights:
        return False
    if len(lefts) > 1 or len(rights) > 1:
        raise JSONPathError(f"jsonPath {template!r}: can only compare one element at a time")
    left, right = lefts[0], rights[0]
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (left, right))
    if not numeric and type(left) is not type(right):
        raise JSONPathError(f"jsonPath {template!r}: incompatible types for comparison")
    if flt.op in ("==", "!="):
        return (left == right) == (flt.op == "==")
    if isinstance(left, bool) or not isinstance(left, str | int | float):
        raise JSONPathError(f"jsonPath {template!r}: invalid type for comparison")
    return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[flt.op]


def _print(value: Any) -> str:
    """kubectl's rendering of one result: objects and lists as ``json.Marshal``, the rest as ``fmt.Print``."""
    if isinstance(value, dict | list):
        return to_json(value)
    return sprint(value)


def evaluate_jsonpath(template: str, obj: Any) -> str:
    """kubectl's ``-o jsonpath=<template>`` output for ``obj`` (see the module docstring)."""
    out: list[str] = []
    for part in parse_jsonpath(template):
        if isinstance(part, str):
            out.append(part)
            continue
        out.append(" ".join(_print(v) for v in _walk([obj], part, template)))
    return "".join(out)
