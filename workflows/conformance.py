"""Offline conformance checks for the Argo documents edgefed generates (Argo Workflows v4.1.2).

No cluster runs where the documents are built, so this module checks them the way the cluster would,
in three layers. Each :class:`Problem` names its layer (``check``):

``schema``
    JSON-schema validation against Argo's ``schema.json`` (draft 2020-12), against the definition of
    the document's kind rather than the top-level ``oneOf`` (whose errors are unreadable). Two of its
    definitions are stricter than what Kubernetes and Argo accept, so they are patched in memory:
    ``IntOrString`` (typed as string only; Argo takes ``limit: 2``) and ``Quantity`` (same, for
    ``cpu: 1``). Both become integer-or-string, as the CRDs declare them.

``crd``
    ``schema.json`` has no ``additionalProperties: false``, so a misspelled field (``nodeSelecter``)
    passes it, and the API server would silently drop it. The CRDs' OpenAPI v3 schemas declare every
    field, so each object with declared ``properties`` is closed here (unless marked
    ``x-kubernetes-preserve-unknown-fields``), which is how a server with strict field validation
    rejects unknown fields. Also honoured: ``x-kubernetes-int-or-string``, ``nullable``,
    ``x-kubernetes-list-type`` (``set``/``map`` entries must be unique) and the CRDs' CEL rules
    (``x-kubernetes-validations``; each known rule text has a Python equivalent in :data:`CEL_RULES`).
    ``metadata`` is closed to the fields of ``ObjectMeta``.

``lint``
    Argo's own semantic validation (``workflow/validate/validate.go``, ``workflow/common/ancestry.go``),
    which neither schema knows; see :func:`lint_manifest` for the rules and where each comes from.

Schemas are read from a directory outside the project (:func:`default_schemas_dir`), never copied
into it, and cached per directory: a CRD is ~2.8 MB of YAML, read once per process.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import os
import re
import sys
import threading
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator

from edgefed.workflows.embedded.engine.expressions import DEPENDS_RESULTS
from edgefed.workflows.errors import EdgefedError, ExitCode

#: Environment variable naming the directory of Argo's schema.json and CRDs.
SCHEMAS_ENV = "EDGEFED_ARGO_SCHEMAS"
API_VERSION = "argoproj.io/v1alpha1"
SCHEMA_FILE = "schema.json"
#: Kind -> CRD file in the schemas directory.
CRD_FILES: dict[str, str] = {
    "Workflow": "crd-workflows.yaml",
    "WorkflowTemplate": "crd-workflowtemplates.yaml",
    "ClusterWorkflowTemplate": "crd-clusterworkflowtemplates.yaml",
    "CronWorkflow": "crd-cronworkflows.yaml",
}
KINDS: tuple[str, ...] = tuple(CRD_FILES)
_DEFINITION_PREFIX = "io.argoproj.workflow.v1alpha1."
#: schema.json definitions typed as string only, which Kubernetes and Argo also accept as integers.
_PATCHED_DEFINITIONS = (
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
)
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

Check = Literal["schema", "crd", "lint"]
Severity = Literal["error", "warning"]
_Path = tuple[str | int, ...]
#: The {{item...}} tags a place may use: a set, "any" (withParam of unknown shape), None (no fan-out).
_Items = set[str] | Literal["any"] | None


# --------------------------------------------------------------------------------------------- results


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


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------- schemas


class SchemasUnavailable(EdgefedError):
    """Argo's schema directory (or a file in it) is missing or unreadable."""

    exit_code = ExitCode.INVALID

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"Argo schemas unavailable: {detail} ({path}); set {SCHEMAS_ENV} or pass the directory that "
            f"holds {SCHEMA_FILE} and the CRDs"
        )


def default_schemas_dir() -> Path:
    """``$EDGEFED_ARGO_SCHEMAS``, else ``../shared/argo`` beside the repository."""
    env = os.environ.get(SCHEMAS_ENV)
    if env:
        return Path(env)
    # workflows/conformance.py -> repository -> its parent
    return Path(__file__).resolve().parents[2] / "shared" / "argo"


def _read_yaml(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as fh:
        return yaml.load(fh, Loader=loader)


class ArgoSchemas:
    """Argo's ``schema.json`` and CRDs, with validators built on first use and kept.

    Use :meth:`load`; instances are shared per directory, so the CRDs are parsed once per process.
    """

    def __init__(self, path: Path, schema_json: dict[str, Any]) -> None:
        self.path = path
        #: ``schema.json`` as published (do not mutate).
        self.schema_json = schema_json
        self._lock = threading.Lock()
        self._schema_validators: dict[str, Validator] = {}
        self._crds: dict[str, dict[str, Any]] = {}
        self._crd_validators: dict[str, Validator] = {}

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> ArgoSchemas:
        """The schemas in ``path`` (default :func:`default_schemas_dir`); raise :class:`SchemasUnavailable`."""
        directory = Path(path) if path is not None else default_schemas_dir()
        return _load_schemas(directory.resolve())

    def _file(self, name: str) -> Path:
        file = self.path / name
        if not file.is_file():
            raise SchemasUnavailable(self.path, f"{name} is missing")
        return file

    def crd(self, kind: str) -> dict[str, Any]:
        """The CRD document of ``kind``, as published."""
        with self._lock:
            if kind not in self._crds:
                if kind not in CRD_FILES:
                    raise KeyError(f"no CRD for kind {kind!r}")
                try:
                    self._crds[kind] = _read_yaml(self._file(CRD_FILES[kind]))
                except (OSError, yaml.YAMLError) as err:
                    raise SchemasUnavailable(self.path, f"{CRD_FILES[kind]} cannot be read: {err}") from None
            return self._crds[kind]

    def crd_schema(self, kind: str) -> dict[str, Any]:
        """The CRD's ``openAPIV3Schema`` (served version ``v1alpha1``), as published."""
        for version in self.crd(kind)["spec"]["versions"]:
            if version["name"] == "v1alpha1":
                return version["schema"]["openAPIV3Schema"]
        raise SchemasUnavailable(self.path, f"{CRD_FILES[kind]} has no v1alpha1 schema")

    def schema_validator(self, kind: str) -> Validator:
        """A validator for ``kind`` against ``schema.json``, with the IntOrString/Quantity patch."""
        with self._lock:
            if kind not in self._schema_validators:
                definitions = copy.deepcopy(self.schema_json["definitions"])
                for name in _PATCHED_DEFINITIONS:
                    patched = {k: v for k, v in definitions[name].items() if k != "type"}
                    patched["anyOf"] = [{"type": "integer"}, {"type": "string"}]
                    definitions[name] = patched
                root = {"$ref": f"#/definitions/{_DEFINITION_PREFIX}{kind}", "definitions": definitions}
                self._schema_validators[kind] = Draft202012Validator(root)
            return self._schema_validators[kind]

    def crd_validator(self, kind: str) -> Validator:
        """A closed-world validator for ``kind`` built from its CRD (see the module docstring)."""
        schema = self.crd_schema(kind)
        with self._lock:
            if kind not in self._crd_validators:
                closed = _close_schema(schema)
                meta_fields = self.schema_json["definitions"][_OBJECT_META]["properties"]
                string_map = {"type": "object", "additionalProperties": {"type": "string"}}
                closed["properties"]["metadata"] = {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        name: (string_map if name in ("labels", "annotations") else {})
                        for name in meta_fields
                    },
                }
                self._crd_validators[kind] = _CrdValidator(closed)
            return self._crd_validators[kind]


@lru_cache(maxsize=8)
def _load_schemas(directory: Path) -> ArgoSchemas:
    if not directory.is_dir():
        raise SchemasUnavailable(directory, "directory not found")
    file = directory / SCHEMA_FILE
    try:
        schema_json = json.loads(file.read_text())
    except FileNotFoundError:
        raise SchemasUnavailable(directory, f"{SCHEMA_FILE} is missing") from None
    except (OSError, ValueError) as err:
        raise SchemasUnavailable(directory, f"{SCHEMA_FILE} cannot be read: {err}") from None
    for kind in KINDS:
        if f"{_DEFINITION_PREFIX}{kind}" not in schema_json.get("definitions", {}):
            raise SchemasUnavailable(directory, f"{SCHEMA_FILE} does not define {kind}")
    for name in CRD_FILES.values():
        if not (directory / name).is_file():
            raise SchemasUnavailable(directory, f"{name} is missing")
    return ArgoSchemas(directory, schema_json)


# ---- CRD -> closed JSON schema

_DROPPED_KEYWORDS = frozenset({"description", "example", "externalDocs", "x-kubernetes-map-type"})


