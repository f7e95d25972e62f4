"""The JSONPath of Argo's ``jsonpath(json, path)`` expression function (not kubectl's: see :mod:`.jsonpath`).

Argo's ``util/expr/env/env.go`` ``jsonPath`` unmarshals the JSON text and queries it with
``github.com/evilmonkeyinc/jsonpath`` (v0.8.1). Hand-written because no Python library follows that
library's rules (the ``jsonpath-ng`` family returns match objects, always as lists); implemented, as
evilmonkeyinc does:

* ``$`` the root, ``.key`` and ``['key']`` / ``["key"]`` a map's key (an error if it is missing),
  ``[n]`` an array's element (``-1`` the last; an error out of range), ``.length`` the length of an array,
  map or string (unless a map has a ``length`` key);
* ``*`` / ``[*]`` every element (a map's in key order), ``[0,2]`` / ``['a','b']`` several,
  ``[start:end:step]`` a range: each gives an array, the rest of the path applied to every element
  (elements where it fails are left out).

Recursive descent ``..``, filters ``[?(...)]`` and scripts ``[(...)]`` are refused with a clear message.
Numbers come out as floats (Go's ``json.Unmarshal`` into ``any`` gives ``float64``).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["JSONPathError", "load_json", "query"]


class JSONPathError(ValueError):
    """A path outside the subset, a malformed one, or one that does not fit the data."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def load_json(text: str) -> Any:
    """``json.Unmarshal`` into ``any``: numbers as floats, no ``NaN``/``Infinity``."""
    return json.loads(text, parse_int=float, parse_constant=_no_constant)


_KEY = re.compile(r"[^.\[\]]+")
_QUOTED = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
_SUBSCRIPT = re.compile(rf"\[\s*((?:{_QUOTED}|[^\]'\"])*)\s*\]")
_RANGE = re.compile(r"(-?\d*)\s*:\s*(-?\d*)(?:\s*:\s*(-?\d*))?")

# A step: ("key", name) ("index", i) ("wild",) ("union", [keys or ints]) ("range", start, end, step) ("length",)
_Step = tuple[Any, ...]


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _subscript(body: str, path: str) -> _Step:
    body = body.strip()
    if body == "*":
        return ("wild",)
    if body.startswith("?(") or body.startswith("("):
        kind = "filters [?(...)]" if body.startswith("?") else "scripts [(...)]"
        raise JSONPathError(f"jsonpath {path!r}: {kind} are not supported by the embedded engine")
    if m := _RANGE.fullmatch(body):
        start, end, step = (int(g) if g else None for g in m.groups())
        return ("range", start, end, step)
    parts = [p.strip() for p in re.findall(rf"{_QUOTED}|[^,]+", body)]
    values: list[Any] = []
    for part in parts:
        if part[:1] in ("'", '"'):
            values.append(_unquote(part))
        elif re.fullmatch(r"-?\d+", part):
            values.append(int(part))
        else:
            raise JSONPathError(f"jsonpath {path!r}: invalid subscript [{body}]")
    if len(values) == 1:
        return ("key", values[0]) if isinstance(values[0], str) else ("index", values[0])
    return ("union", values)


def _parse(path: str) -> list[_Step]:
    if not path.startswith("$"):
        raise JSONPathError(f"jsonpath {path!r}: a path starts with '$'")
    steps: list[_Step] = []
    pos = 1
    while pos < len(path):
        if path.startswith("..", pos):
            raise JSONPathError(
                f"jsonpath {path!r}: recursive descent '..' is not supported by the embedded engine"
            )
        if path[pos] == ".":
            m = _KEY.match(path, pos + 1)
            if not m:
                raise JSONPathError(f"jsonpath {path!r}: a key is expected after '.' at {pos}")
            name = m.group()
            steps.append(("wild",) if name == "*" else ("length",) if name == "length" else ("key", name))
            pos = m.end()
        elif path[pos] == "[":
            m = _SUBSCRIPT.match(path, pos)
            if not m:
                raise JSONPathError(f"jsonpath {path!r}: unclosed '[' at {pos}")
            steps.append(_subscript(m.group(1), path))
            pos = m.end()
        else:
            raise JSONPathError(f"jsonpath {path!r}: unexpected {path[pos]!r} at {pos}")
    return steps


def _kind(v: Any) -> str:
    return (
        "map"
        if isinstance(v, dict)
        else "slice"
        if isinstance(v, list)
        else "string"
        if isinstance(v, str)
        else "invalid"
        if v is None
        else type(v).__name__
    )


def _apply(steps: list[_Step], current: Any) -> Any:
    if not steps:
        return current
    step, rest = steps[0], steps[1:]
    kind = step[0]
    if kind == "key":
        if not isinstance(current, dict):
            raise JSONPathError(f"key: invalid token target. expected [map] got [{_kind(current)}]")
        if step[1] not in current:
            raise JSONPathError(f"key: invalid token key '{step[1]}' not found")
        return _apply(rest, current[step[1]])
    if kind == "index":
        if not isinstance(current, list):
            raise JSONPathError(f"index: invalid token target. expected [array slice] got [{_kind(current)}]")
        i = step[1] + len(current) if step[1] < 0 else step[1]
        if not 0 <= i < len(current):
            raise JSONPathError("index: invalid token out of range")
        return _apply(rest, current[i])
    if kind == "length":
        if isinstance(current, dict) and "length" in current:
            return _apply(rest, current["length"])
        if not isinstance(current, dict | list | str):
            raise JSONPathError(
                f"length: invalid token target. expected [array map slice string] got [{_kind(current)}]"
            )
        return _apply(rest, float(len(current)))
    if kind == "wild":
        if isinstance(current, dict):
            elements = [current[k] for k in sorted(current)]
        elif isinstance(current, list):
            elements = list(current)
        else:
            raise JSONPathError(
                f"wildcard: invalid token target. expected [array map slice] got [{_kind(current)}]"
            )
    elif kind == "union":
        elements = [_apply([("key", v) if isinstance(v, str) else ("index", v)], current) for v in step[1]]
    else:  # range
        if not isinstance(current, list):
            raise JSONPathError(f"range: invalid token target. expected [array slice] got [{_kind(current)}]")
        start, end, stride = step[1], step[2], step[3]
        picked = current[slice(start, end)]
        elements = picked[::-1] if stride is not None and stride < 0 else picked[:: abs(stride or 1)]
    if not rest:
        return elements
    out = []
    for element in elements:
        try:
            value = _apply(rest, element)
        except JSONPathError:
            continue
        if value is not None:
            out.append(value)
    return out


def query(path: str, data: Any) -> Any:
    """``path`` applied to ``data`` (already unmarshalled); :class:`JSONPathError` if it does not fit."""
    return _apply(_parse(path.strip()), data)
