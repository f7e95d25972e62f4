"""A CRD's OpenAPI v3 schema as a closed JSON schema, with its CEL rules and list-map keys enforced.

The published ``schema.json`` has no ``additionalProperties: false``, so a misspelled field passes it
and the API server silently drops it. The CRDs' structural schemas declare every field, so each object
with declared ``properties`` is closed here (unless marked ``x-kubernetes-preserve-unknown-fields``),
which is how a server with strict field validation rejects unknown fields. Also honoured:
``x-kubernetes-int-or-string``, ``nullable``, ``x-kubernetes-list-type`` (``set``/``map`` entries must
be unique) and the CRDs' CEL rules (``x-kubernetes-validations``; each known rule text has a Python
equivalent in :data:`CEL_RULES`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from .argo import ARTIFACT_LOCATIONS, TEMPLATE_TYPES, count, has
from .problems import short

_Path = tuple[str | int, ...]
_DROPPED_KEYWORDS = frozenset({"description", "example", "externalDocs", "x-kubernetes-map-type"})


def close_schema(node: Any) -> Any:
    """Transform one OpenAPI v3 (structural) schema node into a closed JSON schema node."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS:
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: close_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = close_schema(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [close_schema(sub) for sub in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in out and "type" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def _each(pred: Callable[[Any], bool]) -> Callable[[Any], Iterator[_Path]]:
    """A rule on one object: yields ``()`` when it fails."""

    def check(obj: Any) -> Iterator[_Path]:
        if isinstance(obj, dict) and not pred(obj):
            yield ()

    return check


def _all(pred: Callable[[Any], bool]) -> Callable[[Any], Iterator[_Path]]:
    """A ``self.all(t, ...)`` rule on a list: yields the index of each failing element."""

    def check(obj: Any) -> Iterator[_Path]:
        if isinstance(obj, list):
            for i, item in enumerate(obj):
                if isinstance(item, dict) and not pred(item):
                    yield (i,)

    return check


#: The CRDs' CEL rules (``x-kubernetes-validations``), by exact rule text, as Python predicates.
#: A rule missing here is not checked; ``tests/conformance/test_published.py`` asserts every rule of
#: the four CRDs is listed, so an Argo upgrade that adds one fails loudly.
CEL_RULES: dict[str, Callable[[Any], Iterator[_Path]]] = {
    " + ".join(f"(has(self.{k}) ? 1 : 0)" for k in ARTIFACT_LOCATIONS) + " <= 1": _each(
        lambda a: count(a, ARTIFACT_LOCATIONS) <= 1
    ),
    "!has(self.realtime) || !self.realtime || !self.value.contains('resourcesDuration.')": _each(
        lambda g: not (g.get("realtime") and "resourcesDuration." in str(g.get("value", "")))
    ),
    "!has(self.depends) || !has(self.dependencies)": _each(
        lambda t: not (has(t, "depends") and has(t, "dependencies"))
    ),
    "!has(self.depends) || !has(self.continueOn)": _each(
        lambda t: not (has(t, "depends") and has(t, "continueOn"))
    ),
    "!(has(self.depends) || has(self.dependencies)) || !self.name.matches('^[0-9]')": _each(
        lambda t: (
            not (
                (has(t, "depends") or has(t, "dependencies")) and re.match(r"^[0-9]", str(t.get("name", "")))
            )
        )
    ),
    "!(has(self.count) && has(self.end))": _each(lambda s: not (has(s, "count") and has(s, "end"))),
    "(has(self.manifest) && !has(self.manifestFrom)) || (!has(self.manifest) && has(self.manifestFrom))"
    " || (!has(self.manifest) && !has(self.manifestFrom))": _each(
        lambda r: not (has(r, "manifest") and has(r, "manifestFrom"))
    ),
    "self.all(t, " + " + ".join(f"(has(t.{k}) ? 1 : 0)" for k in TEMPLATE_TYPES) + " <= 1)": _all(
        lambda t: count(t, TEMPLATE_TYPES) <= 1
    ),
    'self.all(t, !(has(t.timeout) && t.timeout != "" && (has(t.steps) || has(t.dag))))': _all(
        lambda t: not (has(t, "timeout") and t["timeout"] != "" and (has(t, "steps") or has(t, "dag")))
    ),
    "self.all(t, !(has(t.activeDeadlineSeconds) && (has(t.steps) || has(t.dag))))": _all(
        lambda t: not (has(t, "activeDeadlineSeconds") and (has(t, "steps") or has(t, "dag")))
    ),
}


def _cel_keyword(validator: Any, rules: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    for rule in rules:
        check = CEL_RULES.get(rule.get("rule", ""))
        if check is None:
            continue
        for sub in check(instance):
            yield ValidationError(rule.get("message") or f"violates {rule['rule']}", path=sub)


def _list_type_keyword(
    validator: Any, list_type: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not isinstance(instance, list) or list_type not in ("set", "map"):
        return
    if list_type == "set":
        seen: set[str] = set()
        for i, item in enumerate(instance):
            key = json.dumps(item, sort_keys=True)
            if key in seen:
                yield ValidationError(f"duplicate entry {short(item)} in a set", path=(i,))
            seen.add(key)
        return
    keys = schema.get("x-kubernetes-list-map-keys") or []
    props = (schema.get("items") or {}).get("properties") or {}
    seen_keys: set[str] = set()
    for i, item in enumerate(instance):
        if not isinstance(item, dict):
            continue
        values = tuple(item.get(k, (props.get(k) or {}).get("default")) for k in keys)
        marker = json.dumps(values)
        if marker in seen_keys:
            described = ", ".join(f"{k}={short(v)}" for k, v in zip(keys, values, strict=True))
            yield ValidationError(
                f"duplicate entry ({described}); entries are keyed by {', '.join(keys)}", path=(i,)
            )
        seen_keys.add(marker)


#: Draft 2020-12 plus the two Kubernetes extensions above.
CrdValidator = validators.extend(
    Draft202012Validator,
    {"x-kubernetes-validations": _cel_keyword, "x-kubernetes-list-type": _list_type_keyword},
)

__all__ = ["CEL_RULES", "CrdValidator", "close_schema"]