def _close_schema(node: Any) -> Any:
    """Transform one OpenAPI v3 (structural) schema node into a closed JSON schema node."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS:
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: _close_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _close_schema(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [_close_schema(sub) for sub in value]
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


def _has(obj: Any, key: str) -> bool:
    return isinstance(obj, dict) and key in obj and obj[key] is not None


def _count(obj: Any, keys: Iterable[str]) -> int:
    return sum(1 for k in keys if _has(obj, k))


_ARTIFACT_LOCATIONS = ("s3", "git", "http", "artifactory", "hdfs", "raw", "oss", "gcs", "azure", "plugin")
TEMPLATE_TYPES = (
    "container",
    "script",
    "dag",
    "steps",
    "resource",
    "suspend",
    "containerSet",
    "data",
    "http",
    "plugin",
)


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
#: A rule missing here is not checked; ``tests/test_conformance.py`` asserts every rule of the four CRDs
#: is listed, so an Argo upgrade that adds one fails loudly.
CEL_RULES: dict[str, Callable[[Any], Iterator[_Path]]] = {
    " + ".join(f"(has(self.{k}) ? 1 : 0)" for k in _ARTIFACT_LOCATIONS) + " <= 1": _each(
        lambda a: _count(a, _ARTIFACT_LOCATIONS) <= 1
    ),
    "!has(self.realtime) || !self.realtime || !self.value.contains('resourcesDuration.')": _each(
        lambda g: not (g.get("realtime") and "resourcesDuration." in str(g.get("value", "")))
    ),
    "!has(self.depends) || !has(self.dependencies)": _each(
        lambda t: not (_has(t, "depends") and _has(t, "dependencies"))
    ),
    "!has(self.depends) || !has(self.continueOn)": _each(
        lambda t: not (_has(t, "depends") and _has(t, "continueOn"))
    ),
    "!(has(self.depends) || has(self.dependencies)) || !self.name.matches('^[0-9]')": _each(
        lambda t: (
            not (
                (_has(t, "depends") or _has(t, "dependencies"))
                and re.match(r"^[0-9]", str(t.get("name", "")))
            )
        )
    ),
    "!(has(self.count) && has(self.end))": _each(lambda s: not (_has(s, "count") and _has(s, "end"))),
    "(has(self.manifest) && !has(self.manifestFrom)) || (!has(self.manifest) && has(self.manifestFrom))"
    " || (!has(self.manifest) && !has(self.manifestFrom))": _each(
        lambda r: not (_has(r, "manifest") and _has(r, "manifestFrom"))
    ),
    "self.all(t, " + " + ".join(f"(has(t.{k}) ? 1 : 0)" for k in TEMPLATE_TYPES) + " <= 1)": _all(
        lambda t: _count(t, TEMPLATE_TYPES) <= 1
    ),
    'self.all(t, !(has(t.timeout) && t.timeout != "" && (has(t.steps) || has(t.dag))))': _all(
        lambda t: not (_has(t, "timeout") and t["timeout"] != "" and (_has(t, "steps") or _has(t, "dag")))
    ),
    "self.all(t, !(has(t.activeDeadlineSeconds) && (has(t.steps) || has(t.dag))))": _all(
        lambda t: not (_has(t, "activeDeadlineSeconds") and (_has(t, "steps") or _has(t, "dag")))
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
                yield ValidationError(f"duplicate entry {_short(item)} in a set", path=(i,))
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
            described = ", ".join(f"{k}={_short(v)}" for k, v in zip(keys, values, strict=True))
            yield ValidationError(
                f"duplicate entry ({described}); entries are keyed by {', '.join(keys)}", path=(i,)
            )
        seen_keys.add(marker)


_CrdValidator = validators.extend(
    Draft202012Validator,
    {"x-kubernetes-validations": _cel_keyword, "x-kubernetes-list-type": _list_type_keyword},
)


# ---- turning jsonschema errors into Problems


def _json_type(value: Any) -> str:
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


def _problems_from(errors: Iterable[ValidationError], check: Check, kind: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()

    def add(parts: Iterable[str | int], message: str) -> None:
        path = format_path(parts)
        if (path, message) not in seen:
            seen.add((path, message))
            problems.append(Problem(path, message, check))

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
                    f"unknown field {name!r}: the {kind} CRD declares no such field here, so a strict API "
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
            add(where, f"expected {expected}, found {_json_type(err.instance)} {_short(err.instance)}")
        elif err.validator == "anyOf" and all(
            isinstance(s, dict) and set(s) == {"type"} for s in err.validator_value
        ):
            kinds = " or ".join(s["type"] for s in err.validator_value)
            add(where, f"expected {kinds}, found {_json_type(err.instance)} {_short(err.instance)}")
        elif err.validator == "enum":
            add(where, f"{_short(err.instance)} is not one of {', '.join(map(str, err.validator_value))}")
        elif err.validator == "const":
            add(where, f"{_short(err.instance)} must be {_short(err.validator_value)}")
        elif err.validator == "pattern":
            add(where, f"{_short(err.instance)} does not match {err.validator_value}")
        elif err.validator in ("x-kubernetes-validations", "x-kubernetes-list-type"):
            add(where, err.message)
        else:
            message = err.message
            add(where, message if len(message) <= 200 else message[:197] + "...")
    return problems


# --------------------------------------------------------------------------------------------- checks


def _kind_of(doc: Any) -> tuple[str | None, list[Problem]]:
    if not isinstance(doc, Mapping):
        return None, [Problem("(document)", f"expected a mapping, found {_json_type(doc)}")]
    kind = doc.get("kind")
    if kind not in KINDS:
        return None, [
            Problem(
                "kind",
                f"unsupported kind {kind!r}: expected one of {', '.join(KINDS)} (core kinds are checked elsewhere)",
            )
        ]
    return kind, []


def check_schema(doc: Mapping[str, Any], schemas: ArgoSchemas) -> list[Problem]:
    """Validate against ``schema.json`` (definition of the document's kind, IntOrString/Quantity patched)."""
    kind, problems = _kind_of(doc)
    if kind is None:
        return problems
    return _problems_from(schemas.schema_validator(kind).iter_errors(doc), "schema", kind)


def check_crd(doc: Mapping[str, Any], schemas: ArgoSchemas) -> list[Problem]:
    """Validate against the kind's CRD, closed-world (undeclared field = error), with its CEL rules."""
    kind, problems = _kind_of(doc)
    if kind is None:
        return problems
    return _problems_from(schemas.crd_validator(kind).iter_errors(doc), "crd", kind)


def check_manifest(
    doc: Mapping[str, Any],
    *,
    schemas: ArgoSchemas | None = None,
    templates: Iterable[Mapping[str, Any]] | None = None,
) -> list[Problem]:
    """All three layers: ``schema.json``, the CRD (closed world) and Argo's semantic rules.

    ``schemas`` defaults to :meth:`ArgoSchemas.load` (raising :class:`SchemasUnavailable` when absent).
    ``templates``: WorkflowTemplate / ClusterWorkflowTemplate documents that ``templateRef`` and
    ``workflowTemplateRef`` may name; when ``None``, such references are reported as warnings (not checked).
    """
    kind, problems = _kind_of(doc)
    if kind is None:
        return problems
    schemas = schemas if schemas is not None else ArgoSchemas.load()
    out: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for problem in [
        *check_schema(doc, schemas),
        *check_crd(doc, schemas),
        *lint_manifest(doc, templates=templates),
    ]:
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            out.append(problem)
    return out


# --------------------------------------------------------------------------------------------- lint

# validate.go: workflowFieldNameFmt / workflowFieldMaxLength (templates, steps, DAG tasks)
_FIELD_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
_FIELD_NAME_MAX = 128
# validate.go: paramOrArtifactNameRegex (parameters, artifacts, globalName)
_PARAM_NAME = re.compile(r"^[-a-zA-Z0-9_]+$")
# validate.go: paramRegex (a value that is itself a {{variable}})
_PARAM_REF = re.compile(r"{{[-a-zA-Z0-9]+(\.[-a-zA-Z0-9_]+)*}}")
# k8s.io/apimachinery/pkg/util/validation
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: validate.go maxCharsInObjectName / maxCharsInCronWorkflowName
_MAX_NAME = {"Workflow": 63, "WorkflowTemplate": 63, "ClusterWorkflowTemplate": 63, "CronWorkflow": 52}

_LEAF_POD_TYPES = ("container", "containerSet", "script", "resource", "data")
_HAS_RESULT = ("container", "containerSet", "script", "data", "http", "plugin")
_TASK_RESULTS = DEPENDS_RESULTS  # the engine executes exactly what the lint accepts
_ITEM_RESULTS = ("AnySucceeded", "AllFailed")
_RETRY_POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")
_POD_GC = ("OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess")
# common.GlobalVarValidWorkflowVariablePrefix: only tags with these prefixes are checked by Argo
_CHECKED_PREFIXES = ("item.", "steps.", "inputs.", "outputs.", "pod.", "workflow.", "tasks.")
# resolveAllVariables: resolved at run time, accepted by prefix
_RUNTIME_PREFIXES = (
    "outputs.",
    "workflow.creationTimestamp",
    "workflow.scheduledTime",
    "workflow.duration",
)
_RUNTIME_EXACT = ("tasks.name", "steps.name")
_TAG = re.compile(r"{{(.*?)}}", re.S)
_WORKFLOW_PARAM_TAG = re.compile(r"{{\s*workflow\.parameters\.([-a-zA-Z0-9_]+)\s*}}")
#: Linux limits (4 KiB pages): one argv/env string (MAX_ARG_STRLEN, with its NUL) and all of them together.
MAX_ARG_STRLEN = 131072
ARG_MAX = 2097152


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dns_subdomain_problem(value: str, *, max_len: int = 253) -> str | None:
    if len(value) > max_len:
        return f"must be at most {max_len} characters (is {len(value)})"
    if not _DNS1123_SUBDOMAIN.match(value):
        return (
            "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending "
            "with a letter or digit"
        )
    return None


def _qualified_name_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or _dns_subdomain_problem(prefix)):
        return f"prefix {prefix!r} must be a DNS-1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return "name part must be at most 63 characters: letters, digits, '-', '_' and '.', starting and ending alphanumeric"
    return None


@dataclass
class _Template:
    """A template as a task or step sees it: where it is defined and what it declares."""

    name: str
    body: dict[str, Any]
    path: _Path
    origin: str = "spec.templates"

    @property
    def type(self) -> str | None:
        for t in TEMPLATE_TYPES:
            if _has(self.body, t):
                return t
        return None

    def input_params(self) -> list[dict[str, Any]]:
        return [p for p in _l(_d(self.body.get("inputs")).get("parameters")) if isinstance(p, dict)]

    def input_artifacts(self) -> list[dict[str, Any]]:
        return [a for a in _l(_d(self.body.get("inputs")).get("artifacts")) if isinstance(a, dict)]

    def output_params(self) -> list[str]:
        return [
            _s(p.get("name"))
            for p in _l(_d(self.body.get("outputs")).get("parameters"))
            if isinstance(p, dict)
        ]

    def output_artifacts(self) -> list[str]:
        return [
            _s(a.get("name"))
            for a in _l(_d(self.body.get("outputs")).get("artifacts"))
            if isinstance(a, dict)
        ]


