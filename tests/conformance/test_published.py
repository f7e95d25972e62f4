"""Argo v4.1.2's published schema.json and CRDs: vendored in ``tests/conformance/argo/`` (gzipped), so the
layer runs from a clean clone; ``$EDGEFED_ARGO_SCHEMAS`` may name another copy. When the directory it
is given holds nothing, its tests fail under CI and skip naming the directory elsewhere; the other
layers run either way."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.conformance import (
    CEL_RULES,
    CRD_FILES,
    SCHEMA_FILE,
    SCHEMAS_ENV,
    VENDORED_DIR,
    ArgoSchemas,
    SchemasUnavailable,
    check_crd,
    check_manifest,
    check_schema,
    default_schemas_dir,
    find_schemas,
    read_bytes,
    schema_file,
)
from tests.conformance.samples import TRAIN, base_workflow, has_problem, lint_errors
from tests.helpers import REPO


def test_base_workflow_is_clean_against_schemas(schemas: ArgoSchemas) -> None:
    assert check_manifest(base_workflow(), schemas=schemas) == []


def test_misspelled_field_passes_schema_json_but_fails_the_crd(schemas: ArgoSchemas) -> None:
    doc = base_workflow()
    template = doc["spec"]["templates"][TRAIN]
    template["nodeSelecter"] = template.pop("nodeSelector")
    assert check_schema(doc, schemas) == []
    problems = check_crd(doc, schemas)
    assert [p.path for p in problems] == ["spec.templates[0].nodeSelecter"]
    assert "unknown field" in problems[0].message and "did you mean 'nodeSelector'" in problems[0].message
    assert problems[0].check == "crd"


def test_misspelled_metadata_field_fails_the_crd(schemas: ArgoSchemas) -> None:
    doc = base_workflow()
    doc["metadata"]["lables"] = doc["metadata"].pop("labels")
    assert has_problem(check_crd(doc, schemas), "metadata.lables", "did you mean 'labels'")


def test_int_where_int_or_string_is_expected_passes_after_the_patch(schemas: ArgoSchemas) -> None:
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["retryStrategy"] = {
        "limit": 2,
        "backoff": {"duration": "5s", "factor": 2},
    }
    doc["spec"]["templates"][TRAIN]["container"]["resources"] = {"limits": {"cpu": 1, "memory": "1Gi"}}
    assert check_schema(doc, schemas) == []
    assert check_crd(doc, schemas) == []
    # the published schema.json alone rejects it: the patch is what makes it pass
    unpatched = Draft202012Validator(
        {
            "$ref": "#/definitions/io.argoproj.workflow.v1alpha1.Workflow",
            "definitions": schemas.schema_json["definitions"],
        }
    )
    assert not unpatched.is_valid(doc)


def test_wrong_type_is_reported_by_both_schemas(schemas: ArgoSchemas) -> None:
    doc = base_workflow()
    doc["spec"]["parallelism"] = "four"
    assert has_problem(check_schema(doc, schemas), "spec.parallelism", "expected integer")
    assert has_problem(check_crd(doc, schemas), "spec.parallelism", "expected integer")


def test_crd_cel_rule_is_enforced(schemas: ArgoSchemas) -> None:
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["script"] = {"image": "img:1", "source": "print(1)"}
    assert has_problem(check_crd(doc, schemas), "spec.templates[0]", "at most one template type")
    assert has_problem(lint_errors(doc), "spec.templates[0]", "several types")


def test_crd_list_map_keys_must_be_unique(schemas: ArgoSchemas) -> None:
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["container"]["env"] = [
        {"name": "A", "value": "1"},
        {"name": "A", "value": "2"},
    ]
    assert has_problem(check_crd(doc, schemas), "spec.templates[0].container.env[1]", "duplicate entry")


def test_every_cel_rule_of_the_crds_has_a_python_equivalent(schemas: ArgoSchemas) -> None:
    def rules(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for rule in node.get("x-kubernetes-validations", []):
                yield rule["rule"]
            for value in node.values():
                yield from rules(value)
        elif isinstance(node, list):
            for value in node:
                yield from rules(value)

    found = {rule for kind in CRD_FILES for rule in rules(schemas.crd_schema(kind))}
    assert found, "the CRDs declare CEL rules"
    assert found - set(CEL_RULES) == set()


def test_the_vendored_schemas_are_argo_v4_1_2_unchanged() -> None:
    """The vendored copy is what the tests check against by default; it decompresses to exactly the
    reference files in ../shared/argo (when that is present), and carries Argo's license."""
    assert default_schemas_dir() == VENDORED_DIR or os.environ.get(SCHEMAS_ENV)
    assert "Apache License" in (VENDORED_DIR / "LICENSE").read_text()
    for name in (SCHEMA_FILE, *CRD_FILES.values()):
        vendored = schema_file(VENDORED_DIR, name)
        assert vendored is not None and vendored.suffix == ".gz", name
        reference = REPO.parent / "shared" / "argo" / name
        if reference.is_file():
            assert (
                hashlib.sha256(read_bytes(vendored)).digest()
                == hashlib.sha256(reference.read_bytes()).digest()
            )
    assert ArgoSchemas.load(VENDORED_DIR).schema_json["definitions"]


