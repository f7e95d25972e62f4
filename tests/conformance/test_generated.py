"""Every document the builder generates (1, 10 and 1,000 edges) passes every layer, and generation is
deterministic. The Hera-derived schema and the lint always run; the published layer when present."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from typing import Any

import yaml
from hera.workflows import ClusterWorkflowTemplate, CronWorkflow, Workflow, WorkflowTemplate

from edgefed.workflows.spec import FederatedTask, parse_task
from tests.conformance import ArgoSchemas, check_crd, check_hera, check_manifest, check_schema, lint_manifest
from tests.conformance.hera_schema import NEWER_FIELDS
from tests.conformance.samples import assert_clean, generated_manifests, make_task, templates_of
from tests.helpers import REPO

HERA_KINDS: dict[str, Any] = {
    "Workflow": Workflow,
    "WorkflowTemplate": WorkflowTemplate,
    "ClusterWorkflowTemplate": ClusterWorkflowTemplate,
    "CronWorkflow": CronWorkflow,
}


def test_generated_manifests_pass_all_checks(docs: list[dict[str, Any]], schemas: ArgoSchemas) -> None:
    templates = templates_of(docs)
    assert_clean([p for doc in docs for p in check_manifest(doc, schemas=schemas, templates=templates)])


def _created_workflows(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The Workflows ``doc``'s resource templates create, as Argo would after substituting their
    ``{{...}}`` tags (here: with values of the right shape, JSON ones with quotes in them)."""
    params = {p["name"]: p.get("value", "") for p in doc["spec"].get("arguments", {}).get("parameters", [])}
    values = {f"workflow.parameters.{k}": v for k, v in params.items()}
    values["workflow.parameters.config"] = json.dumps({"note": 'it\'s "quoted": yes'})
    values |= {"workflow.name": "t-abcde", "inputs.parameters.edges": '[{"name":"a"}]'}
    out = []
    for t in doc["spec"].get("templates", []):
        resource = t.get("resource") or {}
        if resource.get("action") != "create":
            continue
        for p in (t.get("inputs") or {}).get("parameters", []):
            values.setdefault(f"inputs.parameters.{p['name']}", "7" if p["name"] == "round" else "true")
        values["inputs.parameters.name"] = "t-r00007-a1"
        text = re.sub(r"\{\{([^}]*)\}\}", lambda m: values[m.group(1).strip()], resource["manifest"])
        out.append((t["name"], yaml.safe_load(text)))
    return out


def test_the_workflows_resource_templates_create_pass_all_checks(
    docs: list[dict[str, Any]], schemas: ArgoSchemas
) -> None:
    """A round Workflow the task Workflow creates is what `argo submit` of it would be: valid, its
    workflowTemplateRef among the generated templates, every parameter it needs given."""
    templates = templates_of(docs)
    created = [
        (t, child) for doc in docs if doc["kind"] == "Workflow" for t, child in _created_workflows(doc)
    ]
    assert created, "no task Workflow among the generated documents"
    for name, child in created:
        assert child["kind"] == "Workflow", name
        assert_clean(check_manifest(child, schemas=schemas, templates=templates))


def test_generated_manifests_pass_semantic_lint(docs: list[dict[str, Any]]) -> None:
    templates = templates_of(docs)
    assert_clean([p for doc in docs for p in lint_manifest(doc, templates=templates)])


def test_generated_manifests_pass_the_hera_schema(docs: list[dict[str, Any]]) -> None:
    """The layer every user has (no ../shared needed)."""
    assert_clean([p for doc in docs for p in check_hera(doc)])


def test_both_schema_layers_agree_on_generated_manifests(
    docs: list[dict[str, Any]], schemas: ArgoSchemas
) -> None:
    for doc in docs:
        assert check_hera(doc) == [] and check_schema(doc, schemas) == [] and check_crd(doc, schemas) == []


def test_generation_is_deterministic(task: FederatedTask, docs: list[dict[str, Any]]) -> None:
    again = parse_task(json.loads(task.model_dump_json(by_alias=True)))
    first = [yaml.safe_dump(d, sort_keys=False) for d in docs]
    second = [yaml.safe_dump(d, sort_keys=False) for d in generated_manifests(again)]
    assert first == second


def test_generation_is_deterministic_across_processes() -> None:
    """Another interpreter (another hash seed) generates byte-identical YAML."""
    code = (
        "import sys, yaml; sys.path.insert(0, '.');"
        "from tests.conformance.samples import make_task, generated_manifests;"
        "sys.stdout.write(yaml.safe_dump_all(generated_manifests(make_task(10)), sort_keys=False))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out == yaml.safe_dump_all(generated_manifests(make_task(10)), sort_keys=False)


def _without_newer_fields(doc: Any) -> Any:
    """``doc`` less the fields newer than Hera's models (which Hera's round trip drops: NEWER_FIELDS)."""
    newer = {name for _, name in NEWER_FIELDS}
    if isinstance(doc, dict):
        return {k: _without_newer_fields(v) for k, v in doc.items() if k not in newer}
    if isinstance(doc, list):
        return [_without_newer_fields(v) for v in doc]
    return doc


def test_hera_round_trip_leaves_documents_unchanged(docs: list[dict[str, Any]]) -> None:
    """Loaded into Hera and dumped again, a document is unchanged (but for fields Hera's models lack)."""
    for doc in docs:
        hera_cls = HERA_KINDS[doc["kind"]]
        expected = _without_newer_fields(doc)
        assert hera_cls.from_dict(copy.deepcopy(doc)).to_dict() == expected
        assert yaml.safe_load(yaml.safe_dump(doc, sort_keys=False)) == doc
        assert hera_cls.from_yaml(hera_cls.from_dict(copy.deepcopy(doc)).to_yaml()).to_dict() == expected


def test_1000_custom_edges_pass_every_layer() -> None:
    """Every layer available here (the published one too under CI, where its tests require it); the
    validators are built once per kind and cached, so checking a second time gives the same answer."""
    docs = generated_manifests(make_task(1000, custom=True))
    for doc in docs:
        assert_clean(check_manifest(doc))
        assert_clean(check_manifest(doc))