#: A template reference that cannot be checked (dynamic, or templateRef without templates given).
_UNKNOWN = _Template("", {}, ())


@dataclass
class _Node:
    """A DAG task or step that others may reference as ``tasks.NAME`` / ``steps.NAME``."""

    name: str
    template: _Template | None  # None: the reference itself is broken (already reported)
    fans_out: bool
    daemon: bool = False


@dataclass
class _Scope:
    """What ``{{...}}`` may name at one place (validate.go ``resolveAllVariables``)."""

    exact: set[str]
    where: str  # for messages: "template 'train'"
    inputs_of: str  # path of the inputs declaring inputs.parameters
    prefix: str = ""  # "tasks" or "steps" when inside a DAG / steps template
    nodes: dict[str, _Node] = field(default_factory=dict)  # all tasks/steps of the template
    visible: set[str] | None = None  # nodes this place may reference (None: all)
    items: _Items = None  # None: not fanning out
    item_note: str = ""
    any_workflow_output: bool = False


class _Lint:
    def __init__(self, doc: Mapping[str, Any], templates: Iterable[Mapping[str, Any]] | None) -> None:
        self.doc = doc
        self.kind = _s(doc.get("kind"))
        self.problems: list[Problem] = []
        self.index: dict[tuple[str, str], dict[str, Any]] | None = None
        if templates is not None:
            self.index = {}
            for t in templates:
                if isinstance(t, Mapping) and t.get("kind") in (
                    "WorkflowTemplate",
                    "ClusterWorkflowTemplate",
                ):
                    name = _s(_d(t.get("metadata")).get("name"))
                    self.index[(t["kind"], name)] = _d(t.get("spec"))
        self._ref_warned: set[str] = set()
        self.literal_params: dict[str, str] = {}

    # -- reporting

    def error(self, path: _Path, message: str) -> None:
        self.problems.append(Problem(format_path(path), message))

    def warn(self, path: _Path, message: str) -> None:
        self.problems.append(Problem(format_path(path), message, severity="warning"))

    # -- entry point

    def run(self) -> list[Problem]:
        doc = self.doc
        if doc.get("apiVersion") != API_VERSION:
            self.error(("apiVersion",), f"must be {API_VERSION!r}, found {_short(doc.get('apiVersion'))}")
        self.metadata(_d(doc.get("metadata")), ("metadata",))
        spec = _d(doc.get("spec"))
        if self.kind == "CronWorkflow":
            self.cron(spec, ("spec",))
            meta = _d(spec.get("workflowMetadata"))
            self.workflow_spec(_d(spec.get("workflowSpec")), ("spec", "workflowSpec"), extra_meta=meta)
        else:
            self.workflow_spec(spec, ("spec",))
        return self.problems

    # -- metadata (API server: ObjectMeta validation; validate.go: name length)

    def metadata(self, meta: dict[str, Any], path: _Path) -> None:
        name, generate = meta.get("name"), meta.get("generateName")
        if not name and not generate:
            self.error(path, "metadata.name or metadata.generateName is required")
        limit = _MAX_NAME[self.kind]
        if isinstance(name, str) and name:
            problem = _dns_subdomain_problem(name)
            if problem:
                self.error((*path, "name"), f"{name!r} {problem}")
            if len(name) > limit:
                self.error(
                    (*path, "name"),
                    f"{self.kind} names must be at most {limit} characters (is {len(name)}): Argo uses them as label values"
                    + (
                        "; CronWorkflows leave room for the '-<timestamp>' suffix"
                        if self.kind == "CronWorkflow"
                        else ""
                    ),
                )
        if isinstance(generate, str) and generate:
            # apimachinery ValidateObjectMeta: a prefix is validated with a trailing '-' masked
            masked = generate[:-1] + "a" if generate.endswith("-") and len(generate) > 1 else generate
            problem = _dns_subdomain_problem(masked)
            if problem:
                self.error((*path, "generateName"), f"{generate!r} {problem} (a trailing '-' is allowed)")
        namespace = meta.get("namespace")
        if isinstance(namespace, str) and namespace and not _DNS1123_LABEL.match(namespace):
            self.error((*path, "namespace"), f"{namespace!r} must be a DNS-1123 label")
        self.labels(_d(meta.get("labels")), (*path, "labels"))
        for key in _d(meta.get("annotations")):
            problem = _qualified_name_problem(str(key))
            if problem:
                self.error((*path, "annotations", key), f"invalid annotation key: {problem}")

    def labels(self, labels: dict[str, Any], path: _Path) -> None:
        for key, value in labels.items():
            problem = _qualified_name_problem(str(key))
            if problem:
                self.error((*path, key), f"invalid label key: {problem}")
            if (
                isinstance(value, str)
                and "{{" not in value
                and (len(value) > 63 or not _LABEL_VALUE.match(value))
            ):
                self.error(
                    (*path, key),
                    f"invalid label value {_short(value)}: at most 63 characters, letters, digits, '-', '_' and '.', "
                    "starting and ending alphanumeric",
                )

    # -- CronWorkflow (validate.go CronWorkflow)

    def cron(self, spec: dict[str, Any], path: _Path) -> None:
        schedules = _l(spec.get("schedules"))
        if "schedule" in spec:
            self.error((*path, "schedule"), "Argo v4 has no 'schedule'; use 'schedules: [...]'")
        if not schedules:
            self.error((*path, "schedules"), "a CronWorkflow needs at least one schedule")
        timezone = spec.get("timezone")
        for i, schedule in enumerate(schedules):
            if isinstance(schedule, str):
                problem = cron_schedule_problem(schedule)
                if problem:
                    self.error((*path, "schedules", i), f"cron schedule {schedule!r} is malformed: {problem}")
        if isinstance(timezone, str) and timezone and not _valid_timezone(timezone):
            self.error((*path, "timezone"), f"unknown time zone {timezone!r}")
        policy = spec.get("concurrencyPolicy")
        if policy not in (None, "", "Allow", "Forbid", "Replace"):
            self.error((*path, "concurrencyPolicy"), f"{policy!r} is not a valid concurrencyPolicy")
        deadline = spec.get("startingDeadlineSeconds")
        if isinstance(deadline, int) and deadline < 0:
            self.error((*path, "startingDeadlineSeconds"), "must not be negative")

    # -- WorkflowSpec

    def workflow_spec(
        self, spec: dict[str, Any], path: _Path, *, extra_meta: dict[str, Any] | None = None
    ) -> None:
        self.templates: dict[str, _Template] = {}
        raw_templates = _l(spec.get("templates"))
        for i, body in enumerate(raw_templates):
            if not isinstance(body, dict):
                continue
            tpath = (*path, "templates", i)
            name = body.get("name")
            if not isinstance(name, str) or not name:
                self.error((*tpath, "name"), "a template needs a name")
                continue
            if name in self.templates:
                self.error(
                    (*tpath, "name"),
                    f"template name {name!r} is not unique (also {format_path(self.templates[name].path)})",
                )
                continue
            self.templates[name] = _Template(name, body, tpath)

        ref = spec.get("workflowTemplateRef")
        ref_spec: dict[str, Any] | None = None
        if isinstance(ref, dict):
            if raw_templates:
                self.error(
                    (*path, "templates"), "a Workflow with workflowTemplateRef must not define templates"
                )
            ref_spec = self.workflow_template_ref(ref, (*path, "workflowTemplateRef"))

        # globals (validate.go Workflow: globalParams)
        params = [p for p in _l(_d(spec.get("arguments")).get("parameters")) if isinstance(p, dict)]
        self.arguments(_d(spec.get("arguments")), (*path, "arguments"), allow_empty=True)
        param_names = {_s(p.get("name")) for p in params}
        self.literal_params = {
            _s(p.get("name")): p["value"] for p in params if isinstance(p.get("value"), str)
        }
        inherited: list[dict[str, Any]] = []
        if ref_spec is not None:
            inherited = [
                p
                for p in _l(_d(ref_spec.get("arguments")).get("parameters"))
                if isinstance(p, dict) and _s(p.get("name")) not in param_names
            ]
            param_names |= {_s(p.get("name")) for p in inherited}
        if self.kind in ("Workflow", "CronWorkflow"):
            # validate.go validateArgumentsValues (allowEmptyValues is false when a Workflow is submitted)
            for i, p in enumerate(_l(_d(spec.get("arguments")).get("parameters"))):
                if isinstance(p, dict) and p.get("value") is None and p.get("valueFrom") is None:
                    self.warn(
                        (*path, "arguments", "parameters", i),
                        f"parameter {_s(p.get('name'))!r} has no value: Argo rejects the Workflow unless it is "
                        "supplied at submission (argo submit -p)",
                    )
            for p in inherited:
                if p.get("value") is None and p.get("valueFrom") is None:
                    self.warn(
                        (*path, "arguments"),
                        f"parameter {_s(p.get('name'))!r} of the referenced WorkflowTemplate has no value and this "
                        "Workflow does not set one: Argo rejects it unless supplied at submission (argo submit -p)",
                    )
        meta = _d(self.doc.get("metadata"))
        wf_meta = _d(spec.get("workflowMetadata"))
        exact = {
            "workflow.name",
            "workflow.namespace",
            "workflow.mainEntrypoint",
            "workflow.serviceAccountName",
            "workflow.uid",
            "workflow.status",
            "workflow.annotations",
            "workflow.annotations.json",
            "workflow.labels",
            "workflow.labels.json",
        }
        if param_names:
            exact |= {"workflow.parameters", "workflow.parameters.json"}
            exact |= {f"workflow.parameters.{n}" for n in param_names}
        for source in (meta, wf_meta, extra_meta or {}):
            exact |= {f"workflow.annotations.{k}" for k in _d(source.get("annotations"))}
            exact |= {f"workflow.labels.{k}" for k in _d(source.get("labels"))}
            exact |= {f"workflow.labels.{k}" for k in _d(source.get("labelsFrom"))}
        if spec.get("priority") is not None:
            exact.add("workflow.priority")
        if spec.get("onExit") or _d(spec.get("hooks")).get("exit"):
            exact.add("workflow.failures")
        self.any_workflow_output = False
        for t in self.templates.values():
            for kind, names in (
                ("parameters", _l(_d(t.body.get("outputs")).get("parameters"))),
                ("artifacts", _l(_d(t.body.get("outputs")).get("artifacts"))),
            ):
                for out in names:
                    g = _s(_d(out).get("globalName"))
                    if g and _PARAM_REF.search(g):
                        self.any_workflow_output = True
                    elif g:
                        exact.add(f"workflow.outputs.{kind}.{g}")
        self.globals = exact

        # entrypoint (validate.go: "spec.entrypoint is required", "template name '%s' undefined")
        entrypoint = spec.get("entrypoint")
        needs_entrypoint = (
            self.kind in ("Workflow", "CronWorkflow") and ref_spec is None and not isinstance(ref, dict)
        )
        if not entrypoint:
            if needs_entrypoint:
                self.error((*path, "entrypoint"), "spec.entrypoint is required")
        elif isinstance(entrypoint, str) and not isinstance(ref, dict):
            target = self.templates.get(entrypoint)
            if target is None:
                self.error(
                    (*path, "entrypoint"),
                    f"entrypoint {entrypoint!r} is not a template of this document{self._names_hint(entrypoint)}",
                )
            elif self.kind in ("Workflow", "CronWorkflow"):
                self.supplied_by_workflow(target, params, (*path, "entrypoint"))
        elif isinstance(entrypoint, str) and ref_spec is not None:
            names = {_s(_d(t).get("name")) for t in _l(ref_spec.get("templates"))}
            if entrypoint not in names:
                self.error(
                    (*path, "entrypoint"),
                    f"entrypoint {entrypoint!r} is not a template of the referenced WorkflowTemplate",
                )

        on_exit = spec.get("onExit")
        if isinstance(on_exit, str) and on_exit and not isinstance(ref, dict):
            target = self.templates.get(on_exit)
            if target is None:
                self.error(
                    (*path, "onExit"),
                    f"onExit template {on_exit!r} is not a template of this document{self._names_hint(on_exit)}",
                )
            elif self.kind in ("Workflow", "CronWorkflow"):
                self.supplied_by_workflow(target, params, (*path, "onExit"))
        self.hooks(_d(spec.get("hooks")), (*path, "hooks"))
        self.labels(_d(wf_meta.get("labels")), (*path, "workflowMetadata", "labels"))
        self.labels(_d(_d(spec.get("podMetadata")).get("labels")), (*path, "podMetadata", "labels"))

        pod_gc = _d(spec.get("podGC")).get("strategy")
        if pod_gc not in (None, "", *_POD_GC):
            self.error(
                (*path, "podGC", "strategy"),
                f"unknown podGC strategy {pod_gc!r}: one of {', '.join(_POD_GC)}",
            )

        defaults = _d(spec.get("templateDefaults"))
        self.default_images = {k: bool(_d(defaults.get(k)).get("image")) for k in ("container", "script")}
        for t in self.templates.values():
            self.template(t)

    def workflow_template_ref(self, ref: dict[str, Any], path: _Path) -> dict[str, Any] | None:
        name = _s(ref.get("name"))
        kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") else "WorkflowTemplate"
        if self.index is None:
            self.warn(path, f"{kind} {name!r} not checked: no WorkflowTemplates were given (out of scope)")
            return None
        spec = self.index.get((kind, name))
        if spec is None:
            self.error((*path, "name"), f"{kind} {name!r} is not among the given templates")
        return spec

    def supplied_by_workflow(self, target: _Template, params: list[dict[str, Any]], path: _Path) -> None:
        """Entrypoint/onExit inputs come from spec.arguments (validate.go: ProcessArgs with wfArgs)."""
        given = {_s(p.get("name")) for p in params}
        for p in target.input_params():
            name = _s(p.get("name"))
            if name and name not in given and not _input_has_value(p):
                self.error(
                    path,
                    f"template {target.name!r} needs input parameter {name!r} (no default), which spec.arguments.parameters does not supply",
                )

    def _names_hint(self, name: str) -> str:
        hint = difflib.get_close_matches(name, list(self.templates), n=1)
        return f"; did you mean {hint[0]!r}?" if hint else ""

    # -- one template

    def template(self, t: _Template, *, inline: bool = False) -> None:
        body, path = t.body, t.path
        if not inline:
            self.template_name(t)
        types = [k for k in TEMPLATE_TYPES if _has(body, k)]
        if not types:
            self.error(path, f"template {t.name!r} has no type: give one of {', '.join(TEMPLATE_TYPES)}")
        elif len(types) > 1:
            self.error(path, f"template {t.name!r} has several types ({', '.join(types)}); give exactly one")
        kind = types[0] if types else None
        leaf = kind not in ("dag", "steps")

        self.labels(_d(_d(body.get("metadata")).get("labels")), (*path, "metadata", "labels"))
        inputs = _d(body.get("inputs"))
        self.names(_l(inputs.get("parameters")), (*path, "inputs", "parameters"), param=True)
        self.names(_l(inputs.get("artifacts")), (*path, "inputs", "artifacts"), param=True)
        self.outputs(t, kind)

        if not leaf:
            if body.get("activeDeadlineSeconds") is not None:
                self.error(
                    (*path, "activeDeadlineSeconds"), "activeDeadlineSeconds is only valid for leaf templates"
                )
            if body.get("timeout") not in (None, ""):
                self.error((*path, "timeout"), f"{kind} templates do not support timeout")
        else:
            if body.get("parallelism") is not None:
                self.error((*path, "parallelism"), "parallelism is only valid for steps and dag templates")
            timeout = body.get("timeout")
            if isinstance(timeout, str) and re.fullmatch(r"-?\d+", timeout.strip()):
                self.error(
                    (*path, "timeout"), f"timeout {timeout!r} needs a unit (a duration such as '{timeout}s')"
                )
        policy = _d(body.get("retryStrategy")).get("retryPolicy")
        if policy not in (None, "", *_RETRY_POLICIES):
            self.error(
                (*path, "retryStrategy", "retryPolicy"),
                f"{policy!r} is not a valid RetryPolicy: one of {', '.join(_RETRY_POLICIES)}",
            )
        for k in ("container", "script"):
            if kind == k and not _d(body.get(k)).get("image") and not self.default_images.get(k):
                self.error((*path, k, "image"), f"{k}.image may not be empty")

        if kind in _LEAF_POD_TYPES:
            self.exec_sizes(t, kind)
        scope = self.template_scope(t, kind)
        if kind == "dag":
            self.dag(t, scope)
        elif kind == "steps":
            self.steps(t, scope)
        else:
            self.refs(body, path, scope)

    def exec_sizes(self, t: _Template, kind: str) -> None:
        """Each container's command, args and env, once literal workflow parameters are substituted,
        must fit what Linux can exec (edgefed rule: Argo substitutes them verbatim, then runc exec fails
        with E2BIG and the pod never starts)."""
        containers: list[tuple[_Path, Any]] = []
        if kind in ("container", "script"):
            containers.append(((*t.path, kind), t.body.get(kind)))
        if kind == "containerSet":
            for i, c in enumerate(_l(_d(t.body.get("containerSet")).get("containers"))):
                containers.append(((*t.path, "containerSet", "containers", i), c))
        for key in ("initContainers", "sidecars"):
            for i, c in enumerate(_l(t.body.get(key))):
                containers.append(((*t.path, key, i), c))
        for cpath, container in containers:
            container = _d(container)
            strings: list[tuple[_Path, str]] = []
            for key in ("command", "args"):
                strings += [
                    ((*cpath, key, i), v) for i, v in enumerate(_l(container.get(key))) if isinstance(v, str)
                ]
            for i, env in enumerate(_l(container.get("env"))):
                env = _d(env)
                if isinstance(env.get("value"), str):
                    strings.append(((*cpath, "env", i, "value"), f"{_s(env.get('name'))}={env['value']}"))
            total = 0
            for path, text in strings:
                size = len(self.substitute_literals(text).encode()) + 1
                total += size
                if size > MAX_ARG_STRLEN:
                    self.error(
                        path,
                        f"is {size - 1:,} bytes once literal workflow parameters are substituted; Linux cannot exec "
                        f"an argument or environment string over {MAX_ARG_STRLEN - 1:,} bytes (MAX_ARG_STRLEN), "
                        "so the pod would fail to start (E2BIG): pass such data in a file or artifact instead",
                    )
            if total > ARG_MAX:
                self.error(
                    cpath, f"command, args and env total {total:,} bytes, over Linux's ARG_MAX ({ARG_MAX:,})"
                )

    def substitute_literals(self, text: str) -> str:
        if "{{" not in text:
            return text
        return _WORKFLOW_PARAM_TAG.sub(lambda m: self.literal_params.get(m.group(1), m.group(0)), text)

    def template_name(self, t: _Template) -> None:
        path = (*t.path, "name")
        problem = _field_name_problem(t.name)
        if problem:
            self.error(path, f"template name {t.name!r} {problem}")
        elif t.type in _LEAF_POD_TYPES and t.name != t.name.lower():
            # Argo accepts it, but v2 pod names are <workflow>-<template>-<hash> and must be DNS-1123
            # (argoproj/argo-workflows#9670): such a template fails when its pod is created.
            self.error(
                path,
                f"template name {t.name!r} must be lower-case: Argo names its pods <workflow>-<template>-<hash>, "
                "and pod names are DNS-1123 subdomains",
            )

    def template_scope(self, t: _Template, kind: str | None) -> _Scope:
        exact = set(self.globals)
        params = [_s(p.get("name")) for p in t.input_params()]
        exact |= {f"inputs.parameters.{n}" for n in params}
        if params:
            exact.add("inputs.parameters")
        leaf = kind not in ("dag", "steps")
        for a in t.input_artifacts():
            exact.add(f"inputs.artifacts.{_s(a.get('name'))}")
            if leaf:
                exact.add(f"inputs.artifacts.{_s(a.get('name'))}.path")
        if kind in _LEAF_POD_TYPES:
            exact.add("pod.name")
        if t.body.get("retryStrategy") is not None:
            exact |= {
                "retries",
                "retries.lastExitCode",
                "retries.lastStatus",
                "retries.lastDuration",
                "retries.lastMessage",
            }
        return _Scope(
            exact=exact,
            where=f"template {t.name!r}",
            inputs_of=format_path((*t.path, "inputs", "parameters")),
            any_workflow_output=self.any_workflow_output,
        )

    def names(self, items: list[Any], path: _Path, *, param: bool) -> None:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            name = _d(item).get("name")
            if not isinstance(name, str) or not name:
                self.error((*path, i, "name"), "name is required")
                continue
            if param and not _PARAM_NAME.match(name):
                self.error(
                    (*path, i, "name"),
                    f"{name!r}: parameter/artifact names consist of letters, digits, '_' and '-'",
                )
            if not param:
                problem = _field_name_problem(name)
                if problem:
                    self.error((*path, i, "name"), f"{name!r} {problem}")
            if name in seen:
                self.error((*path, i, "name"), f"{name!r} is not unique (also [{seen[name]}])")
            seen.setdefault(name, i)

    def outputs(self, t: _Template, kind: str | None) -> None:
        """validate.go validateOutputs / validateOutputParameter."""
        outputs = _d(t.body.get("outputs"))
        base = (*t.path, "outputs")
        self.names(_l(outputs.get("parameters")), (*base, "parameters"), param=True)
        self.names(_l(outputs.get("artifacts")), (*base, "artifacts"), param=True)
        for i, p in enumerate(_l(outputs.get("parameters"))):
            p = _d(p)
            path = (*base, "parameters", i)
            value_from = p.get("valueFrom")
            if value_from is not None and p.get("value") is not None:
                self.error(path, "has both valueFrom and value; choose one")
                continue
            if p.get("value") is not None:
                continue
            if not isinstance(value_from, dict):
                self.error(path, "an output parameter needs valueFrom or value")
                continue
            sources = [
                k for k in ("path", "jqFilter", "jsonPath", "parameter", "expression") if value_from.get(k)
            ]
            if value_from.get("supplied") is not None:
                sources.append("supplied")
            if not sources:
                self.error(
                    (*path, "valueFrom"),
                    "valueFrom needs one of: path, jqFilter, jsonPath, parameter, expression, supplied",
                )
            elif len(sources) > 1:
                self.error(
                    (*path, "valueFrom"), f"valueFrom has several sources ({', '.join(sources)}); choose one"
                )
            if kind in ("container", "containerSet", "script") and not value_from.get("path"):
                self.error((*path, "valueFrom", "path"), f"valueFrom.path is required for {kind} templates")
            elif kind == "resource" and not (value_from.get("jqFilter") or value_from.get("jsonPath")):
                self.error(
                    (*path, "valueFrom"), "valueFrom.jqFilter or jsonPath is required for resource templates"
                )
            elif kind in ("dag", "steps") and not (
                value_from.get("parameter") or value_from.get("expression")
            ):
                self.error(
                    (*path, "valueFrom"),
                    f"valueFrom.parameter or expression is required for {kind} templates",
                )
            g = p.get("globalName")
            if isinstance(g, str) and g and not _PARAM_REF.search(g) and not _PARAM_NAME.match(g):
                self.error(
                    (*path, "globalName"), f"{g!r}: parameter names consist of letters, digits, '_' and '-'"
                )

    # -- template references (task.template, step.template, onExit, hooks)

    def resolve(self, holder: dict[str, Any], path: _Path, *, what: str) -> _Template | None:
        """The template ``holder`` calls; ``_UNKNOWN`` when not checkable; ``None`` when broken (reported)."""
        name, ref, inline = holder.get("template"), holder.get("templateRef"), holder.get("inline")
        if name and ref:
            self.error(path, "template and templateRef cannot both be given")
            return None
        if isinstance(inline, dict):
            t = _Template(f"{_s(holder.get('name'))}(inline)", inline, (*path, "inline"), origin="inline")
            return t
        if isinstance(name, str) and name:
            t = self.templates.get(name)
            if t is None:
                self.error(
                    (*path, "template"),
                    f"{what} calls template {name!r}, which is not defined in spec.templates{self._names_hint(name)}",
                )
            return t
        if isinstance(ref, dict):
            return self.resolve_ref(ref, (*path, "templateRef"))
        self.error(path, f"{what} needs template, templateRef or inline")
        return None

    def resolve_ref(self, ref: dict[str, Any], path: _Path) -> _Template | None:
        wft, name = _s(ref.get("name")), _s(ref.get("template"))
        if not wft:
            self.error((*path, "name"), "templateRef.name is required")
            return None
        if not name:
            self.error((*path, "template"), "templateRef.template is required")
            return None
        if "{{" in wft or "{{" in name:
            return _UNKNOWN  # resolved at run time
        kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") else "WorkflowTemplate"
        if self.index is None:
            key = f"{kind}/{wft}/{name}"
            if key not in self._ref_warned:
                self._ref_warned.add(key)
                self.warn(
                    path,
                    f"templateRef {kind} {wft!r} template {name!r} not checked: no WorkflowTemplates were given (out of scope)",
                )
            return _UNKNOWN
        if kind == self.kind and wft == _d(self.doc.get("metadata")).get("name"):
            spec = _d(self.doc.get("spec"))
        else:
            spec = self.index.get((kind, wft))
        if spec is None:
            self.error((*path, "name"), f"{kind} {wft!r} is not among the given templates")
            return None
        for i, body in enumerate(_l(spec.get("templates"))):
            if isinstance(body, dict) and body.get("name") == name:
                return _Template(name, body, ("spec", "templates", i), origin=f"{kind} {wft}")
        self.error((*path, "template"), f"{kind} {wft!r} has no template {name!r}")
        return None

    def hooks(self, hooks: dict[str, Any], path: _Path) -> None:
        """validate.go validateHooks: a non-exit hook needs an expression; every hook calls a template."""
        for name, hook in hooks.items():
            hook = _d(hook)
            hpath = (*path, name)
            if name != "exit" and not hook.get("expression"):
                self.error(
                    hpath, f"hook {name!r} needs an expression (only the 'exit' hook runs unconditionally)"
                )
            target = self.resolve(hook, hpath, what=f"hook {name!r}")
            self.call_arguments(_d(hook.get("arguments")), (*hpath, "arguments"), target)

    # -- arguments (validate.go validateArguments / ProcessArgs "was not supplied")

    def arguments(self, args: dict[str, Any], path: _Path, *, allow_empty: bool) -> None:
        params = _l(args.get("parameters"))
        self.names(params, (*path, "parameters"), param=True)
        self.names(_l(args.get("artifacts")), (*path, "artifacts"), param=True)
        for i, p in enumerate(params):
            p = _d(p)
            ppath = (*path, "parameters", i)
            value_from = p.get("valueFrom")
            if value_from is None and p.get("value") is None and not allow_empty:
                self.error(ppath, f"argument {_s(p.get('name'))!r} needs value or valueFrom")
            if isinstance(value_from, dict) and not _argument_value_from_ok(value_from):
                self.error(
                    (*ppath, "valueFrom"),
                    "an argument's valueFrom only allows default, configMapKeyRef, event and supplied",
                )
            enum = p.get("enum")
            if (
                isinstance(enum, list)
                and p.get("value") is not None
                and str(p["value"]) not in [str(e) for e in enum]
            ):
                self.error((*ppath, "value"), f"{_short(p['value'])} is not in enum {enum}")

    def call_arguments(self, args: dict[str, Any], path: _Path, target: _Template | None) -> None:
        self.arguments(args, path, allow_empty=False)
        if target is None or target is _UNKNOWN:
            return
        declared = {_s(p.get("name")): p for p in target.input_params()}
        given: set[str] = set()
        for i, p in enumerate(_l(args.get("parameters"))):
            name = _s(_d(p).get("name"))
            given.add(name)
            if name and name not in declared:
                listed = ", ".join(declared) or "none"
                self.error(
                    (*path, "parameters", i, "name"),
                    f"template {target.name!r} declares no input parameter {name!r} (it declares: {listed})",
                )
        for name, p in declared.items():
            if name and name not in given and not _input_has_value(p):
                self.error(
                    path,
                    f"input parameter {name!r} of template {target.name!r} is not supplied and has no default",
                )
        declared_art = {_s(a.get("name")): a for a in target.input_artifacts()}
        given_art: set[str] = set()
        for i, a in enumerate(_l(args.get("artifacts"))):
            name = _s(_d(a).get("name"))
            given_art.add(name)
            if name and name not in declared_art:
                self.error(
                    (*path, "artifacts", i, "name"),
                    f"template {target.name!r} declares no input artifact {name!r}",
                )
        for name, a in declared_art.items():
            if name and name not in given_art and not _artifact_has_source(a):
                self.error(path, f"input artifact {name!r} of template {target.name!r} is not supplied")

    # -- DAG (validate.go validateDAG, common/ancestry.go)

    def dag(self, t: _Template, scope: _Scope) -> None:
        dag = _d(t.body.get("dag"))
        dpath = (*t.path, "dag")
        tasks = [task if isinstance(task, dict) else {} for task in _l(dag.get("tasks"))]
        if not tasks:
            self.error((*dpath, "tasks"), f"DAG template {t.name!r} must have at least one task")
            return
        self.names(tasks, (*dpath, "tasks"), param=False)
        using_depends = any(task.get("depends") for task in tasks)
        by_name = {_s(task.get("name")): i for i, task in enumerate(tasks) if task.get("name")}
        nodes: dict[str, _Node] = {}
        deps: dict[str, dict[str, str]] = {}  # task -> {dependency: "items"|"task"}
        fields: dict[str, str] = {}  # task -> the field naming its dependencies
        for i, task in enumerate(tasks):
            tpath = (*dpath, "tasks", i)
            name = _s(task.get("name"))
            if task.get("dependencies") and using_depends:
                self.error(
                    (*tpath, "dependencies"),
                    f"DAG template {t.name!r} uses 'depends', so no task may use 'dependencies'",
                )
            if task.get("continueOn") is not None and using_depends:
                self.error(
                    (*tpath, "continueOn"),
                    f"DAG template {t.name!r} uses 'depends', which cannot be combined with 'continueOn': "
                    "use 'dep.Failed' / 'dep.Errored' in depends instead",
                )
            if name and name[0].isdigit() and (using_depends or task.get("dependencies")):
                self.error(
                    (*tpath, "name"),
                    f"task name {name!r} cannot begin with a digit when using 'depends' or 'dependencies'",
                )
            found: dict[str, str] = {}
            depends = task.get("depends")
            if isinstance(depends, str) and depends.strip():
                parsed, problem = parse_depends(depends)
                if problem:
                    self.error((*tpath, "depends"), f"cannot parse depends {depends!r}: {problem}")
                for dep, results in parsed.items():
                    if dep not in by_name:
                        self.error(
                            (*tpath, "depends"),
                            f"depends names task {dep!r}, which is not in this DAG{_hint(dep, by_name)}",
                        )
                        continue
                    for r in results:
                        if r and r not in _TASK_RESULTS:
                            self.error(
                                (*tpath, "depends"),
                                f"task result '{dep}.{r}' is invalid: one of {', '.join(_TASK_RESULTS)}",
                            )
                    found[dep] = "items" if results & set(_ITEM_RESULTS) else found.get(dep, "task")
            for j, dep in enumerate(_l(task.get("dependencies"))):
                if not isinstance(dep, str) or dep not in by_name:
                    self.error(
                        (*tpath, "dependencies", j),
                        f"dependency {dep!r} is not a task in this DAG{_hint(str(dep), by_name)}",
                    )
                else:
                    found.setdefault(dep, "task")
            if name:
                deps[name] = found
                fields[name] = "depends" if task.get("depends") else "dependencies"
            loops = [
                k for k in ("withItems", "withParam", "withSequence") if task.get(k) not in (None, "", [])
            ]
            if len(loops) > 1:
                self.error(
                    tpath,
                    f"only one of withItems, withParam, withSequence can be given (found {', '.join(loops)})",
                )
            target = self.resolve(task, tpath, what=f"task {name!r}")
            if target is not None and target is not _UNKNOWN and target.origin == "inline":
                self.template(target, inline=True)
            nodes[name] = _Node(name, target, bool(loops), daemon=bool(target and target.body.get("daemon")))
            self.call_arguments(_d(task.get("arguments")), (*tpath, "arguments"), target)
            self.hooks(_d(task.get("hooks")), (*tpath, "hooks"))
            if isinstance(task.get("onExit"), str) and task["onExit"]:
                self.resolve({"template": task["onExit"]}, tpath, what=f"onExit of task {name!r}")
        for name, found in deps.items():
            for dep, how in found.items():
                if how == "items" and dep in nodes and not nodes[dep].fans_out:
                    i = by_name[name]
                    self.error(
                        (*dpath, "tasks", i, "depends"),
                        f"depends uses '{dep}.AnySucceeded'/'{dep}.AllFailed', but task {dep!r} does not fan out (withItems/withParam/withSequence)",
                    )
        self.cycles(deps, fields, by_name, dpath)
        ancestors = _ancestors(deps)

        target_names = dag.get("target")
        if isinstance(target_names, str):
            for name in target_names.split():
                if not _PARAM_REF.fullmatch(name) and name not in by_name:
                    self.error((*dpath, "target"), f"target {name!r} is not a task of this DAG")

        # variables: each task sees its ancestors; the rest of the template sees every task
        for i, task in enumerate(tasks):
            name, tpath = _s(task.get("name")), (*dpath, "tasks", i)
            items = self.item_scope(task, tpath)
            visible = ancestors.get(name, set())
            body = {k: v for k, v in task.items() if k not in ("inline", "hooks")}
            self.refs(body, tpath, self.node_scope(scope, "tasks", nodes, visible=visible, items=items))
            if task.get("hooks"):
                hooks_scope = self.node_scope(scope, "tasks", nodes, visible=visible | {name}, items=items)
                self.refs(task["hooks"], (*tpath, "hooks"), hooks_scope)
        rest = {k: v for k, v in t.body.items() if k != "dag"}
        rest["dag"] = {k: v for k, v in dag.items() if k != "tasks"}
        self.refs(rest, t.path, self.node_scope(scope, "tasks", nodes, visible=None))

    def cycles(
        self, deps: dict[str, dict[str, str]], fields: dict[str, str], by_name: dict[str, int], dpath: _Path
    ) -> None:
        """validate.go verifyNoCycles, reporting each cycle once."""
        state: dict[str, int] = {}
        stack: list[str] = []
        reported: set[frozenset[str]] = set()

        def visit(node: str) -> None:
            state[node] = 1
            stack.append(node)
            for dep in deps.get(node, {}):
                if dep not in deps:
                    continue
                if state.get(dep) == 1:
                    cycle = [*stack[stack.index(dep) :], dep]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        self.error(
                            (*dpath, "tasks", by_name[node], fields[node]),
                            f"dependency cycle: {' -> '.join(cycle)}",
                        )
                elif dep not in state:
                    visit(dep)
            stack.pop()
            state[node] = 2

        for node in deps:
            if node not in state:
                visit(node)

    # -- steps (validate.go validateSteps)

    def steps(self, t: _Template, scope: _Scope) -> None:
        groups = _l(t.body.get("steps"))
        spath = (*t.path, "steps")
        nodes: dict[str, _Node] = {}
        seen: dict[str, _Path] = {}
        earlier: set[str] = set()
        located: list[tuple[dict[str, Any], _Path, set[str]]] = []
        for g, group in enumerate(groups):
            this_group: set[str] = set()
            for j, step in enumerate(_l(group)):
                step = _d(step)
                path = (*spath, g, j)
                name = step.get("name")
                if not isinstance(name, str) or not name:
                    self.error((*path, "name"), "a step needs a name")
                    continue
                problem = _field_name_problem(name)
                if problem:
                    self.error((*path, "name"), f"step name {name!r} {problem}")
                if name in seen:
                    self.error(
                        (*path, "name"),
                        f"step name {name!r} is not unique in template {t.name!r} (also {format_path(seen[name])})",
                    )
                seen.setdefault(name, path)
                loops = [
                    k for k in ("withItems", "withParam", "withSequence") if step.get(k) not in (None, "", [])
                ]
                if len(loops) > 1:
                    self.error(
                        path,
                        f"only one of withItems, withParam, withSequence can be given (found {', '.join(loops)})",
                    )
                target = self.resolve(step, path, what=f"step {name!r}")
                if target is not None and target is not _UNKNOWN and target.origin == "inline":
                    self.template(target, inline=True)
                nodes[name] = _Node(
                    name, target, bool(loops), daemon=bool(target and target.body.get("daemon"))
                )
                self.call_arguments(_d(step.get("arguments")), (*path, "arguments"), target)
                self.hooks(_d(step.get("hooks")), (*path, "hooks"))
                if isinstance(step.get("onExit"), str) and step["onExit"]:
                    self.resolve({"template": step["onExit"]}, path, what=f"onExit of step {name!r}")
                located.append((step, path, set(earlier)))
                this_group.add(name)
            earlier |= this_group
        for step, path, visible in located:
            name = _s(step.get("name"))
            items = self.item_scope(step, path)
            body = {k: v for k, v in step.items() if k not in ("inline", "hooks")}
            self.refs(body, path, self.node_scope(scope, "steps", nodes, visible=visible, items=items))
            if step.get("hooks"):
                hooks_scope = self.node_scope(scope, "steps", nodes, visible=visible | {name}, items=items)
                self.refs(step["hooks"], (*path, "hooks"), hooks_scope)
        rest = {k: v for k, v in t.body.items() if k != "steps"}
        self.refs(rest, t.path, self.node_scope(scope, "steps", nodes, visible=None))

    # -- variables

    def node_scope(
        self,
        base: _Scope,
        prefix: str,
        nodes: dict[str, _Node],
        *,
        visible: set[str] | None,
        items: tuple[_Items, str] = (None, ""),
    ) -> _Scope:
        return _Scope(
            exact=base.exact,
            where=base.where,
            inputs_of=base.inputs_of,
            prefix=prefix,
            nodes=nodes,
            visible=visible,
            items=items[0],
            item_note=items[1],
            any_workflow_output=base.any_workflow_output,
        )

    def item_scope(self, holder: dict[str, Any], path: _Path) -> tuple[_Items, str]:
        """validate.go addItemsToScope, plus: a withParam fed by a literal workflow parameter is parsed."""
        items = holder.get("withItems")
        if isinstance(items, list) and items:
            return _item_tags(items), "withItems"
        if holder.get("withSequence") is not None:
            return {"item"}, "withSequence"
        param = holder.get("withParam")
        if not isinstance(param, str) or not param:
            return None, ""
        literal: str | None = param if "{{" not in param else None
        source = "withParam"
        m = re.fullmatch(r"\s*{{\s*workflow\.parameters\.([-a-zA-Z0-9_]+)\s*}}\s*", param)
        if m:
            for p in _l(_d(self._spec().get("arguments")).get("parameters")):
                if _d(p).get("name") == m.group(1) and isinstance(_d(p).get("value"), str):
                    literal = p["value"]
                    source = f"the value of workflow parameter {m.group(1)!r}"
        if literal is None:
            return "any", "withParam"
        try:
            value = json.loads(literal)
        except ValueError:
            value = None
        if not isinstance(value, list):
            self.error((*path, "withParam"), f"withParam needs a JSON list; {source} is not one")
            return "any", "withParam"
        if not value:
            return "any", source
        return _item_tags(value), source

    def _spec(self) -> dict[str, Any]:
        spec = _d(self.doc.get("spec"))
        return _d(spec.get("workflowSpec")) if self.kind == "CronWorkflow" else spec

    def refs(self, value: Any, path: _Path, scope: _Scope) -> None:
        """Check every ``{{tag}}`` in the strings under ``value`` (expression tags ``{{=...}}`` are skipped)."""
        if isinstance(value, str):
            if "{{" not in value:
                return
            for tag in _tags(value):
                if tag is None:
                    self.error(path, f"unterminated '{{{{' in {_short(value)}")
                    continue
                problem = self.resolve_tag(tag.strip(), scope)
                if problem:
                    self.error(path, problem)
        elif isinstance(value, dict):
            for k, v in value.items():
                self.refs(v, (*path, k), scope)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.refs(v, (*path, i), scope)

    def resolve_tag(self, tag: str, scope: _Scope) -> str | None:
        ref = f"{{{{{tag}}}}}"
        if tag == "item" or tag.startswith("item."):
            if scope.items is None:
                return (
                    f"{ref} is only defined in a DAG task or step that fans out (withItems/withParam/withSequence); "
                    + ("pass the value in as an input parameter" if not scope.prefix else "this one does not")
                )
            if scope.items == "any" or tag in scope.items:
                return None
            keys = ", ".join(sorted(scope.items))
            return f"{ref} does not match the items of {scope.item_note} (which give: {keys})"
        if not tag.startswith(_CHECKED_PREFIXES) or tag in scope.exact or tag in _RUNTIME_EXACT:
            return None
        if tag.startswith(_RUNTIME_PREFIXES):
            return None
        if (
            tag.startswith(("workflow.outputs.parameters.", "workflow.outputs.artifacts."))
            and scope.any_workflow_output
        ):
            return None
        if tag.startswith("inputs.parameters."):
            return f"{ref}: input parameter {tag.split('.', 2)[2]!r} is not declared in {scope.inputs_of}"
        if tag.startswith("inputs.artifacts."):
            return f"{ref}: input artifact {tag.split('.', 2)[2]!r} is not declared in {scope.where}'s inputs"
        if tag.startswith("workflow.parameters."):
            return f"{ref}: workflow parameter {tag.split('.', 2)[2]!r} is not declared in spec.arguments.parameters"
        if tag.startswith("workflow.outputs."):
            return f"{ref}: no template exports this globalName"
        if tag.startswith(("tasks.", "steps.")):
            return self.resolve_node_tag(tag, scope)
        if tag == "pod.name":
            return f"{ref} is only defined in templates that run a pod"
        return f"{ref} cannot be resolved in {scope.where}"

    def resolve_node_tag(self, tag: str, scope: _Scope) -> str | None:
        ref = f"{{{{{tag}}}}}"
        prefix, _, rest = tag.partition(".")
        name, _, attr = rest.partition(".")
        noun = "task" if prefix == "tasks" else "step"
        if prefix != scope.prefix:
            return f"{ref}: {prefix}.* is only defined inside a {'DAG' if prefix == 'tasks' else 'steps'} template"
        node = scope.nodes.get(name)
        if node is None:
            return f"{ref}: {noun} {name!r} does not exist in {scope.where}{_hint(name, scope.nodes)}"
        if scope.visible is not None and name not in scope.visible:
            if prefix == "tasks":
                return f"{ref}: task {name!r} is not a dependency (direct or indirect) of this task; add it to depends"
            return f"{ref}: step {name!r} does not run in an earlier step group"
        t = node.template
        if t is None or t is _UNKNOWN:
            return None
        if attr in ("id", "startedAt", "finishedAt", "hostNodeName", "status"):
            return None
        if attr == "ip":
            return None if node.daemon else f"{ref}: {noun} {name!r} is not a daemon"
        if attr in ("outputs.result", "exitCode"):
            return None if t.type in _HAS_RESULT else f"{ref}: template {t.name!r} ({t.type}) has no result"
        if attr == "outputs.parameters":
            return (
                None
                if node.fans_out
                else f"{ref}: only a {noun} that fans out has aggregated outputs.parameters"
            )
        if attr.startswith("outputs.parameters."):
            out = attr.split(".", 2)[2]
            declared = t.output_params()
            if out in declared:
                return None
            return f"{ref}: template {t.name!r} of {noun} {name!r} declares no output parameter {out!r} (it declares: {', '.join(declared) or 'none'})"
        if attr.startswith("outputs.artifacts."):
            out = attr.split(".", 2)[2]
            declared = t.output_artifacts()
            if out in declared:
                return None
            return f"{ref}: template {t.name!r} of {noun} {name!r} declares no output artifact {out!r}"
        return f"{ref}: {noun}s have no attribute {attr!r}"


