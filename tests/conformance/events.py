"""Argo Events documents (``EventSource``, ``Sensor``) checked offline: :func:`check_events_document`.

Two layers, as for Argo Workflows' documents:

``schema``
    The document against its kind's definition in Argo Events' OpenAPI (``api/openapi-spec/swagger.json``,
    vendored in ``tests/conformance/argo_events/``: only the definitions EventSource and Sensor reach).
    Each object with declared ``properties`` is closed (:func:`.crd.close_schema`), so a misspelled field
    is an error. That is stricter than a cluster: Argo Events' CRDs declare ``spec`` with
    ``x-kubernetes-preserve-unknown-fields``, so the API server keeps any field and the controller's
    decoder silently ignores it. ``required`` is the swagger's (Go fields without ``omitempty``).
    ``IntOrString``, ``Int64OrString`` and ``Quantity`` are typed string only there; they are patched to
    take numbers too, as Kubernetes and the Go types do.
``lint``
    What Argo Events' controller validates and no schema knows (``pkg/reconciler/sensor/validate.go``,
    ``pkg/reconciler/eventsource/validate.go``, ``pkg/eventsources/sources/minio/validate.go``), plus
    ``metadata.name`` (required here: a Sensor names an EventSource by it).

A path with a ``schema`` problem gets no ``lint`` problem as well (a missing ``eventName`` is reported once).
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema.protocols import Validator

from .argo import API_VERSION
from .crd import CrdValidator, close_schema
from .lint.names import dns_subdomain_problem
from .problems import Problem, format_path, json_type, problems_from, short

#: The kinds checked here.
EVENTS_KINDS: tuple[str, ...] = ("EventSource", "Sensor")
#: argoproj/argo-events commit the vendored definitions come from (master, after v1.9.11).
ARGO_EVENTS_COMMIT = "6478ece495f951dde9f183ae58fde134c52f41a5"
#: The vendored definitions (see the README beside it).
VENDORED_SCHEMA = Path(__file__).resolve().parent / "argo_events" / "schema.json"

_PREFIX = "io.argoproj.events.v1alpha1."
#: Definitions typed string only in the swagger, which also take numbers.
_NUMERIC_STRINGS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": [{"type": "integer"}, {"type": "string"}],
    _PREFIX + "Int64OrString": [{"type": "integer"}, {"type": "string"}],
    "io.k8s.apimachinery.pkg.api.resource.Quantity": [{"type": "number"}, {"type": "string"}],
}
#: The controller puts the name in the label ``eventsource-name`` / ``sensor-name`` (63 at most).
_MAX_NAME = 63
#: const.go RecreateStrategyEventSources, by their key in EventSourceSpec: these run one replica with the
#: Recreate strategy and cannot share an EventSource with the others (rolling update).
_RECREATE_SOURCES = frozenset(
    {
        "amqp",
        "calendar",
        "kafka",
        "pubSub",
        "azureEventsHub",
        "azureServiceBus",
        "nats",
        "mqtt",
        "minio",
        "emitter",
        "nsq",
        "pulsar",
        "redis",
        "redisStream",
        "resource",
        "hdfs",
        "file",
        "sftp",
        "generic",
    }
)
#: sensor_types.go ArgoWorkflowOperation / KubernetesResourceOperation / TriggerParameterOperation.
_ARGO_WORKFLOW_OPERATIONS = (
    "submit",
    "submit-from",
    "suspend",
    "retry",
    "resume",
    "resubmit",
    "terminate",
    "stop",
)
_K8S_OPERATIONS = ("", "create", "patch", "update", "delete")
_PARAMETER_OPERATIONS = ("", "append", "overwrite", "prepend")
_LOGICAL_OPERATORS = ("", "and", "or")
_Path = tuple[str | int, ...]


@lru_cache(maxsize=1)
def _definitions() -> dict[str, Any]:
    """The vendored definitions, closed and patched (do not mutate)."""
    definitions = json.loads(VENDORED_SCHEMA.read_text(encoding="utf-8"))["definitions"]
    for name, alternatives in _NUMERIC_STRINGS.items():
        if name in definitions:
            patched = {k: v for k, v in definitions[name].items() if k not in ("type", "format")}
            definitions[name] = {**patched, "anyOf": copy.deepcopy(alternatives)}
    return {name: close_schema(node) for name, node in definitions.items()}


@lru_cache(maxsize=len(EVENTS_KINDS))
def events_validator(kind: str) -> Validator:
    """A closed-world validator for the whole document of ``kind`` (``EventSource`` or ``Sensor``)."""
    if kind not in EVENTS_KINDS:
        raise KeyError(f"no Argo Events definition for kind {kind!r}")
    return CrdValidator({"$ref": f"#/definitions/{_PREFIX}{kind}", "definitions": _definitions()})


def _schema_problems(doc: Mapping[str, Any], kind: str) -> list[Problem]:
    errors = list(events_validator(kind).iter_errors(doc))
    unknown = [e for e in errors if e.validator == "additionalProperties" and e.validator_value is False]
    problems = problems_from([e for e in errors if e not in unknown], "schema", kind)
    for err in unknown:
        declared = sorted((err.schema.get("properties") or {}).keys())
        for name in err.instance:
            if name in declared:
                continue
            problems.append(
                Problem(
                    format_path([*err.absolute_path, name]),
                    f"unknown field {name!r}: Argo Events' {kind} declares no such field here (the API "
                    f"server keeps it and the controller silently ignores it){_suggest(name, declared)}",
                    "schema",
                )
            )
    return problems


def _suggest(name: str, declared: list[str]) -> str:
    hint = difflib.get_close_matches(str(name), declared, n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


class _Lint:
    """Collects the ``lint`` problems of one document."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def error(self, path: Iterable[str | int], message: str) -> None:
        self.problems.append(Problem(format_path(path), message, "lint"))

    def required_string(self, obj: Mapping[str, Any], key: str, path: _Path, what: str) -> str | None:
        """``obj[key]`` when it is a non-empty string; else report ``what`` and return None."""
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
        self.error((*path, key), f"{what} (found {'nothing' if value is None else short(value)})")
        return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                yield i, item


