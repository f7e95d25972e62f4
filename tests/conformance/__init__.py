"""Offline conformance checks for the Argo documents edgefed generates: test tooling, not shipped.

No cluster runs where the documents are built, so they are checked the way the cluster would, in
layers. Each :class:`Problem` names its layer (``check``):

``hera`` (always runs; :mod:`.hera_schema`)
    A JSON schema derived from Hera's generated models (Argo's OpenAPI, Argo :data:`ARGO_VERSION`),
    every object closed as a strict API server treats it, so a misspelled field is an error.
``schema`` and ``crd`` (when Argo v4.1.2's published files are present; :mod:`.published`, :mod:`.crd`)
    Argo's ``schema.json``, and its CRDs closed, with their CEL rules and list-map keys; read from
    ``../shared/argo`` or ``$EDGEFED_ARGO_SCHEMAS``. Their tests fail under CI when the files are
    absent, and skip, naming the directory, elsewhere.
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
    SCHEMAS_ENV,
    ArgoSchemas,
    ConformanceError,
    SchemasUnavailable,
    check_crd,
    check_schema,
    default_schemas_dir,
    find_schemas,
)

__all__ = [
    "API_VERSION",
    "ARGO_VERSION",
    "CEL_RULES",
    "CRD_FILES",
    "KINDS",
    "MAX_ARG_STRLEN",
    "SCHEMAS_ENV",
    "TEMPLATE_TYPES",
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
]