def _tags(text: str) -> Iterator[str | None]:
    """The simple ``{{tags}}`` in ``text`` (``None`` for an unterminated ``{{``), as fasttemplate finds them."""
    end = 0
    for m in _TAG.finditer(text):
        end = m.end()
        tag = m.group(1)
        if not tag.lstrip().startswith("="):
            yield tag
    if "{{" in text[end:]:
        yield None


def _item_tags(items: Sequence[Any]) -> set[str]:
    tags: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            tags |= {f"item.{k}" for k in item}
        elif isinstance(item, list):
            tags |= {f"item.[{i}]" for i in range(len(item))}
        else:
            tags.add("item")
    return tags


def _argument_value_from_ok(value_from: Mapping[str, Any]) -> bool:
    """validate.go validateArgumentsValues: what an argument's valueFrom may hold."""
    has_source = bool(value_from.get("configMapKeyRef") or value_from.get("event")) or (
        value_from.get("supplied") is not None
    )
    return has_source and not any(value_from.get(k) for k in ("path", "jsonPath", "parameter", "expression"))


def _input_has_value(p: Mapping[str, Any]) -> bool:
    return p.get("value") is not None or p.get("default") is not None or p.get("valueFrom") is not None


def _artifact_has_source(a: Mapping[str, Any]) -> bool:
    return bool(a.get("optional")) or bool(a.get("from")) or _count(a, _ARTIFACT_LOCATIONS) > 0


