"""What a check reports: :class:`Problem` (where, what, which layer), and jsonschema errors turned into them."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import ValidationError

#: The layer that found a problem: ``hera`` (schema derived from Hera's models, closed), ``schema``
#: (Argo's published schema.json), ``crd`` (the published CRDs, closed, with CEL rules), ``lint``.
Check = Literal["hera", "schema", "crd", "lint"]
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One finding: where (``spec.templates[2].dag.tasks[1].depends``), what, and which layer found it.

    Warnings (``severity="warning"``) flag what could not be checked; only errors fail a check.
    """

    path: str
    message: str
    check: Check = "lint"
    severity: Severity = "error"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else "warning: "
        return f"{self.path}: {prefix}{self.message} [{self.check}]"


def errors_only(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that fail a check (drops warnings)."""
    return [p for p in problems if p.severity == "error"]


def unique(problems: Iterable[Problem]) -> list[Problem]:
    """``problems`` without repeats of the same (path, message), first finder kept."""
    seen: set[tuple[str, str]] = set()
    out: list[Problem] = []
    for problem in problems:
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            out.append(problem)
    return out


_KEY = re.compile(r"^[A-Za-z_$][\w$-]*$")


def format_path(parts: Iterable[str | int]) -> str:
    """``("spec", "templates", 2, "name")`` -> ``spec.templates[2].name``; odd keys are quoted."""
    out = ""
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(str(part))}]"
    return out or "(document)"


def short(value: Any, limit: int = 60) -> str:
    """``value`` for a message: JSON (strings repr'd), cut to ``limit`` characters."""
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type(value: Any) -> str:
    """The JSON type name of a parsed YAML/JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _found(value: Any) -> str:
    return "null" if value is None else f"{json_type(value)} {short(value)}"


def problems_from(errors: Iterable[ValidationError], check: Check, kind: str) -> list[Problem]:
    """jsonschema's errors as Problems: one per unknown field (with a suggestion), missing field, bad type..."""
    problems: list[Problem] = []

    def add(parts: Iterable[str | int], message: str) -> None:
        problems.append(Problem(format_path(parts), message, check))

    for err in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        where = list(err.absolute_path)
        if err.validator == "additionalProperties" and err.validator_value is False:
            declared = list((err.schema.get("properties") or {}).keys())
            for name in err.instance:
                if name in declared:
                    continue
                hint = difflib.get_close_matches(str(name), declared, n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                add(
                    [*where, name],
                    f"unknown field {name!r}: Argo's {kind} declares no such field here, so a strict API "
                    f"server rejects it (and a lenient one drops it){suggestion}",
                )
        elif err.validator == "required":
            for name in err.validator_value:
                if isinstance(err.instance, dict) and name not in err.instance:
                    add([*where, name], "required field is missing")
        elif err.validator == "type":
            expected = (
                err.validator_value
                if isinstance(err.validator_value, str)
                else " or ".join(err.validator_value)
            )
            add(where, f"expected {expected}, found {_found(err.instance)}")
        elif err.validator == "anyOf" and all(
            isinstance(s, dict) and set(s) == {"type"} for s in err.validator_value
        ):
            kinds = " or ".join(s["type"] for s in err.validator_value)
            add(where, f"expected {kinds}, found {_found(err.instance)}")
        elif err.validator == "enum":
            add(where, f"{short(err.instance)} is not one of {', '.join(map(str, err.validator_value))}")
        elif err.validator == "const":
            add(where, f"{short(err.instance)} must be {short(err.validator_value)}")
        elif err.validator == "pattern":
            add(where, f"{short(err.instance)} does not match {err.validator_value}")
        elif err.validator in ("x-kubernetes-validations", "x-kubernetes-list-type"):
            add(where, err.message)
        else:
            message = err.message
            add(where, message if len(message) <= 200 else message[:197] + "...")
    return unique(problems)


__all__ = [
    "Check",
    "Problem",
    "Severity",
    "errors_only",
    "format_path",
    "json_type",
    "problems_from",
    "short",
    "unique",
]
