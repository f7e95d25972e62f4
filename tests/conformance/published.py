"""The published layer: Argo's ``schema.json`` and CRDs (v4.1.2).

They ship with the tests, gzipped, in ``tests/conformance/argo/`` (:data:`VENDORED_DIR`, with Argo's
license and their provenance), so this layer runs for every user from a clean clone;
``$EDGEFED_ARGO_SCHEMAS`` names another directory (plain or ``.gz`` files) to check against instead
(:func:`default_schemas_dir`). A test compares the vendored copy with the reference in ``../shared/argo``
when that is present. When a directory holds none of the files, :func:`find_schemas` says so (``None``)
and the checks run the layers that need nothing (``hera_schema`` and the lint); the tests of this layer
then fail under CI and skip otherwise. A directory with only some of the files is an error
(:class:`SchemasUnavailable`), never a silent skip.

``schema.json`` is validated against the definition of the document's kind rather than its top-level
``oneOf`` (whose errors are unreadable). Two of its definitions are stricter than what Kubernetes and
Argo accept, so they are patched in memory: ``IntOrString`` (typed as string only; Argo takes
``limit: 2``) and ``Quantity`` (same, for ``cpu: 1``); both become integer-or-string, as the CRDs
declare them. The CRDs are closed by :mod:`.crd`; ``metadata`` is closed to the fields of
``ObjectMeta``. Files and validators are cached per directory: a CRD is ~2.8 MB of YAML.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import threading
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator

from .argo import KINDS, kind_of
from .crd import CrdValidator, close_schema
from .problems import Problem, problems_from

#: Environment variable naming the directory of Argo's schema.json and CRDs.
SCHEMAS_ENV = "EDGEFED_ARGO_SCHEMAS"
SCHEMA_FILE = "schema.json"
#: Kind -> CRD file in the schemas directory.
CRD_FILES: dict[str, str] = {
    "Workflow": "crd-workflows.yaml",
    "WorkflowTemplate": "crd-workflowtemplates.yaml",
    "ClusterWorkflowTemplate": "crd-clusterworkflowtemplates.yaml",
    "CronWorkflow": "crd-cronworkflows.yaml",
}
_DEFINITION_PREFIX = "io.argoproj.workflow.v1alpha1."
#: schema.json definitions typed as string only, which Kubernetes and Argo also accept as integers.
_PATCHED_DEFINITIONS = (
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
)
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class ConformanceError(Exception):
    """Base of the errors the conformance tooling raises."""


class SchemasUnavailable(ConformanceError):
    """Argo's schema directory (or a file in it) is missing or unreadable."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"Argo schemas unavailable: {detail} ({path}); set {SCHEMAS_ENV} or pass the directory that "
            f"holds {SCHEMA_FILE} and the CRDs"
        )


#: The copy that ships with the tests (gzipped files, Argo's LICENSE, README with their provenance).
VENDORED_DIR = Path(__file__).resolve().parent / "argo"


def default_schemas_dir() -> Path:
    """``$EDGEFED_ARGO_SCHEMAS``, else the vendored copy (:data:`VENDORED_DIR`)."""
    env = os.environ.get(SCHEMAS_ENV)
    return Path(env) if env else VENDORED_DIR


def schema_file(directory: Path, name: str) -> Path | None:
    """``directory/name``, or its gzip ``name.gz``; None when neither exists."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_bytes(path: Path) -> bytes:
    """A schema file's content (decompressed when it is a ``.gz``)."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _read_yaml(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(read_bytes(path), Loader=loader)


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
        file = schema_file(self.path, name)
        if file is None:
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
        """A closed-world validator for ``kind`` built from its CRD (see :mod:`.crd`)."""
        schema = self.crd_schema(kind)
        with self._lock:
            if kind not in self._crd_validators:
                closed = close_schema(schema)
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
                self._crd_validators[kind] = CrdValidator(closed)
            return self._crd_validators[kind]


@lru_cache(maxsize=8)
def _load_schemas(directory: Path) -> ArgoSchemas:
    if not directory.is_dir():
        raise SchemasUnavailable(directory, "directory not found")
    file = schema_file(directory, SCHEMA_FILE)
    if file is None:
        raise SchemasUnavailable(directory, f"{SCHEMA_FILE} is missing")
    try:
        schema_json = json.loads(read_bytes(file))
    except (OSError, ValueError) as err:
        raise SchemasUnavailable(directory, f"{SCHEMA_FILE} cannot be read: {err}") from None
    for kind in KINDS:
        if f"{_DEFINITION_PREFIX}{kind}" not in schema_json.get("definitions", {}):
            raise SchemasUnavailable(directory, f"{SCHEMA_FILE} does not define {kind}")
    for name in CRD_FILES.values():
        if schema_file(directory, name) is None:
            raise SchemasUnavailable(directory, f"{name} is missing")
    return ArgoSchemas(directory, schema_json)


def find_schemas(path: str | os.PathLike[str] | None = None) -> ArgoSchemas | None:
    """The schemas in ``path`` (default :func:`default_schemas_dir`), or ``None`` when it holds none of
    their files (absent or empty); a directory with only some of them raises :class:`SchemasUnavailable`."""
    directory = Path(path) if path is not None else default_schemas_dir()
    if not any(schema_file(directory, name) for name in (SCHEMA_FILE, *CRD_FILES.values())):
        return None
    return ArgoSchemas.load(directory)


def check_schema(doc: Mapping[str, Any], schemas: ArgoSchemas) -> list[Problem]:
    """Validate against ``schema.json`` (definition of the document's kind, IntOrString/Quantity patched)."""
    kind, problems = kind_of(doc)
    if kind is None:
        return problems
    return problems_from(schemas.schema_validator(kind).iter_errors(doc), "schema", kind)


def check_crd(doc: Mapping[str, Any], schemas: ArgoSchemas) -> list[Problem]:
    """Validate against the kind's CRD, closed-world (undeclared field = error), with its CEL rules."""
    kind, problems = kind_of(doc)
    if kind is None:
        return problems
    return problems_from(schemas.crd_validator(kind).iter_errors(doc), "crd", kind)


__all__ = [
    "CRD_FILES",
    "SCHEMAS_ENV",
    "SCHEMA_FILE",
    "VENDORED_DIR",
    "ArgoSchemas",
    "ConformanceError",
    "SchemasUnavailable",
    "check_crd",
    "check_schema",
    "default_schemas_dir",
    "find_schemas",
    "read_bytes",
    "schema_file",
]