def _field_name_problem(name: str) -> str | None:
    if len(name) > _FIELD_NAME_MAX:
        return f"must be at most {_FIELD_NAME_MAX} characters"
    if not _FIELD_NAME.match(name):
        return "must consist of letters, digits and '-', starting with a letter or digit"
    return None


def _hint(name: str, names: Iterable[str]) -> str:
    hint = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


def _ancestors(deps: Mapping[str, Mapping[str, str]]) -> dict[str, set[str]]:
    """Transitive dependencies of each task (common.GetTaskAncestry); safe on cycles."""
    memo: dict[str, set[str]] = {}

    def walk(node: str, trail: frozenset[str]) -> set[str]:
        if node in memo:
            return memo[node]
        out: set[str] = set()
        for dep in deps.get(node, {}):
            if dep in trail or dep not in deps:
                out.add(dep)
                continue
            out.add(dep)
            out |= walk(dep, trail | {dep})
        memo[node] = out
        return out

    return {node: walk(node, frozenset({node})) for node in deps}


# ---- depends expressions (common/ancestry.go; the expression itself is evaluated by expr)

_DEPENDS_TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||!|\(|\))|(?P<name>'[^']*'|[A-Za-z0-9][-A-Za-z0-9]*)(?:\.(?P<result>[A-Za-z]+))?)"
)