def _metadata(lint: _Lint, doc: Mapping[str, Any]) -> None:
    meta = doc.get("metadata")
    if not isinstance(meta, Mapping):
        lint.error(("metadata",), f"expected an object with a name, found {json_type(meta)}")
        return
    name = lint.required_string(meta, "name", ("metadata",), "metadata.name is required")
    if name is not None:
        problem = dns_subdomain_problem(name, max_len=_MAX_NAME)
        if problem:
            suffix = (
                ""
                if "DNS-1123" in problem
                else " (a DNS-1123 subdomain the controller also uses as a label value)"
            )
            lint.error(("metadata", "name"), f"{name!r} {problem}{suffix}")


def _parameters(lint: _Lint, params: Any, path: _Path) -> None:
    """validate.go validateTriggerParameter."""
    for i, param in _items(params):
        where = (*path, i)
        src = param.get("src")
        if not isinstance(src, Mapping):
            lint.error((*where, "src"), "parameter source can't be empty")
        else:
            lint.required_string(
                src, "dependencyName", (*where, "src"), "parameter dependency name can't be empty"
            )
        lint.required_string(param, "dest", where, "parameter destination can't be empty")
        if param.get("operation", "") not in _PARAMETER_OPERATIONS:
            lint.error(
                (*where, "operation"),
                f"parameter operation {short(param.get('operation'))} is invalid: expected one of "
                f"{', '.join(repr(o) for o in _PARAMETER_OPERATIONS)}",
            )


def _resource_trigger(
    lint: _Lint, trigger: Mapping[str, Any], path: _Path, operations: tuple[str, ...]
) -> None:
    """validate.go validateArgoWorkflowTrigger / validateK8STrigger."""
    if not isinstance(trigger.get("source"), Mapping):
        lint.error((*path, "source"), "the trigger needs a source (the resource to act on)")
    operation = trigger.get("operation", "")
    if operation not in operations:
        lint.error(
            (*path, "operation"),
            f"unknown operation type {short(operation)}: expected one of "
            f"{', '.join(repr(o) for o in operations if o)}",
        )
    _parameters(lint, trigger.get("parameters"), (*path, "parameters"))


