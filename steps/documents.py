"""Documents users write (a FederatedTask, a data contract) as pydantic models: every problem at once,
each with its field path.

``problems(err)`` turns a :class:`pydantic.ValidationError` into lines such as
``spec.edges[2].name: duplicate edge name 'a'`` or ``columns[3].min: unknown field``; a model
validator that finds problems across fields raises :class:`FieldErrors` with a path for each, and
they are reported under those paths. Shared by the task spec (``edgefed.workflows.spec``) and the
data contracts (``edgefed.steps.contracts``), so both read the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from pydantic import ValidationError

__all__ = ["FieldErrors", "Path", "format_path", "load_yaml", "problems"]

Path = tuple[str | int, ...]


def load_yaml(text: str | bytes) -> Any:
    """``yaml.safe_load`` with libyaml's C parser when PyYAML has it (same safe schema, ~8x faster: a
    contract or a round's manifest is parsed on every step or round)."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


class FieldErrors(ValueError):
    """Cross-field problems, each belonging to one field path (raise it inside a model validator)."""

    def __init__(self, problems: list[tuple[Path, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


def format_path(loc: Iterable[str | int]) -> str:
    """``("spec", "edges", 2, "name")`` -> ``spec.edges[2].name``; an empty path is ``(document)``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def problems(
    err: ValidationError,
    *,
    prefix: Path = (),
    hidden: Collection[str] = (),
    message: Callable[[dict[str, Any]], tuple[Path, str] | None] | None = None,
) -> list[str]:
    """One ``path: message`` line per error of ``err``.

    ``hidden``: path parts pydantic adds that users never wrote (a union member's tag).
    ``message(error)``: a document's own wording for an error (its path suffix and text), or None
    for the default wording.
    """
    lines = []
    for e in err.errors():
        loc: Path = tuple(p for p in e["loc"] if not (isinstance(p, str) and p in hidden))
        ctx_err = (e.get("ctx") or {}).get("error")
        if isinstance(ctx_err, FieldErrors):
            lines.extend(f"{format_path(prefix + loc + sub)}: {msg}" for sub, msg in ctx_err.problems)
            continue
        custom = message(e) if message else None
        if custom is not None:
            suffix, text = custom
            lines.append(f"{format_path(prefix + loc + suffix)}: {text}")
            continue
        text = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            text = "unknown field"
        elif e["type"] == "missing":
            text = "required field is missing"
        lines.append(f"{format_path(prefix + loc)}: {text}")
    return lines