def parse_depends(expr: str) -> tuple[dict[str, set[str]], str | None]:
    """Parse a ``depends`` expression: task names with optional ``.Result``, ``&&``, ``||``, ``!``, parentheses.

    Returns ``({task: {results named}}, problem)``; ``""`` in the results stands for a bare name.
    """
    tokens: list[tuple[str, str, str, int]] = []  # (kind, text, result, position)
    pos = 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _DEPENDS_TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            return {}, f"unexpected {expr[pos:].strip()[:20]!r} at position {pos}"
        start = m.start("op") if m.group("op") else m.start("name")
        if m.group("op"):
            tokens.append(("op", m.group("op"), "", start))
        else:
            tokens.append(("name", m.group("name").strip("'"), m.group("result") or "", start))
        pos = m.end()
    deps: dict[str, set[str]] = {}
    i = 0

    def peek() -> tuple[str, str, str, int] | None:
        return tokens[i] if i < len(tokens) else None

    def fail(what: str) -> str:
        tok = peek()
        return f"{what} at position {tok[3]}" if tok else f"{what} at the end"

    def primary() -> str | None:
        nonlocal i
        tok = peek()
        if tok is None:
            return fail("expected a task name")
        if tok[0] == "name":
            deps.setdefault(tok[1], set()).add(tok[2])
            i += 1
            return None
        if tok[1] == "(":
            i += 1
            problem = disjunction()
            if problem:
                return problem
            if peek() is None or peek()[1] != ")":  # type: ignore[index]
                return fail("expected ')'")
            i += 1
            return None
        if tok[1] == "!":
            i += 1
            return primary()
        return fail(f"unexpected {tok[1]!r}")

    def conjunction() -> str | None:
        nonlocal i
        problem = primary()
        while not problem and peek() is not None and peek()[1] == "&&":  # type: ignore[index]
            i += 1
            problem = primary()
        return problem

    def disjunction() -> str | None:
        nonlocal i
        problem = conjunction()
        while not problem and peek() is not None and peek()[1] == "||":  # type: ignore[index]
            i += 1
            problem = conjunction()
        return problem

    problem = disjunction()
    if not problem and peek() is not None:
        problem = fail(f"unexpected {peek()[1]!r}")  # type: ignore[index]
    return deps, problem