def _trigger(lint: _Lint, trigger: Mapping[str, Any], path: _Path) -> str | None:
    """validate.go validateTrigger; the trigger's name when it has one."""
    template = trigger.get("template")
    name = None
    if not isinstance(template, Mapping):
        lint.error((*path, "template"), "trigger template can't be nil")
    else:
        name = lint.required_string(template, "name", (*path, "template"), "trigger must define a name")
        if isinstance(template.get("argoWorkflow"), Mapping):
            _resource_trigger(
                lint, template["argoWorkflow"], (*path, "template", "argoWorkflow"), _ARGO_WORKFLOW_OPERATIONS
            )
        if isinstance(template.get("k8s"), Mapping):
            _resource_trigger(lint, template["k8s"], (*path, "template", "k8s"), _K8S_OPERATIONS)
    _parameters(lint, trigger.get("parameters"), (*path, "parameters"))
    dlq = trigger.get("dlqTrigger")
    if isinstance(dlq, Mapping):
        if not trigger.get("atLeastOnce"):
            lint.error((*path, "atLeastOnce"), "to use dlqTrigger, trigger.atLeastOnce must be set to true")
        if not dlq.get("atLeastOnce"):
            lint.error(
                (*path, "dlqTrigger", "atLeastOnce"), "atLeastOnce must be set to true within the dlqTrigger"
            )
        _trigger(lint, dlq, (*path, "dlqTrigger"))
    return name


def _sensor(lint: _Lint, spec: Mapping[str, Any]) -> None:
    """pkg/reconciler/sensor/validate.go: validateDependencies, validateTriggers."""
    deps = spec.get("dependencies")
    if not isinstance(deps, list) or not deps:
        lint.error(("spec", "dependencies"), "no event dependencies found")
    seen: dict[str, int] = {}
    for i, dep in _items(deps):
        path = ("spec", "dependencies", i)
        name = lint.required_string(dep, "name", path, "event dependency must define a name")
        lint.required_string(dep, "eventSourceName", path, "event dependency must define the eventSourceName")
        lint.required_string(dep, "eventName", path, "event dependency must define the eventName")
        if dep.get("filtersLogicalOperator", "") not in _LOGICAL_OPERATORS:
            lint.error(
                (*path, "filtersLogicalOperator"),
                f"{short(dep.get('filtersLogicalOperator'))} is not a logical operator: expected 'and' or 'or'",
            )
        if name is not None:
            if name in seen:
                lint.error(
                    (*path, "name"),
                    f"duplicate dependency name {name!r} (also spec.dependencies[{seen[name]}]): conditions "
                    "and parameters refer to dependencies by name",
                )
            seen.setdefault(name, i)
    triggers = spec.get("triggers")
    if not isinstance(triggers, list) or not triggers:
        lint.error(("spec", "triggers"), "no triggers found")
    names: dict[str, int] = {}
    for i, trigger in _items(triggers):
        name = _trigger(lint, trigger, ("spec", "triggers", i))
        if name is not None:
            if name in names:
                lint.error(
                    ("spec", "triggers", i, "template", "name"),
                    f"duplicate trigger name: {name!r} (also spec.triggers[{names[name]}])",
                )
            names.setdefault(name, i)


def _secret_selector(lint: _Lint, source: Mapping[str, Any], key: str, path: _Path) -> None:
    selector = source.get(key)
    if not isinstance(selector, Mapping):
        lint.error((*path, key), f"{key} can't be empty: a secret key selector {{name, key}}")
        return
    for field in ("name", "key"):
        lint.required_string(
            selector, field, (*path, key), f"{key}.{field} is required (a secret key selector)"
        )


