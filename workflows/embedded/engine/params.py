"""``{{...}}`` substitution and the ``/tmp`` path mapping.

Argo replaces ``{{name}}`` tags (whitespace inside the braces is ignored) with values from a flat scope
such as ``workflow.parameters.x``, ``inputs.parameters.y``, ``tasks.t.outputs.result`` or ``item``. An
unresolved tag is an error where Argo resolves strictly (a node's template and a task's arguments).
An expression tag ``{{=...}}`` (``=`` right after the braces, as argo-workflows ``util/template/kind.go``
reads it) is evaluated with Argo's expression language over the same scope (:mod:`.expr`); a failure
raises :class:`~.exprlib.ExprError` (a :class:`~.errors.NodeError`) where the substitution is strict.

Path mapping: templates written for containers use absolute paths under ``/tmp`` (``/tmp/outputs/x``).
On one machine those would collide between nodes, so each node gets a private directory ``D`` and every
absolute ``/tmp`` path written *literally in the template* (container/script ``command``, ``args``, script
``source``, ``env[].value`` and ``outputs.parameters[].valueFrom.path``) is rewritten to ``D/tmp/...``
before parameters are substituted. Values that arrive through parameters are used as-is, so a caller can
still pass a real path such as a shared directory. Paths outside ``/tmp`` are never rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import UnresolvedVariableError
from .expr import ExprError, render_tag

__all__ = ["TAG_RE", "find_tags", "map_tmp_paths", "substitute", "substitute_obj"]

TAG_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)

# "/tmp" as an absolute path: not preceded by a path character, followed by "/" or a non-path character.
_TMP_RE = re.compile(r"(?<![\w.\-/~$])/tmp(?=/|$|[^\w.\-])")


def find_tags(text: str) -> list[str]:
    """The (stripped) names of every ``{{...}}`` tag in ``text``."""
    return [m.group(1).strip() for m in TAG_RE.finditer(text)]


def substitute(text: str, scope: Mapping[str, str], *, strict: bool = True, where: str = "") -> str:
    """Replace ``{{name}}`` tags from ``scope``.

    With ``strict`` an unknown name raises :class:`UnresolvedVariableError` naming every unresolved tag
    (an expression tag that fails raises :class:`~.exprlib.ExprError`); otherwise such tags are left
    untouched (for a later substitution pass).
    """
    if "{{" not in text:
        return text
    missing: list[str] = []

    def repl(m: re.Match[str]) -> str:
        if m.group(1).startswith("="):
            try:
                value = render_tag(m.group(1)[1:], scope, strict=strict)
            except ExprError as exc:
                if where:
                    exc.args = (f"{exc} (in {where})",)
                raise
            return m.group(0) if value is None else value
        key = m.group(1).strip()
        if key in scope:
            return scope[key]
        if strict and key not in missing:
            missing.append(key)
        return m.group(0)

    out = TAG_RE.sub(repl, text)
    if missing:
        raise UnresolvedVariableError(missing, where)
    return out


def substitute_obj(obj: Any, scope: Mapping[str, str], *, strict: bool = True, where: str = "") -> Any:
    """:func:`substitute` applied to every string inside a JSON-like structure (returns a copy)."""
    missing: list[str] = []

    def walk(o: Any) -> Any:
        if isinstance(o, str):
            try:
                return substitute(o, scope, strict=strict)
            except UnresolvedVariableError as exc:
                missing.extend(n for n in exc.names if n not in missing)
                return o
        if isinstance(o, list):
            return [walk(x) for x in o]
        if isinstance(o, dict):
            return {k: walk(v) for k, v in o.items()}
        return o

    result = walk(obj)
    if missing:
        raise UnresolvedVariableError(missing, where)
    return result


def map_tmp_paths(text: str, node_tmp: Path) -> str:
    """Rewrite absolute ``/tmp`` paths in ``text`` to the node's private ``node_tmp`` directory."""
    if "/tmp" not in text:
        return text
    return _TMP_RE.sub(lambda _m: str(node_tmp), text)