# ---- cron (robfig/cron ParseStandard)

_CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(
                ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
            )
        },
    ),
    ("day of week", 0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
)


def cron_schedule_problem(schedule: str) -> str | None:
    """Why robfig/cron's standard parser (5 fields or a descriptor, optional ``CRON_TZ=``) rejects it."""
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        tz, _, text = text.partition(" ")
        if not _valid_timezone(tz.split("=", 1)[1]):
            return f"unknown time zone in {tz!r}"
        text = text.strip()
    if text.startswith("@"):
        if text in _CRON_DESCRIPTORS:
            return None
        if re.fullmatch(r"@every\s+([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+", text):
            return None
        return f"unknown descriptor {text!r}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}"
    for value, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for part in value.split(","):
            problem = _cron_part_problem(part, low, high, names)
            if problem:
                return f"{name} {value!r}: {problem}"
    return None


def _cron_part_problem(part: str, low: int, high: int, names: Mapping[str, int]) -> str | None:
    range_, _, step = part.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        return f"bad step {step!r}"
    if range_ in ("*", "?"):
        return None

    def number(text: str) -> int | None:
        if text.isdigit():
            return int(text)
        return names.get(text.lower())

    first, _, last = range_.partition("-")
    a, b = number(first), number(last) if last else None
    if a is None or (last and b is None):
        return f"{range_!r} is not a number or range"
    if not low <= a <= high or (b is not None and not low <= b <= high):
        return f"{range_!r} is outside {low}-{high}"
    if b is not None and b < a:
        return f"{range_!r} ends before it starts"
    return None


