"""Offline Argo conformance of the generated documents (edgefed.workflows.conformance).

Schema and CRD tests need Argo's published schemas (``../shared/argo`` beside the repository, or
``$EDGEFED_ARGO_SCHEMAS``) and are skipped, naming the directory, when it is absent. The semantic lint
tests need nothing and always run.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hera.workflows import ClusterWorkflowTemplate, CronWorkflow, Workflow, WorkflowTemplate
from jsonschema import Draft202012Validator

from edgefed.workflows.build import (
    generic_round_template,
    manifests,
    round_workflow,
    to_document,
)
from edgefed.workflows.conformance import (
    CEL_RULES,
    CRD_FILES,
    SCHEMAS_ENV,
    ArgoSchemas,
    Problem,
    SchemasUnavailable,
    check_crd,
    check_manifest,
    check_schema,
    cron_schedule_problem,
    default_schemas_dir,
    errors_only,
    format_path,
    lint_manifest,
    main,
    parse_depends,
)
from edgefed.workflows.spec import FederatedTask, parse_task
from tests.helpers import REPO, task_doc

HERA_KINDS: dict[str, Any] = {
    "Workflow": Workflow,
    "WorkflowTemplate": WorkflowTemplate,
    "ClusterWorkflowTemplate": ClusterWorkflowTemplate,
    "CronWorkflow": CronWorkflow,
}


def generated_manifests(task: FederatedTask) -> list[dict[str, Any]]:
    """Every Argo document the builder generates for ``task``, of any kind: the round WorkflowTemplate,
    init and round Workflows (also the last round, with evaluation), the submission referencing the
    template, the CronWorkflow, and the chart's task-independent template."""
    last = task.spec.last_round
    task_yaml = yaml.safe_dump(task.model_dump(mode="json", by_alias=True, exclude_none=True))
    return [
        *manifests(task, task_yaml=task_yaml).values(),
        to_document(round_workflow(task, last, evaluate=True)),
        to_document(
            generic_round_template(
                image="example.org/edgefed:1", cloud_secret="cloud", store="http://s3:9000"
            )
        ),
    ]


def _task(edges: int, *, custom: bool = False) -> FederatedTask:
    """A task with ``edges`` edges; ``custom``: every edge departs from the conventions (largest items)."""
    names = tuple(f"edge-{i}" for i in range(edges))
    if custom:
        doc = task_doc("heart-demo", tuple(f"hospital-{i:04d}" for i in range(edges)))
        for i, edge in enumerate(doc["spec"]["edges"]):
            edge["credentialsSecret"] = f"hospital-{i:04d}-keys"
            edge["store"] = {"endpoint": f"minio-{i:04d}.hospitals.example:9000", "secure": True}
            edge["dataset"]["key"] = f"heart/{i:04d}/train.parquet"
            edge["tolerations"] = [{"key": "edgefed.io/edge", "operator": "Exists", "effect": "NoSchedule"}]
        return parse_task(doc)
    if edges == 10:  # the optional knobs, so their output is covered too
        doc = task_doc(
            "heart-demo", names, parallelism=4, rounds=6, evaluation={"everyRounds": 3}, stop={"maxRounds": 5}
        )
        doc["spec"]["edges"][0]["store"] = {"endpoint": "minio.edge-0.example:9000", "secure": True}
        doc["spec"]["edges"][1]["credentialsSecret"] = "edge-1-keys"
        return parse_task(doc)
    return parse_task(task_doc("t1", names))


TASKS_UNDER_TEST = {"1-edge": (1, False), "10-edges": (10, False), "1000-edges": (1000, False)}
TASKS_UNDER_TEST["1000-custom-edges"] = (1000, True)


@pytest.fixture(scope="module", params=list(TASKS_UNDER_TEST))
def task(request: pytest.FixtureRequest) -> FederatedTask:
    edges, custom = TASKS_UNDER_TEST[request.param]
    return _task(edges, custom=custom)


@pytest.fixture(scope="module")
def docs(task: FederatedTask) -> list[dict[str, Any]]:
    """The task's generated manifests, built once per module (tests must not modify them)."""
    return generated_manifests(task)


