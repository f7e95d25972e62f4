"""A resource template's ``successCondition`` / ``failureCondition``, evaluated as Argo does.

Argo (``workflow/executor/resource.go``, ``WaitResource`` and ``matchConditions``) parses each condition
with Kubernetes' label-selector parser (``k8s.io/apimachinery/pkg/labels`` ``Parse``) and matches the
requirements against the object's JSON through gjson (``gjsonLabels``: a "label" ``status.phase`` is the
gjson path ``status.phase``). Hand-written because no Python library implements either; this follows
``labels/selector.go`` (lexer, parser, ``NewRequirement``'s checks, ``Requirement.Matches``/``String``):

* a condition is requirements separated by ``,`` (all must hold): ``key`` (exists), ``!key`` (does not
  exist), ``key = v``, ``key == v``, ``key != v``, ``key in (a,b)``, ``key notin (a,b)``, ``key > 3``,
  ``key < 3`` (integers only);
* keys are qualified names (``[prefix/]name``, name of at most 63 of ``[-A-Za-z0-9_.]``, starting and
  ending alphanumeric); values are label values (the same characters, at most 63, may be empty);
* ``!=`` and ``notin`` hold when the key is missing; ``=``/``in``/``>``/``<`` need it;
* the values of ``in``/``notin`` are a set, printed sorted (``status.phase in (Error,Failed)``) and the
  requirements are sorted by key, as the parser does.

``matchConditions``: any failure requirement that matches fails the node with ``failure condition
'<requirement>' evaluated true``; otherwise the node succeeds once *every* success requirement matches
(none given: at once); otherwise Argo polls the object again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import EngineError
from .gofmt import format_float, to_json

__all__ = ["ConditionError", "Requirement", "gjson_get", "matches", "parse_selector"]

_SPECIAL = set("=!(),><")
_TOKENS = {")", ",", "!", "==", "=", ">", "in", "<", "!=", "notin", "("}
_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_INT64 = re.compile(r"[-+]?\d+")
_BINARY = "in, notin, =, ==, !=, gt, lt"


class ConditionError(EngineError):
    """A condition that Kubernetes' label-selector parser rejects."""


@dataclass(frozen=True)
class Requirement:
    """One requirement of a selector (``labels.Requirement``)."""

    key: str
    operator: str  # "exists", "!", "=", "==", "!=", "in", "notin", ">", "<"
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.operator == "exists":
            return self.key
        if self.operator == "!":
            return "!" + self.key
        joined = ",".join(sorted(self.values))
        if self.operator in ("in", "notin"):
            return f"{self.key} {self.operator} ({joined})"
        return f"{self.key}{self.operator}{joined}"

    def matches(self, obj: Any) -> bool:
        found, value = gjson_get(obj, self.key)
        op = self.operator
        if op in ("in", "=", "=="):
            return found and value in self.values
        if op in ("notin", "!="):
            return not found or value not in self.values
        if op == "exists":
            return found
        if op == "!":
            return not found
        if not found or not _INT64.fullmatch(value):
            return False
        have, want = int(value), int(self.values[0])
        return have > want if op == ">" else have < want


def _lex(text: str) -> list[tuple[str, str]]:
    """(kind, literal) with kind "id", "op" or "end" (keywords ``in``/``notin`` are "op")."""
    out: list[tuple[str, str]] = []
    i = 0
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if i >= len(text):
            out.append(("end", ""))
            return out
        if text[i] in _SPECIAL:
            j = i
            best = ""
            while j < len(text) and text[j] in _SPECIAL:
                if text[i : j + 1] in _TOKENS:
                    best = text[i : j + 1]
                elif best:
                    break
                j += 1
            if not best:
                raise ConditionError(f"error expected: keyword found '{text[i:j]}'")
            out.append(("op", best))
            i += len(best)
            continue
        j = i
        while j < len(text) and text[j] not in _SPECIAL and text[j] not in " \t\r\n":
            j += 1
        word = text[i:j]
        out.append(("op" if word in ("in", "notin") else "id", word))
        i = j


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    problems = []
    if not name or len(name) > 63 or not _NAME.fullmatch(name):
        problems.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (at most 63)"
        )
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        problems.append("prefix part must be a lowercase RFC 1123 subdomain")
    if problems:
        raise ConditionError(f"key: Invalid value: {key!r}: " + "; ".join(problems))


def _check_value(key: str, value: str) -> None:
    if len(value) > 63 or not _VALUE.fullmatch(value):
        raise ConditionError(
            f"values[{key}]: Invalid value: {value!r}: a valid label must be an empty string or consist of "
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )


def parse_selector(text: str) -> list[Requirement]:
    """``labels.Parse``: the requirements of ``text``, sorted by key; :class:`ConditionError` if invalid."""
    tokens = _lex(text)
    pos = 0
    reqs: list[Requirement] = []

    def take(values: bool = True) -> tuple[str, str]:
        nonlocal pos
        kind, lit = tokens[pos]
        pos += 1
        return ("id" if values and lit in ("in", "notin") and kind == "op" else kind), lit

    def peek() -> tuple[str, str]:
        kind, lit = tokens[pos]
        return ("id" if lit in ("in", "notin") and kind == "op" else kind), lit

    def requirement() -> Requirement:
        negate = False
        kind, lit = take()
        if lit == "!" and kind == "op":
            negate = True
            kind, lit = take()
        if kind != "id":
            raise ConditionError(f"found '{lit}', expected: identifier")
        key = lit
        _check_key(key)
        nxt_kind, nxt = peek()
        if negate:  # unary: whatever follows must be ',' or the end (checked by the caller)
            return Requirement(key, "!")
        if nxt_kind == "end" or nxt == ",":
            return Requirement(key, "exists")
        _kind, op = take(values=False)
        if op not in ("in", "notin", "=", "==", "!=", ">", "<"):
            raise ConditionError(f"found '{op}', expected: {_BINARY}")
        if op in ("in", "notin"):
            values = _set_values()
        else:
            kind, lit = peek()
            if kind == "end" or lit == ",":
                values = {""}
            else:
                kind, lit = take()
                if kind != "id":
                    raise ConditionError(f"found '{lit}', expected: identifier")
                values = {lit}
        if op in (">", "<") and not all(_INT64.fullmatch(v) for v in values):
            raise ConditionError("for 'Gt', 'Lt' operators, the value must be an integer")
        for v in values:
            _check_value(key, v)
        return Requirement(key, op, tuple(sorted(values)))

    def _set_values() -> set[str]:
        kind, lit = take()
        if lit != "(":
            raise ConditionError(f"found '{lit}' expected: '('")
        kind, lit = peek()
        if lit == ")":
            take()
            return {""}
        if kind != "id" and lit != ",":
            raise ConditionError(f"found '{lit}', expected: ',', ')' or identifier")
        found: set[str] = set()
        while True:
            kind, lit = take()
            if kind == "id":
                found.add(lit)
                _k2, nxt = peek()
                if nxt == ",":
                    continue
                if nxt == ")":
                    take()
                    return found
                raise ConditionError(f"found '{nxt}', expected: ',' or ')'")
            if lit == ",":
                if not found:
                    found.add("")
                _k2, nxt = peek()
                if nxt == ")":
                    found.add("")
                    take()
                    return found
                if nxt == ",":
                    take()
                    found.add("")
                continue
            raise ConditionError(f"found '{lit}', expected: ',', or identifier")

    try:
        while True:
            kind, lit = peek()
            if kind == "end":
                break
            if kind != "id" and lit != "!":
                raise ConditionError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            reqs.append(requirement())
            kind, lit = take()
            if kind == "end":
                break
            if lit != ",":
                raise ConditionError(f"found '{lit}', expected: ',' or 'end of string'")
            kind, lit = peek()
            if kind != "id" and lit != "!":
                raise ConditionError(f"found '{lit}', expected: identifier after ','")
    except ConditionError as exc:
        raise ConditionError(f"unable to parse requirement: {exc}") from None
    return sorted(reqs, key=lambda r: r.key)


def gjson_get(obj: Any, path: str) -> tuple[bool, str]:
    """``gjson.Get(json, path)``: (exists, ``Result.String()``) for a dotted path (``\\.`` escapes a dot).

    Objects by key, arrays by index (``#`` is the length); a string is itself, ``true``/``false``, a
    number as written, ``null`` the empty string, an object or array its compact JSON text.
    """
    parts = re.split(r"(?<!\\)\.", path)
    current = obj
    for raw in parts:
        part = raw.replace("\\.", ".")
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part == "#":
            current = len(current)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, ""
    if current is None:
        return True, ""
    if isinstance(current, bool):
        return True, "true" if current else "false"
    if isinstance(current, str):
        return True, current
    if isinstance(current, int):
        return True, str(current)
    if isinstance(current, float):  # gjson: a number that is not an integer literal, as FormatFloat 'f'
        return True, format_float(current, "f")
    return True, to_json(current)


def matches(obj: Any, success: list[Requirement], failure: list[Requirement]) -> tuple[bool | None, str]:
    """Argo's ``matchConditions``: (False, message) failed, (True, "") succeeded, (None, "") not yet."""
    for req in failure:
        if req.matches(obj):
            return False, f"failure condition '{req}' evaluated true"
    if all(req.matches(obj) for req in success):
        return True, ""
    return None, ""