def test_missing_schema_directory_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absent = tmp_path / "no-argo-here"
    with pytest.raises(SchemasUnavailable, match="no-argo-here") as err:
        ArgoSchemas.load(absent)
    assert err.value.path == absent.resolve()
    monkeypatch.setenv(SCHEMAS_ENV, str(absent))
    assert default_schemas_dir() == absent
    with pytest.raises(SchemasUnavailable, match="directory not found"):
        ArgoSchemas.load()  # asked for, the published schemas are required
    # not asked for, an absent (or empty) directory leaves their layer out and the others run
    assert find_schemas() is None and check_manifest(base_workflow()) == []
    (tmp_path / "empty").mkdir()
    assert find_schemas(tmp_path / "empty") is None
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "schema.json").write_text("{}")
    with pytest.raises(SchemasUnavailable, match="does not define Workflow"):
        ArgoSchemas.load(partial)
    monkeypatch.setenv(SCHEMAS_ENV, str(partial))  # some of the files: an error, never a silent skip
    with pytest.raises(SchemasUnavailable, match="does not define Workflow"):
        check_manifest(base_workflow())


#: A lint test (runs anywhere) and two of the published layer's.
_SELECTED = (
    "tests/conformance/test_lint_names.py::test_base_workflow_is_clean",
    "tests/conformance/test_published.py::test_base_workflow_is_clean_against_schemas",
    "tests/conformance/test_published.py::test_misspelled_field_passes_schema_json_but_fails_the_crd",
)
_HERA_TEST = "tests/conformance/test_hera_schema.py::test_misspelled_field_fails_the_hera_schema"


def _pytest_without_schemas(directory: Path, *tests: str, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env[SCHEMAS_ENV] = str(directory)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *tests],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_schema_tests_skip_naming_the_directory_when_schemas_are_absent(tmp_path: Path) -> None:
    empty = tmp_path / "argo-schemas-absent"
    empty.mkdir()
    result = _pytest_without_schemas(empty, *_SELECTED, ci=None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 2 skipped" in result.stdout or "2 skipped, 1 passed" in result.stdout, result.stdout
    assert f"Argo schemas not available at {empty}" in result.stdout


def test_schema_tests_fail_under_ci_when_schemas_are_absent(tmp_path: Path) -> None:
    """...while the layers that need nothing (here the Hera-derived schema) still run and pass."""
    absent = tmp_path / "argo-schemas-absent"
    result = _pytest_without_schemas(absent, *_SELECTED, _HERA_TEST, ci="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 passed, 2 errors" in result.stdout, result.stdout
    assert f"Argo schemas not available at {absent}" in result.stdout and "under CI" in result.stdout