@pytest.fixture(scope="module")
def schemas() -> ArgoSchemas:
    try:
        return ArgoSchemas.load()
    except SchemasUnavailable as err:
        pytest.skip(f"Argo schemas not available at {err.path} ({err.detail})", allow_module_level=False)


def _show(problems: list[Problem]) -> str:
    return "\n".join(map(str, problems))


def _assert_clean(problems: list[Problem]) -> None:
    errors = [p for p in problems if p.severity == "error"]
    assert errors == [], _show(errors)


# ------------------------------------------------------------------------------ generated manifests


def _templates(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The generated WorkflowTemplates, which the other documents' templateRefs may name."""
    return [d for d in docs if d["kind"] in ("WorkflowTemplate", "ClusterWorkflowTemplate")]


def test_generated_manifests_pass_all_checks(docs: list[dict[str, Any]], schemas: ArgoSchemas) -> None:
    templates = _templates(docs)
    _assert_clean([p for doc in docs for p in check_manifest(doc, schemas=schemas, templates=templates)])


def test_generated_manifests_pass_semantic_lint(docs: list[dict[str, Any]]) -> None:
    templates = _templates(docs)
    _assert_clean([p for doc in docs for p in lint_manifest(doc, templates=templates)])


def test_generation_is_deterministic(task: FederatedTask, docs: list[dict[str, Any]]) -> None:
    again = parse_task(json.loads(task.model_dump_json(by_alias=True)))
    first = [yaml.safe_dump(d, sort_keys=False) for d in docs]
    second = [yaml.safe_dump(d, sort_keys=False) for d in generated_manifests(again)]
    assert first == second


def test_generation_is_deterministic_across_processes() -> None:
    """Another interpreter (another hash seed) generates byte-identical YAML."""
    code = (
        "import sys, yaml; sys.path.insert(0, '.');"
        "from tests.conformance.test_conformance import _task, generated_manifests;"
        "sys.stdout.write(yaml.safe_dump_all(generated_manifests(_task(10)), sort_keys=False))"
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
    assert out == yaml.safe_dump_all(generated_manifests(_task(10)), sort_keys=False)


def test_hera_round_trip_leaves_documents_unchanged(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        hera_cls = HERA_KINDS[doc["kind"]]
        assert hera_cls.from_dict(copy.deepcopy(doc)).to_dict() == doc
        assert yaml.safe_load(yaml.safe_dump(doc, sort_keys=False)) == doc
        assert hera_cls.from_yaml(hera_cls.from_dict(copy.deepcopy(doc)).to_yaml()).to_dict() == doc


def test_checking_1000_edges_is_fast(schemas: ArgoSchemas) -> None:
    docs = generated_manifests(_task(1000, custom=True))
    for doc in docs:
        check_manifest(doc, schemas=schemas)  # validators built and cached per kind
    start = time.perf_counter()
    for doc in docs:
        check_manifest(doc, schemas=schemas)
    assert time.perf_counter() - start < 1.0


# ------------------------------------------------------------------------------ a hand-written workflow


def base_workflow() -> dict[str, Any]:
    """A small valid round-like workflow; negative tests break one thing each."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "t1-r00001-", "labels": {"edgefed.io/task": "t1"}},
        "spec": {
            "entrypoint": "round",
            "arguments": {
                "parameters": [
                    {"name": "edges", "value": '[{"name":"a","node":"n1"},{"name":"b","node":"n2"}]'},
                    {"name": "round", "value": "1"},
                ]
            },
            "templates": [
                {
                    "name": "train",
                    "inputs": {"parameters": [{"name": "edge"}, {"name": "node"}]},
                    "container": {
                        "image": "img:1",
                        "args": [
                            "--edge={{inputs.parameters.edge}}",
                            "--round={{workflow.parameters.round}}",
                        ],
                    },
                    "nodeSelector": {"kubernetes.io/hostname": "{{inputs.parameters.node}}"},
                    "outputs": {
                        "parameters": [{"name": "loss", "valueFrom": {"path": "/tmp/loss", "default": ""}}]
                    },
                    "retryStrategy": {"limit": "2", "retryPolicy": "OnError"},
                },
                {
                    "name": "aggregate",
                    "inputs": {"parameters": [{"name": "losses", "default": "[]"}]},
                    "container": {"image": "img:1", "args": ["{{inputs.parameters.losses}}"]},
                    "outputs": {"parameters": [{"name": "version", "valueFrom": {"path": "/tmp/version"}}]},
                },
                {
                    "name": "round",
                    "dag": {
                        "tasks": [
                            {
                                "name": "train",
                                "template": "train",
                                "withParam": "{{workflow.parameters.edges}}",
                                "arguments": {
                                    "parameters": [
                                        {"name": "edge", "value": "{{item.name}}"},
                                        {"name": "node", "value": "{{item.node}}"},
                                    ]
                                },
                            },
                            {
                                "name": "aggregate",
                                "template": "aggregate",
                                "depends": "train.AnySucceeded || train.AllFailed",
                                "arguments": {
                                    "parameters": [
                                        {"name": "losses", "value": "{{tasks.train.outputs.parameters}}"}
                                    ]
                                },
                            },
                        ]
                    },
                },
            ],
        },
    }


TRAIN, AGGREGATE, ROUND = 0, 1, 2
TASKS = ("spec", "templates", ROUND, "dag", "tasks")


def _tasks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["templates"][ROUND]["dag"]["tasks"]


def _errors(doc: dict[str, Any], **kwargs: Any) -> list[Problem]:
    return errors_only(lint_manifest(doc, **kwargs))


def _has(problems: list[Problem], path: str, *words: str) -> bool:
    return any(p.path == path and all(w in p.message for w in words) for p in problems)


def test_base_workflow_is_clean() -> None:
    assert lint_manifest(base_workflow()) == []


def test_base_workflow_is_clean_against_schemas(schemas: ArgoSchemas) -> None:
    assert check_manifest(base_workflow(), schemas=schemas) == []


# ------------------------------------------------------------------------------ schema / CRD layers


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
    assert _has(check_crd(doc, schemas), "metadata.lables", "did you mean 'labels'")


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
    assert _has(check_schema(doc, schemas), "spec.parallelism", "expected integer")
    assert _has(check_crd(doc, schemas), "spec.parallelism", "expected integer")


def test_crd_cel_rule_is_enforced(schemas: ArgoSchemas) -> None:
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["script"] = {"image": "img:1", "source": "print(1)"}
    assert _has(check_crd(doc, schemas), "spec.templates[0]", "at most one template type")
    assert _has(_errors(doc), "spec.templates[0]", "several types")


def test_crd_list_map_keys_must_be_unique(schemas: ArgoSchemas) -> None:
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["container"]["env"] = [
        {"name": "A", "value": "1"},
        {"name": "A", "value": "2"},
    ]
    assert _has(check_crd(doc, schemas), "spec.templates[0].container.env[1]", "duplicate entry")


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


def test_unsupported_kind_is_reported() -> None:
    problems = lint_manifest({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
    assert [p.path for p in problems] == ["kind"] and "unsupported kind 'Pod'" in problems[0].message


def test_missing_schema_directory_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absent = tmp_path / "no-argo-here"
    with pytest.raises(SchemasUnavailable, match="no-argo-here") as err:
        ArgoSchemas.load(absent)
    assert err.value.path == absent.resolve()
    monkeypatch.setenv(SCHEMAS_ENV, str(absent))
    assert default_schemas_dir() == absent
    with pytest.raises(SchemasUnavailable, match="directory not found"):
        check_manifest(base_workflow())
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "schema.json").write_text("{}")
    with pytest.raises(SchemasUnavailable, match="does not define Workflow"):
        ArgoSchemas.load(partial)


def test_schema_tests_skip_naming_the_directory_when_schemas_are_absent(tmp_path: Path) -> None:
    absent = tmp_path / "argo-schemas-absent"
    env = {**os.environ, SCHEMAS_ENV: str(absent)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/conformance/test_conformance.py",
            "-k",
            "misspelled_field or base_workflow_is_clean",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 2 skipped" in result.stdout or "2 skipped, 1 passed" in result.stdout, result.stdout
    assert f"Argo schemas not available at {absent}" in result.stdout


# ------------------------------------------------------------------------------ semantic lint: names


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("generateName", "Bad_Name-", ("DNS-1123",)),
        ("name", "UPPER", ("DNS-1123",)),
        ("name", "x" * 64, ("at most 63",)),
    ],
)
def test_bad_metadata_names(field: str, value: str, words: tuple[str, ...]) -> None:
    doc = base_workflow()
    doc["metadata"] = {field: value}
    assert _has(_errors(doc), f"metadata.{field}", *words)


def test_generate_name_may_end_with_a_dash_and_names_may_not() -> None:
    doc = base_workflow()
    assert _errors(doc) == []
    doc["metadata"] = {"name": "t1-r00001-"}
    assert _has(_errors(doc), "metadata.name", "DNS-1123")


def test_cron_workflow_names_leave_room_for_the_timestamp() -> None:
    doc = cron_workflow()
    doc["metadata"]["name"] = "c" * 53
    assert _has(_errors(doc), "metadata.name", "at most 52")


def test_bad_label_is_reported() -> None:
    doc = base_workflow()
    doc["metadata"]["labels"]["edgefed.io/task"] = "not a label value"
    assert _has(_errors(doc), 'metadata.labels["edgefed.io/task"]', "invalid label value")


def test_bad_template_and_task_names() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][AGGREGATE]["name"] = "Aggregate"
    _tasks(doc)[1]["template"] = "Aggregate"
    _tasks(doc)[0]["name"] = "train_edges"
    _tasks(doc)[1]["depends"] = "train_edges"
    errors = _errors(doc)
    assert _has(errors, "spec.templates[1].name", "lower-case", "pod")
    assert _has(errors, format_path((*TASKS, 0, "name")), "letters, digits and '-'")


def test_template_names_must_be_unique() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][AGGREGATE]["name"] = "train"
    assert _has(_errors(doc), "spec.templates[1].name", "not unique")


# ------------------------------------------------------------------------------ semantic lint: DAGs


def test_depends_target_that_does_not_exist() -> None:
    doc = base_workflow()
    _tasks(doc)[1]["depends"] = "trian.AnySucceeded || train.AllFailed"
    errors = _errors(doc)
    assert _has(errors, "spec.templates[2].dag.tasks[1].depends", "'trian'", "did you mean 'train'")


@pytest.mark.parametrize(
    ("depends", "words"),
    [
        ("train &&", ("cannot parse", "at the end")),
        ("(train.Succeeded", ("cannot parse", "expected ')'")),
        ("train.Succeded", ("'train.Succeded' is invalid",)),
        ("train and train", ("cannot parse",)),
    ],
)
def test_malformed_depends(depends: str, words: tuple[str, ...]) -> None:
    doc = base_workflow()
    _tasks(doc)[1]["depends"] = depends
    assert _has(_errors(doc), "spec.templates[2].dag.tasks[1].depends", *words)


def test_items_results_need_a_task_that_fans_out() -> None:
    doc = base_workflow()
    del _tasks(doc)[0]["withParam"]
    _tasks(doc)[0]["arguments"]["parameters"] = [
        {"name": "edge", "value": "a"},
        {"name": "node", "value": "n1"},
    ]
    assert _has(_errors(doc), "spec.templates[2].dag.tasks[1].depends", "does not fan out")


def test_continue_on_cannot_be_combined_with_depends() -> None:
    doc = base_workflow()
    _tasks(doc)[1]["continueOn"] = {"failed": True}
    assert _has(_errors(doc), "spec.templates[2].dag.tasks[1].continueOn", "'continueOn'", "depends")
    # Argo's rule is per DAG: a task without depends may not use continueOn either
    doc = base_workflow()
    _tasks(doc)[0]["continueOn"] = {"failed": True}
    assert _has(_errors(doc), "spec.templates[2].dag.tasks[0].continueOn", "'continueOn'")


def test_depends_and_dependencies_cannot_be_mixed() -> None:
    doc = base_workflow()
    _tasks(doc).append({"name": "report", "template": "aggregate", "dependencies": ["aggregate"]})
    assert _has(_errors(doc), "spec.templates[2].dag.tasks[2].dependencies", "uses 'depends'")


def test_dependencies_entries_must_exist() -> None:
    doc = base_workflow()
    _tasks(doc)[1]["dependencies"] = ["train", "ghost"]
    del _tasks(doc)[1]["depends"]
    assert _has(_errors(doc), "spec.templates[2].dag.tasks[1].dependencies[1]", "'ghost'")


def test_dependency_cycle() -> None:
    doc = base_workflow()
    _tasks(doc)[0]["depends"] = "aggregate"
    errors = _errors(doc)
    cycles = [p for p in errors if "cycle" in p.message]
    assert len(cycles) == 1 and "train -> aggregate -> train" in cycles[0].message


def test_empty_dag() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][ROUND]["dag"]["tasks"] = []
    assert _has(_errors(doc), "spec.templates[2].dag.tasks", "at least one task")


# ------------------------------------------------------------------------------ semantic lint: references


def test_unknown_templates() -> None:
    doc = base_workflow()
    _tasks(doc)[1]["template"] = "aggregator"
    doc["spec"]["onExit"] = "cleanup"
    doc["spec"]["hooks"] = {"exit": {"template": "notify"}, "running": {"template": "train"}}
    errors = _errors(doc)
    assert _has(errors, "spec.templates[2].dag.tasks[1].template", "'aggregator'", "did you mean 'aggregate'")
    assert _has(errors, "spec.onExit", "'cleanup'")
    assert _has(errors, "spec.hooks.exit.template", "'notify'")
    assert _has(errors, "spec.hooks.running", "needs an expression")


def test_unknown_entrypoint() -> None:
    doc = base_workflow()
    doc["spec"]["entrypoint"] = "main"
    assert _has(_errors(doc), "spec.entrypoint", "'main'")
    del doc["spec"]["entrypoint"]
    assert _has(_errors(doc), "spec.entrypoint", "required")


def _wft(name: str, inputs: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": name},
        "spec": {
            "templates": [
                {
                    "name": "score",
                    "inputs": {"parameters": [{"name": n} for n in inputs]},
                    "container": {
                        "image": "img:1",
                        "args": [f"{{{{inputs.parameters.{n}}}}}" for n in inputs],
                    },
                }
            ]
        },
    }


def test_template_ref_is_out_of_scope_without_templates_and_resolved_with_them() -> None:
    doc = base_workflow()
    _tasks(doc).append(
        {
            "name": "score",
            "depends": "aggregate",
            "templateRef": {"name": "scoring", "template": "score"},
            "arguments": {
                "parameters": [{"name": "model", "value": "{{tasks.aggregate.outputs.parameters.version}}"}]
            },
        }
    )
    problems = lint_manifest(doc)
    assert errors_only(problems) == []
    assert [p.severity for p in problems] == ["warning"] and "out of scope" in problems[0].message
    assert lint_manifest(doc, templates=[_wft("scoring", ["model"])]) == []
    errors = _errors(doc, templates=[_wft("scoring", ["model", "dataset"])])
    assert _has(errors, "spec.templates[2].dag.tasks[2].arguments", "'dataset'", "not supplied")
    assert _has(_errors(doc, templates=[]), "spec.templates[2].dag.tasks[2].templateRef.name", "'scoring'")
    wrong = _wft("scoring", ["model"])
    wrong["spec"]["templates"][0]["name"] = "evaluate"
    assert _has(
        _errors(doc, templates=[wrong]), "spec.templates[2].dag.tasks[2].templateRef.template", "'score'"
    )


def test_undeclared_input_parameter() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["container"]["args"].append("--edges={{inputs.parameters.edges}}")
    assert _has(
        _errors(doc), "spec.templates[0].container.args[2]", "input parameter 'edges' is not declared"
    )


def test_undeclared_workflow_parameter() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["container"]["args"].append("--store={{workflow.parameters.store}}")
    assert _has(_errors(doc), "spec.templates[0].container.args[2]", "workflow parameter 'store'")


def test_workflow_template_parameters_come_from_its_own_arguments() -> None:
    doc = _wft("scoring", ["model"])
    doc["spec"]["templates"][0]["container"]["args"].append("{{workflow.parameters.store}}")
    assert _has(_errors(doc), "spec.templates[0].container.args[1]", "workflow parameter 'store'")
    doc["spec"]["arguments"] = {"parameters": [{"name": "store"}]}  # no value needed in a template
    assert _errors(doc) == []


def test_arguments_must_match_the_inputs_of_the_template_called() -> None:
    doc = base_workflow()
    _tasks(doc)[0]["arguments"]["parameters"][1]["name"] = "nodes"
    errors = _errors(doc)
    assert _has(
        errors, "spec.templates[2].dag.tasks[0].arguments.parameters[1].name", "no input parameter 'nodes'"
    )
    assert _has(errors, "spec.templates[2].dag.tasks[0].arguments", "'node'", "not supplied")
    # an input with a default need not be supplied
    doc = base_workflow()
    del _tasks(doc)[1]["arguments"]
    assert _errors(doc) == []


def test_argument_needs_a_value() -> None:
    doc = base_workflow()
    del _tasks(doc)[1]["arguments"]["parameters"][0]["value"]
    assert _has(_errors(doc), "spec.templates[2].dag.tasks[1].arguments.parameters[0]", "needs value")


def test_entrypoint_inputs_come_from_spec_arguments() -> None:
    doc = base_workflow()
    doc["spec"]["entrypoint"] = "train"
    assert _has(_errors(doc), "spec.entrypoint", "'edge'", "spec.arguments")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("{{tasks.ghost.outputs.parameters.version}}", ("task 'ghost' does not exist",)),
        ("{{tasks.aggregate.outputs.parameters.model}}", ("no output parameter 'model'", "version")),
        ("{{tasks.report.outputs.parameters.version}}", ("'report' is not a dependency",)),
        ("{{steps.aggregate.outputs.result}}", ("steps.* is only defined inside a steps template",)),
    ],
)
def test_task_output_references(value: str, words: tuple[str, ...]) -> None:
    doc = base_workflow()
    _tasks(doc).append(
        {
            "name": "report",
            "template": "aggregate",
            "depends": "aggregate",
            "arguments": {
                "parameters": [{"name": "losses", "value": "{{tasks.aggregate.outputs.parameters.version}}"}]
            },
        }
    )
    _tasks(doc).append(
        {
            "name": "publish",
            "template": "aggregate",
            "depends": "aggregate",
            "arguments": {"parameters": [{"name": "losses", "value": value}]},
        }
    )
    assert _errors(base_workflow()) == []
    assert _has(_errors(doc), format_path((*TASKS, 3, "arguments", "parameters", 0, "value")), *words)


def test_steps_see_only_earlier_groups() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][ROUND] = {
        "name": "round",
        "steps": [
            [
                {"name": "first", "template": "aggregate"},
                {
                    "name": "second",
                    "template": "aggregate",
                    "arguments": {
                        "parameters": [
                            {"name": "losses", "value": "{{steps.first.outputs.parameters.version}}"}
                        ]
                    },
                },
            ],
            [
                {
                    "name": "third",
                    "template": "aggregate",
                    "arguments": {
                        "parameters": [
                            {"name": "losses", "value": "{{steps.first.outputs.parameters.version}}"}
                        ]
                    },
                }
            ],
        ],
    }
    errors = _errors(doc)
    assert [p.path for p in errors] == ["spec.templates[2].steps[0][1].arguments.parameters[0].value"]
    assert "earlier step group" in errors[0].message


# ------------------------------------------------------------------------------ semantic lint: loops


def test_with_param_and_with_items_are_exclusive() -> None:
    doc = base_workflow()
    _tasks(doc)[0]["withItems"] = [{"name": "a", "node": "n1"}]
    assert _has(_errors(doc), "spec.templates[2].dag.tasks[0]", "only one of withItems, withParam")


def test_item_only_in_a_task_that_fans_out() -> None:
    doc = base_workflow()
    _tasks(doc)[1]["arguments"]["parameters"][0]["value"] = "{{item}}"
    assert _has(_errors(doc), "spec.templates[2].dag.tasks[1].arguments.parameters[0].value", "fans out")
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["container"]["args"].append("{{item.name}}")
    assert _has(_errors(doc), "spec.templates[0].container.args[2]", "input parameter")


def test_item_keys_must_exist_in_the_items() -> None:
    doc = base_workflow()
    _tasks(doc)[0]["arguments"]["parameters"][1]["value"] = "{{item.host}}"
    assert _has(
        _errors(doc),
        "spec.templates[2].dag.tasks[0].arguments.parameters[1].value",
        "{{item.host}}",
        "item.node",
    )
    doc = base_workflow()
    del _tasks(doc)[0]["withParam"]
    _tasks(doc)[0]["withItems"] = [{"name": "a", "node": "n1"}]
    assert _errors(doc) == []
    _tasks(doc)[0]["withItems"] = [{"name": "a"}]
    assert _has(_errors(doc), "spec.templates[2].dag.tasks[0].arguments.parameters[1].value", "{{item.node}}")


def test_with_param_value_must_be_a_json_list() -> None:
    doc = base_workflow()
    doc["spec"]["arguments"]["parameters"][0]["value"] = '{"name": "a"}'
    assert _has(_errors(doc), "spec.templates[2].dag.tasks[0].withParam", "JSON list")


def test_arguments_too_long_to_exec() -> None:
    doc = base_workflow()
    doc["spec"]["arguments"]["parameters"].append({"name": "blob", "value": "x" * 200_000})
    doc["spec"]["templates"][AGGREGATE]["container"]["args"].append("--blob={{workflow.parameters.blob}}")
    assert _has(_errors(doc), "spec.templates[1].container.args[1]", "200,007 bytes", "MAX_ARG_STRLEN")
    doc["spec"]["arguments"]["parameters"][-1]["value"] = "x" * 100_000
    assert _errors(doc) == []
    doc["spec"]["templates"][AGGREGATE]["container"]["env"] = [
        {"name": f"BLOB{i}", "value": "{{workflow.parameters.blob}}"} for i in range(21)
    ]
    assert _has(_errors(doc), "spec.templates[1].container", "ARG_MAX")


# ------------------------------------------------------------------------------ semantic lint: other kinds


def cron_workflow() -> dict[str, Any]:
    base = base_workflow()
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "t1-rounds"},
        "spec": {"schedules": ["*/30 * * * *"], "timezone": "Europe/Paris", "workflowSpec": base["spec"]},
    }


def test_cron_workflow() -> None:
    assert lint_manifest(cron_workflow()) == []
    doc = cron_workflow()
    doc["spec"]["schedules"] = ["*/30 * * *", "61 * * * *"]
    doc["spec"]["timezone"] = "Mars/Olympus"
    errors = _errors(doc)
    assert _has(errors, "spec.schedules[0]", "expected 5 fields")
    assert _has(errors, "spec.schedules[1]", "outside 0-59")
    assert _has(errors, "spec.timezone", "Mars/Olympus")
    doc["spec"]["workflowSpec"]["entrypoint"] = "nope"
    assert _has(_errors(doc), "spec.workflowSpec.entrypoint", "'nope'")


def test_cron_workflow_against_schemas(schemas: ArgoSchemas) -> None:
    assert check_manifest(cron_workflow(), schemas=schemas) == []
    doc = cron_workflow()
    doc["spec"]["schedule"] = "* * * * *"  # removed in Argo v4
    assert _has(check_crd(doc, schemas), "spec.schedule", "unknown field", "did you mean 'schedules'")


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [
        ("0 3 * * mon-fri", True),
        ("@every 1h30m", True),
        ("@daily", True),
        ("CRON_TZ=UTC 0 0 1 jan *", True),
        ("0 24 * * *", False),
        ("0 0 * * 7", False),
        ("*/0 * * * *", False),
        ("@fortnightly", False),
    ],
)
def test_cron_schedules(schedule: str, ok: bool) -> None:
    assert (cron_schedule_problem(schedule) is None) is ok


def test_workflow_template_needs_no_entrypoint() -> None:
    assert lint_manifest(_wft("scoring", ["model"])) == []


def test_workflow_parameters_without_value_are_a_warning() -> None:
    doc = base_workflow()
    del doc["spec"]["arguments"]["parameters"][1]["value"]
    problems = lint_manifest(doc)
    assert errors_only(problems) == []
    assert _has(problems, "spec.arguments.parameters[1]", "'round' has no value", "argo submit -p")


def test_submission_from_a_workflow_template() -> None:
    template = _wft("scoring", ["model"])
    template["spec"]["entrypoint"] = "score"
    template["spec"]["arguments"] = {"parameters": [{"name": "model"}, {"name": "store", "value": "s3"}]}
    template["spec"]["templates"][0]["inputs"]["parameters"][0]["value"] = "{{workflow.parameters.model}}"
    submission = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "scoring-"},
        "spec": {
            "workflowTemplateRef": {"name": "scoring"},
            "arguments": {"parameters": [{"name": "model", "value": "v3"}]},
        },
    }
    assert lint_manifest(template) == []
    assert lint_manifest(submission, templates=[template]) == []
    problems = lint_manifest(submission)
    assert errors_only(problems) == [] and "out of scope" in problems[0].message
    assert _has(_errors(submission, templates=[]), "spec.workflowTemplateRef.name", "'scoring'")
    del submission["spec"]["arguments"]
    assert _has(lint_manifest(submission, templates=[template]), "spec.arguments", "'model'", "no value")
    submission["spec"]["templates"] = template["spec"]["templates"]
    assert _has(_errors(submission, templates=[template]), "spec.templates", "must not define templates")


# ------------------------------------------------------------------------------ helpers


def test_parse_depends() -> None:
    deps, problem = parse_depends("A && (C.Succeeded || C.Failed) || !'5B' && should-run.AnySucceeded")
    assert problem is None
    assert deps == {"A": {""}, "C": {"Succeeded", "Failed"}, "5B": {""}, "should-run": {"AnySucceeded"}}
    assert parse_depends("A ||| B")[1] is not None
    assert parse_depends("A B")[1] == "unexpected 'B' at position 2"


def test_format_path_and_problem() -> None:
    assert (
        format_path(("spec", "templates", 2, "dag", "tasks", 1, "depends"))
        == "spec.templates[2].dag.tasks[1].depends"
    )
    assert format_path(("metadata", "labels", "edgefed.io/task")) == 'metadata.labels["edgefed.io/task"]'
    assert format_path(()) == "(document)"
    assert str(Problem("spec.entrypoint", "missing")) == "spec.entrypoint: missing [lint]"


# ------------------------------------------------------------------------------ command line


def _write(path: Path, *docs: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def test_main_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path / "good.yaml", base_workflow())
    bad_doc = base_workflow()
    _tasks(bad_doc)[1]["depends"] = "ghost"
    bad = _write(tmp_path / "bad.yaml", bad_doc)
    assert main(["--lint-only", str(good)]) == 0
    assert main(["--lint-only", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad} Workflow/t1-r00001-: spec.templates[2].dag.tasks[1].depends:" in out and "'ghost'" in out
    assert main(["--lint-only", str(tmp_path / "missing.yaml")]) == 2
    (tmp_path / "broken.yaml").write_text("a: [unclosed")
    assert main(["--lint-only", str(tmp_path / "broken.yaml")]) == 2
    assert main(["--schemas", str(tmp_path / "no-schemas"), str(good)]) == 2
    assert "no-schemas" in capsys.readouterr().err


def test_main_resolves_template_refs_among_its_files(tmp_path: Path, schemas: ArgoSchemas) -> None:
    doc = base_workflow()
    _tasks(doc).append(
        {"name": "score", "depends": "aggregate", "templateRef": {"name": "scoring", "template": "score"}}
    )
    both = _write(tmp_path / "both.yaml", doc, _wft("scoring", []))
    assert main(["--schemas", str(schemas.path), str(both)]) == 0


def test_module_runs_as_a_script(tmp_path: Path) -> None:
    bad = base_workflow()
    bad["spec"]["templates"][TRAIN]["container"]["args"].append("{{inputs.parameters.nope}}")
    path = _write(tmp_path / "bad.yaml", bad)
    result = subprocess.run(
        [sys.executable, "-m", "edgefed.workflows.conformance", "--lint-only", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert "input parameter 'nope' is not declared" in result.stdout
