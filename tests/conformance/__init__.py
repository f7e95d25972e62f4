"""Offline conformance checks for the Argo documents edgefed generates: test tooling, not shipped.

No cluster runs where the documents are built, so they are checked the way the cluster would, in
layers. Each :class:`Problem` names its layer (``check``):

``hera`` (always runs; :mod:`.hera_schema`)
    A JSON schema derived from Hera's generated models (Argo's OpenAPI, Argo :data:`ARGO_VERSION`),
    every object closed as a strict API server treats it, so a misspelled field is an error.
``schema`` and ``crd`` (always runs; :mod:`.published`, :mod:`.crd`)
    Argo v4.1.2's ``schema.json``, and its CRDs closed, with their CEL rules and list-map keys; vendored
    gzipped in ``tests/conformance/argo/`` (``$EDGEFED_ARGO_SCHEMAS`` names another copy; given an
    empty directory their tests fail under CI and skip, naming it, elsewhere).
``lint`` (always runs; :mod:`.lint`)
    Argo's semantic validation, which no schema knows; ``depends`` through the engine's own parser.

``python -m tests.conformance FILE...`` runs them on YAML files (:mod:`.cli`).
"""

from .argo import API_VERSION, KINDS, TEMPLATE_TYPES
from .checks import check_manifest
from .cli import main
from .crd import CEL_RULES
from .cron import cron_schedule_problem
from .hera_schema import ARGO_VERSION, check_hera, closed_schema, hera_validator
from .lint import MAX_ARG_STRLEN, lint_manifest
from .problems import Problem, errors_only, format_path
from .published import (
    CRD_FILES,
    SCHEMA_FILE,
    SCHEMAS_ENV,
    VENDORED_DIR,
    ArgoSchemas,
    ConformanceError,
    SchemasUnavailable,
    check_crd,
    check_schema,
    default_schemas_dir,
    find_schemas,
    read_bytes,
    schema_file,
)

__all__ = [
    "API_VERSION",
    "ARGO_VERSION",
    "CEL_RULES",
    "CRD_FILES",
    "KINDS",
    "MAX_ARG_STRLEN",
    "SCHEMAS_ENV",
    "SCHEMA_FILE",
    "TEMPLATE_TYPES",
    "VENDORED_DIR",
    "ArgoSchemas",
    "ConformanceError",
    "Problem",
    "SchemasUnavailable",
    "check_crd",
    "check_hera",
    "check_manifest",
    "check_schema",
    "closed_schema",
    "cron_schedule_problem",
    "default_schemas_dir",
    "errors_only",
    "find_schemas",
    "format_path",
    "hera_validator",
    "lint_manifest",
    "main",
    "read_bytes",
    "schema_file",
]