def _minio(lint: _Lint, source: Mapping[str, Any], path: _Path) -> None:
    """pkg/eventsources/sources/minio/validate.go, with ``bucket`` and ``events`` required."""
    _secret_selector(lint, source, "accessKey", path)
    _secret_selector(lint, source, "secretKey", path)
    lint.required_string(source, "endpoint", path, "endpoint url can't be empty")
    bucket = source.get("bucket")
    if not isinstance(bucket, Mapping):
        lint.error((*path, "bucket"), "bucket is required (the bucket whose notifications to listen to)")
    else:
        lint.required_string(bucket, "name", (*path, "bucket"), "bucket name can't be empty")
    events = source.get("events")
    if not isinstance(events, list) or not events:
        lint.error(
            (*path, "events"), "events can't be empty: name the notifications, e.g. 's3:ObjectCreated:*'"
        )
        return
    for i, event in enumerate(events):
        if not isinstance(event, str) or not event.startswith("s3:"):
            lint.error(
                (*path, "events", i), f"unknown event {short(event)}: MinIO's event names start with 's3:'"
            )


def _event_source(lint: _Lint, spec: Mapping[str, Any]) -> None:
    """pkg/reconciler/eventsource/validate.go, and each source's own validate.go (MinIO here)."""
    source_types = [
        key
        for key, node in _definitions()[_PREFIX + "EventSourceSpec"]["properties"].items()
        if isinstance(node.get("additionalProperties"), Mapping)
    ]
    seen: dict[str, str] = {}
    present = []
    for source_type in source_types:
        sources = spec.get(source_type)
        if not isinstance(sources, Mapping) or not sources:
            continue
        present.append(source_type)
        for event_name, source in sources.items():
            path = ("spec", source_type, event_name)
            if event_name in seen:
                lint.error(
                    path,
                    f"more than one {event_name!r} found in the spec (also under {seen[event_name]}): event "
                    "names must be unique across the EventSource",
                )
            seen.setdefault(event_name, source_type)
            if source_type == "minio" and isinstance(source, Mapping):
                _minio(lint, source, path)
    recreate = [t for t in present if t in _RECREATE_SOURCES]
    rolling = [t for t in present if t not in _RECREATE_SOURCES]
    if recreate and rolling:
        lint.error(
            ("spec",),
            f"event sources with rolling update ({', '.join(rolling)}) and recreate update strategy "
            f"({', '.join(recreate)}) can not be put together",
        )


def events_problems(doc: Any) -> list[Problem]:
    """The problems of one Argo Events document, as :class:`.Problem` (``schema`` then ``lint``)."""
    if not isinstance(doc, Mapping):
        return [Problem("(document)", f"expected a mapping, found {json_type(doc)}", "lint")]
    head: list[Problem] = []
    if doc.get("apiVersion") != API_VERSION:
        head.append(Problem("apiVersion", f"{short(doc.get('apiVersion'))} must be {API_VERSION!r}", "lint"))
    kind = doc.get("kind")
    if kind not in EVENTS_KINDS:
        head.append(
            Problem(
                "kind", f"unsupported kind {short(kind)}: expected one of {', '.join(EVENTS_KINDS)}", "lint"
            )
        )
        return head
    schema = _schema_problems(doc, kind)
    lint = _Lint()
    _metadata(lint, doc)
    spec = _mapping(doc.get("spec"))
    if kind == "Sensor":
        _sensor(lint, spec)
    else:
        _event_source(lint, spec)
    flagged = {p.path for p in schema}
    return [*head, *schema, *(p for p in lint.problems if p.path not in flagged)]


def check_events_document(doc: dict) -> list[str]:
    """Human-readable problems of an Argo Events ``EventSource`` or ``Sensor`` (empty: valid).

    Each reads ``<JSON path>: <message> [<layer>]``, e.g.
    ``spec.minio.example.bucket.name: required field is missing [schema]``.
    """
    return [str(p) for p in events_problems(doc)]


__all__ = [
    "ARGO_EVENTS_COMMIT",
    "EVENTS_KINDS",
    "VENDORED_SCHEMA",
    "check_events_document",
    "events_problems",
    "events_validator",
]