@lru_cache(maxsize=256)
def _valid_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return not zoneinfo.available_timezones()  # no tz database here: cannot tell, do not report
    return True


def lint_manifest(
    doc: Mapping[str, Any], *, templates: Iterable[Mapping[str, Any]] | None = None
) -> list[Problem]:
    """Argo's semantic rules, which neither schema expresses. Needs no schema files.

    Sources are Argo v4's ``workflow/validate/validate.go`` (VG), ``workflow/common/ancestry.go`` (AN),
    the Kubernetes API server's ObjectMeta validation (K8S) and the CRDs' CEL rules (CEL):

    * metadata: ``name`` or ``generateName`` (K8S); name a DNS-1123 subdomain (K8S) of at most 63
      characters, 52 for a CronWorkflow (VG); ``generateName`` a DNS-1123 prefix (K8S); label keys and
      values, annotation keys (K8S).
    * names: templates, steps and DAG tasks match ``[a-zA-Z0-9][-a-zA-Z0-9]*`` (<= 128) and are unique;
      parameter and artifact names match ``[-a-zA-Z0-9_]+`` and are unique (VG). Templates that run a
      pod must also be lower-case: v2 pod names embed them (argo-workflows#9670).
    * entrypoint required (Workflow, CronWorkflow) and defined; every template a task, step, ``onExit``
      or hook calls is defined; ``templateRef`` resolved against ``templates`` when given, else a
      warning (VG). Entrypoint/onExit inputs without a default must be in ``spec.arguments`` (VG).
    * exactly one template type; ``activeDeadlineSeconds``/``timeout`` only on leaf templates,
      ``parallelism`` only on steps/dag; timeouts carry a unit; valid ``retryPolicy``; container and
      script images (VG, CEL).
    * DAG: at least one task; ``depends`` parsed (names, ``.Result``, ``&&``, ``||``, ``!``, parentheses)
      and every target and ``dependencies`` entry exists; valid results; ``.AnySucceeded``/``.AllFailed``
      only on a task that fans out; no ``depends`` with ``dependencies`` or ``continueOn`` in one DAG;
      names of such tasks do not start with a digit; no cycles; ``target`` names exist (VG, AN).
    * loops: one of ``withItems``/``withParam``/``withSequence``; ``{{item...}}`` only in a task or step
      that fans out, and matching the items' keys (VG); a ``withParam`` fed by a literal (or a workflow
      parameter's literal value) must be a JSON list whose items have the keys used (edgefed).
    * variables: every ``{{inputs.parameters.X}}`` declared by its template; every
      ``{{workflow.parameters.X}}`` declared in ``spec.arguments`` (for a WorkflowTemplate, its own;
      Argo is laxer there, edgefed is not); ``{{tasks.T...}}`` / ``{{steps.S...}}`` name an existing
      task that is an ancestor (step: an earlier group) and an output its template declares (VG).
    * arguments: each needs a value (VG); names only inputs the called template declares (edgefed);
      every input without a default is supplied (VG ``ProcessArgs``); output parameters well-formed (VG).
    * CronWorkflow: ``schedules`` non-empty and parseable (robfig/cron), time zone known (VG).
    * exec limits: a container's command/args/env string, after substituting literal workflow
      parameter values, fits Linux's ``MAX_ARG_STRLEN`` (128 KiB), and all of them ``ARG_MAX`` (edgefed:
      Argo substitutes verbatim, and the pod then fails to start with E2BIG).
    """
    kind, problems = _kind_of(doc)
    if kind is None:
        return problems
    return _Lint(doc, templates).run()


# --------------------------------------------------------------------------------------------- CLI


def _load_documents(path: Path) -> list[Any]:
    with path.open() as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edgefed.workflows.conformance FILE...``: 0 clean, 1 problems, 2 unreadable input."""
    parser = argparse.ArgumentParser(
        prog="python -m edgefed.workflows.conformance",
        description="Check Argo Workflow, WorkflowTemplate, ClusterWorkflowTemplate and CronWorkflow YAML "
        "offline: schema.json, the CRDs (closed world) and Argo's semantic rules. WorkflowTemplates among "
        "the files resolve templateRefs.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument(
        "--schemas",
        type=Path,
        default=None,
        help=f"Argo schema directory (default: ${SCHEMAS_ENV} or ../shared/argo)",
    )
    parser.add_argument(
        "--lint-only", action="store_true", help="only Argo's semantic rules (no schema files needed)"
    )
    args = parser.parse_args(argv)

    loaded: list[tuple[str, Any]] = []
    unreadable = False
    for file in args.files:
        try:
            docs = _load_documents(file)
        except OSError as err:
            print(f"{file}: cannot be read: {err.strerror or err}", file=sys.stderr)
            unreadable = True
            continue
        except yaml.YAMLError as err:
            print(f"{file}: not valid YAML: {err}", file=sys.stderr)
            unreadable = True
            continue
        for i, doc in enumerate(docs):
            loaded.append((f"{file}" + (f"#{i + 1}" if len(docs) > 1 else ""), doc))
    if unreadable:
        return 2
    schemas = None
    if not args.lint_only:
        try:
            schemas = ArgoSchemas.load(args.schemas)
        except SchemasUnavailable as err:
            print(f"error: {err} (or use --lint-only)", file=sys.stderr)
            return 2
    templates = [
        d
        for _, d in loaded
        if isinstance(d, Mapping) and d.get("kind") in ("WorkflowTemplate", "ClusterWorkflowTemplate")
    ]
    failed = False
    for where, doc in loaded:
        if schemas is None:
            problems = lint_manifest(doc, templates=templates)
        else:
            problems = check_manifest(doc, schemas=schemas, templates=templates)
        name = ""
        if isinstance(doc, Mapping):
            meta = _d(doc.get("metadata"))
            name = f" {doc.get('kind')}/{meta.get('name') or meta.get('generateName') or '?'}"
        for problem in problems:
            print(f"{where}{name}: {problem}")
        failed = failed or any(p.severity == "error" for p in problems)
    return 1 if failed else 0


__all__ = [
    "API_VERSION",
    "CEL_RULES",
    "CRD_FILES",
    "KINDS",
    "MAX_ARG_STRLEN",
    "SCHEMAS_ENV",
    "TEMPLATE_TYPES",
    "ArgoSchemas",
    "Problem",
    "SchemasUnavailable",
    "check_crd",
    "check_manifest",
    "check_schema",
    "cron_schedule_problem",
    "default_schemas_dir",
    "errors_only",
    "format_path",
    "lint_manifest",
    "main",
    "parse_depends",
]


if __name__ == "__main__":
    sys.exit(main())
