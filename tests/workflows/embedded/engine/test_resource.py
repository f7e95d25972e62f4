"""Resource templates on Workflow manifests: a child from a WorkflowTemplate, conditions, outputs, patches."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from edgefed.workflows.embedded.engine import (
    Engine,
    EngineOptions,
    Node,
    UnsupportedFeatureError,
    WorkflowExistsError,
    WorkflowInvalidError,
    WorkflowObjects,
    render_report,
)
from tests.workflows.embedded.engine.helpers import load

ROUND_TEMPLATE = load("resource-round-template")
FAILED_CONDITION = "failure condition 'status.phase in (Error,Failed)' evaluated true"


def run_parent(tmp_path: Path, store: WorkflowObjects | None = None, **parameters: str) -> Any:
    events: list[Node] = []
    engine = Engine(
        EngineOptions(
            run_dir=tmp_path / "runs",
            templates=(ROUND_TEMPLATE,),
            workflows=store,
            on_node=lambda n: events.append(copy.copy(n)),
        )
    )
    result = engine.run(load("resource-parent"), parameters=parameters)
    return result, events


def test_parent_creates_a_child_from_the_workflow_template_and_reads_its_outputs(tmp_path: Path) -> None:
    store = WorkflowObjects()
    result, events = run_parent(tmp_path, store)
    assert result.phase == "Succeeded", render_report(result)
    child_name = f"{result.name}-r7"
    round_node = result.find("round")[0]
    assert round_node.type == "Pod"
    assert round_node.outputs["parameters"] == {
        "model-version": "v7",
        "name": child_name,
        "phase": "Succeeded",
        "missing": "",  # a filter matching nothing: kubectl prints nothing, Argo ignores the default
    }
    assert result.find("report")[0].inputs == {"v": "v7"}

    child = result.children[child_name]
    assert child.phase == "Succeeded" and child.outputs == {"model-version": "v7"}
    assert child.run_dir == tmp_path / "runs" / child_name

    parent_obj = store.get(result.name)
    child_obj = store.get(child_name)
    assert parent_obj is not None and child_obj is not None
    assert parent_obj["status"]["phase"] == "Succeeded"
    assert child_obj["metadata"]["labels"] == {"edgefed.io/round": "7"}
    assert child_obj["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "name": result.name,
            "uid": parent_obj["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert child_obj["spec"]["workflowTemplateRef"] == {"name": "demo-round"}
    status = child_obj["status"]
    assert status["phase"] == "Succeeded" and status["progress"] == "1/1"
    assert status["outputs"] == {"parameters": [{"name": "model-version", "value": "v7"}]}
    assert status["startedAt"] <= status["finishedAt"]

    # Node events of both workflows arrive, each node naming its workflow.
    by_workflow = {(e.workflow_name, e.display_name) for e in events}
    assert (child_name, "train") in by_workflow and (result.name, "round") in by_workflow
    assert all(e.name.startswith(e.workflow_name) for e in events)
    train = child.find("train")[0]
    assert round_node.started_at <= train.started_at <= train.finished_at <= round_node.finished_at


def test_failure_condition_fails_the_node(tmp_path: Path) -> None:
    store = WorkflowObjects()
    result, _ = run_parent(tmp_path, store, fail="true")
    assert result.phase == "Failed"
    round_node = result.find("round")[0]
    assert round_node.phase == "Failed" and round_node.message == FAILED_CONDITION
    assert not result.find("report")  # the steps stop at the failed group
    child = next(iter(result.children.values()))
    assert child.phase == "Failed"
    assert store.get(child.name)["status"]["progress"] == "0/1"


def test_a_child_the_engine_cannot_run_gets_phase_error(tmp_path: Path) -> None:
    """A missing WorkflowTemplate: on a cluster the API server accepts the Workflow, the controller errors it."""
    store = WorkflowObjects()
    engine = Engine(EngineOptions(run_dir=tmp_path / "runs", workflows=store))  # no templates installed
    result = engine.run(load("resource-parent"))
    round_node = result.find("round")[0]
    assert round_node.phase == "Failed" and round_node.message == FAILED_CONDITION
    child_obj = store.get(f"{result.name}-r7")
    assert child_obj["status"]["phase"] == "Error"
    assert "no WorkflowTemplate named 'demo-round'" in child_obj["status"]["message"]


def test_duplicate_child_name_is_refused_in_process(tmp_path: Path) -> None:
    doc = load("resource-parent")
    main = doc["spec"]["templates"][0]
    main["steps"].insert(1, copy.deepcopy(main["steps"][0]))
    main["steps"][1][0]["name"] = "again"
    result = Engine(EngineOptions(run_dir=tmp_path / "runs", templates=(ROUND_TEMPLATE,))).run(doc)
    assert result.phase == "Failed"
    assert result.find("round")[0].phase == "Succeeded"
    again = result.find("again")[0]
    assert again.phase == "Failed"
    assert again.message == (
        'no more retries Error from server (AlreadyExists): error when creating "/tmp/manifest.yaml": '
        f'workflows.argoproj.io "{result.name}-r7" already exists'
    )
    assert list(result.children) == [f"{result.name}-r7"]


def test_duplicate_child_name_is_refused_across_engines_sharing_a_run_dir(tmp_path: Path) -> None:
    first, _ = run_parent(tmp_path, child="-fixed")
    assert first.phase == "Succeeded"
    doc = load("resource-parent")
    doc["metadata"] = {"name": first.name}  # the same parent name, so the same child name
    engine = Engine(EngineOptions(run_dir=tmp_path / "runs", templates=(ROUND_TEMPLATE,)))
    second = engine.run(doc, parameters={"child": "-fixed"})
    node = second.find("round")[0]
    assert node.phase == "Failed"
    run_dir = tmp_path / "runs" / f"{first.name}-r7-fixed"
    assert f'workflows.argoproj.io "{first.name}-r7-fixed" already exists' in node.message
    assert f"its run directory {run_dir} exists: a run of an earlier process" in node.message
    assert second.children == {}


def test_top_level_name_taken_in_the_store_is_refused_before_anything_runs(tmp_path: Path) -> None:
    engine = Engine(EngineOptions(run_dir=tmp_path / "runs"))
    doc = load("resource-patch")
    assert engine.run(doc).phase == "Succeeded"
    with pytest.raises(WorkflowExistsError, match=r'workflows\.argoproj\.io "patched" already exists'):
        engine.run(doc)


def test_patch_of_the_running_workflows_own_annotations_and_labels(tmp_path: Path) -> None:
    store = WorkflowObjects()
    result = Engine(EngineOptions(run_dir=tmp_path / "runs", workflows=store)).run(load("resource-patch"))
    assert result.phase == "Succeeded", render_report(result)
    assert result.metadata["annotations"] == {"keep": "yes", "workflows.argoproj.io/title": "round 2 of 3"}
    assert result.metadata["labels"] == {"edgefed.io/kind": "task", "round": "2"}
    assert [result.find(s)[0].outputs["parameters"]["title"] for s in ("first", "second")] == [
        "round 1 of 3",
        "round 2 of 3",
    ]
    assert store.get("patched")["metadata"]["annotations"]["workflows.argoproj.io/title"] == "round 2 of 3"


def test_a_patch_of_a_missing_workflow_fails_the_node(tmp_path: Path) -> None:
    doc = load("resource-patch")
    tmpl = doc["spec"]["templates"][1]["resource"]
    tmpl["manifest"] = tmpl["manifest"].replace("name: {{workflow.name}}", "name: nobody")
    result = Engine(EngineOptions(run_dir=tmp_path / "runs")).run(doc)
    first = result.find("first")[0]
    assert first.phase == "Failed"
    assert (
        first.message
        == 'no more retries Error from server (NotFound): workflows.argoproj.io "nobody" not found'
    )


def test_unmatched_conditions_fail_once_nothing_can_change_the_object(tmp_path: Path) -> None:
    """Argo would poll forever; here the child ended, so the node fails and says why."""
    doc = load("resource-parent")
    doc["spec"]["templates"][1]["resource"]["successCondition"] = "status.phase == Skipped"
    del doc["spec"]["templates"][1]["resource"]["failureCondition"]
    result = Engine(EngineOptions(run_dir=tmp_path / "runs", templates=(ROUND_TEMPLATE,))).run(doc)
    node = result.find("round")[0]
    assert node.phase == "Failed"
    assert "neither success condition nor failure condition matched" in node.message
    assert "(phase Succeeded)" in node.message


def test_without_conditions_the_node_succeeds_at_once_and_the_child_still_runs(tmp_path: Path) -> None:
    doc = load("resource-parent")
    res = doc["spec"]["templates"][1]["resource"]
    del res["successCondition"], res["failureCondition"]
    result = Engine(EngineOptions(run_dir=tmp_path / "runs", templates=(ROUND_TEMPLATE,))).run(
        doc, parameters={"sleep": "1"}
    )
    node = result.find("round")[0]
    assert node.phase == "Succeeded"
    assert node.outputs["parameters"]["phase"] == ""  # no controller has looked at it yet
    assert node.outputs["parameters"]["model-version"] == ""
    child = next(iter(result.children.values()))
    assert child.phase == "Succeeded"  # the parent waited for it before returning
    assert node.finished_at < child.find("train")[0].finished_at


def test_resource_deadline_fails_the_node_and_leaves_the_child_running(tmp_path: Path) -> None:
    doc = load("resource-parent")
    doc["spec"]["templates"][1]["activeDeadlineSeconds"] = 1
    result = Engine(EngineOptions(run_dir=tmp_path / "runs", templates=(ROUND_TEMPLATE,))).run(
        doc, parameters={"sleep": "3"}
    )
    node = result.find("round")[0]
    assert node.phase == "Failed"
    assert node.message == "Pod was active on the node longer than the specified deadline"
    assert next(iter(result.children.values())).phase == "Succeeded"


def resource_doc(resource: dict[str, Any], outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    template: dict[str, Any] = {"name": "main", "resource": resource}
    if outputs:
        template["outputs"] = {"parameters": outputs}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "r-"},
        "spec": {"entrypoint": "main", "templates": [template]},
    }


WF = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: '{{workflow.name}}'}\n"


@pytest.mark.parametrize(
    ("resource", "outputs", "error", "expected"),
    [
        (
            {"action": "delete", "manifest": WF},
            None,
            UnsupportedFeatureError,
            "resource.action: delete: not supported",
        ),
        (
            {"action": "patch", "manifest": WF},
            None,
            WorkflowInvalidError,
            "strategic (the default): the API server",
        ),
        (
            {"action": "patch", "mergeStrategy": "json", "manifest": WF},
            None,
            UnsupportedFeatureError,
            "resource.mergeStrategy: json: not supported",
        ),
        (
            {"action": "patch", "mergeStrategy": "merge", "manifest": WF + "spec: {suspend: true}\n"},
            None,
            UnsupportedFeatureError,
            "resource.manifest.spec: patching it is not supported",
        ),
        (
            {"action": "create", "manifest": "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n"},
            None,
            UnsupportedFeatureError,
            "resource.manifest: batch/v1 Job: not supported",
        ),
        (
            {"action": "create", "manifest": WF, "flags": ["--validate=false"]},
            None,
            UnsupportedFeatureError,
            "resource.flags: not supported",
        ),
        (
            {"action": "create", "manifest": WF, "successCondition": "status.phase === Succeeded"},
            None,
            WorkflowInvalidError,
            "resource.successCondition: unable to parse requirement",
        ),
        (
            {"action": "create", "manifest": WF},
            [{"name": "x", "valueFrom": {"jqFilter": ".status"}}],
            UnsupportedFeatureError,
            "valueFrom.jqFilter: not supported by the embedded engine (use jsonPath)",
        ),
        (
            {"action": "create", "manifest": WF},
            [{"name": "x", "valueFrom": {"jsonPath": "{range .items[*]}{.x}{end}"}}],
            UnsupportedFeatureError,
            "range/end is not supported",
        ),
        (
            {
                "action": "create",
                "manifest": "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {}\n",
            },
            None,
            WorkflowInvalidError,
            "resource.manifest.metadata: name or generateName is required",
        ),
    ],
)
def test_what_the_engine_refuses_up_front(
    resource: dict[str, Any], outputs: list[dict[str, Any]] | None, error: type[Exception], expected: str
) -> None:
    with pytest.raises(error) as info:
        Engine.check(resource_doc(resource, outputs))
    assert expected in str(info.value)


def test_json_path_outside_a_resource_template_is_invalid() -> None:
    doc = resource_doc({"action": "create", "manifest": WF})
    doc["spec"]["templates"][0] = {
        "name": "main",
        "container": {"image": "x", "command": ["true"]},
        "outputs": {"parameters": [{"name": "x", "valueFrom": {"jsonPath": "{.a}"}}]},
    }
    with pytest.raises(WorkflowInvalidError, match=r"valueFrom.jsonPath: only for resource templates"):
        Engine.check(doc)
