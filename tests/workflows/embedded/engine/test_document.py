"""The up-front check: unsupported features and invalid documents are rejected before anything runs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from edgefed.workflows.embedded.engine import Engine, UnsupportedFeatureError, WorkflowInvalidError
from tests.workflows.embedded.engine.helpers import load


def minimal(**template_extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "m"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "container": {"image": "x", "command": ["true"]}, **template_extra}
            ],
        },
    }


def test_unsupported_features_are_named_with_their_location_and_nothing_runs(
    run_workflow, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    with pytest.raises(UnsupportedFeatureError) as info:
        run_workflow("unsupported", parameters={"marker": str(marker)})
    problems = info.value.problems
    text = str(info.value)
    assert (
        "spec.volumes[0]: only emptyDir volumes are accepted; other volumes: not supported by the "
        "embedded engine" in problems
    )
    assert (
        "spec.templates[2] (name: k8s).resource.manifest: v1 ConfigMap: not supported by the embedded "
        "engine (only argoproj.io/v1alpha1 Workflow manifests)" in problems
    )
    assert "spec.templates[3] (name: approve).suspend: not supported by the embedded engine" in problems
    assert "spec.templates[3] (name: approve).memoize: not supported by the embedded engine" in problems
    assert "spec.templates[1] (name: touch).container.volumeMounts" in text
    assert not marker.exists()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"podSpecPatch": '{"containers": []}'},
            "spec.templates[0] (name: main).podSpecPatch: patches containers",
        ),
        ({"sidecars": []}, "(name: main).sidecars: not supported"),
        ({"initContainers": []}, "(name: main).initContainers: not supported"),
        ({"synchronization": {"mutex": {"name": "m"}}}, "(name: main).synchronization.mutex: unknown field"),
        ({"synchronization": {"semaphores": []}}, "(name: main).synchronization.semaphores: not supported"),
        ({"outputs": {"artifacts": [{"name": "a", "path": "/tmp/a"}]}}, "(name: main).outputs.artifacts"),
        ({"inputs": {"artifacts": [{"name": "a", "path": "/tmp/a"}]}}, "(name: main).inputs.artifacts"),
        ({"volumes": []}, "(name: main).volumes: not supported"),
        (
            {"retryStrategy": {"limit": 1, "expression": "now() > x"}},
            "retryStrategy.expression: expression 'now() > x': the built-in function now() (at position 0) is "
            "not supported by the embedded engine",
        ),
        ({"comand": ["oops"]}, "(name: main).comand: unknown field"),
        ({"daemon": True}, "(name: main).daemon: not supported"),
    ],
)
def test_template_features_rejected(extra: dict[str, Any], expected: str) -> None:
    with pytest.raises(UnsupportedFeatureError) as info:
        Engine.check(minimal(**extra))
    assert expected in str(info.value)


def test_container_level_and_env_rejections() -> None:
    doc = minimal()
    container = doc["spec"]["templates"][0]["container"]
    container["env"] = [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]
    container["workingDir"] = "/app"
    container["comand"] = ["typo"]
    with pytest.raises(UnsupportedFeatureError) as info:
        Engine.check(doc)
    text = str(info.value)
    assert "container.env[0] (name: A).valueFrom.configMapKeyRef: not supported" in text
    assert "container.workingDir: not supported" in text
    assert "container.comand: unknown field" in text


def test_other_rejections() -> None:
    doc = load("with-param-outputs")
    spec = doc["spec"]
    spec["templates"][0]["dag"]["tasks"][1]["withSequence"] = {"count": "3"}
    spec["templates"][0]["dag"]["tasks"][0]["hooks"] = {"running": {"template": "gen"}}
    spec["templates"][0]["dag"]["target"] = "total"
    spec["templates"][1]["script"]["source"] = "print('{{=sprig.date(\"2006\", x)}}')"
    with pytest.raises(UnsupportedFeatureError) as info:
        Engine.check(doc)
    text = str(info.value)
    assert "tasks[1] (name: square): only one of withItems, withParam, withSequence can be specified" in text
    assert (
        "tasks[0] (name: gen).hooks.running: not supported by the embedded engine (lifecycle hooks other"
        in text
    )
    assert "(name: main).dag.target: not supported" in text
    assert (
        "spec.templates[1] (name: gen).script.source: expression '{{=sprig.date(\"2006\", x)}}': sprig.date()"
        in text
    )


def test_container_without_command_is_rejected() -> None:
    doc = minimal()
    del doc["spec"]["templates"][0]["container"]["command"]
    with pytest.raises(UnsupportedFeatureError, match=r"container.command: required by the embedded engine"):
        Engine.check(doc)


def test_cluster_only_fields_are_accepted_and_ignored(run_workflow) -> None:
    result = run_workflow("cluster-fields")
    assert result.phase == "Succeeded"
    pod = result.pods()[0]
    log = pod.log_path.read_text()
    assert log.split() == [result.name, "edge", "edgefed", pod.pod_name]


def test_invalid_references() -> None:
    doc = load("dag-diamond")
    tasks = doc["spec"]["templates"][1]["dag"]["tasks"]
    tasks[1]["depends"] = "A && Z"
    tasks[2]["template"] = "nope"
    tasks[3]["name"] = "B"
    doc["spec"]["entrypoint"] = "missing"
    with pytest.raises(WorkflowInvalidError) as info:
        Engine.check(doc)
    assert not isinstance(info.value, UnsupportedFeatureError)
    text = str(info.value)
    assert "spec.entrypoint: template 'missing' not found" in text
    assert "depends on unknown task 'Z'" in text
    assert "(name: C).template: template 'nope' not found" in text
    assert "(name: B): duplicate task name" in text


def test_cycles_bad_depends_and_continue_on_with_depends() -> None:
    doc = load("dag-diamond")
    tasks = doc["spec"]["templates"][1]["dag"]["tasks"]
    tasks[0]["depends"] = "D"
    tasks[1]["depends"] = "A.Finished"
    tasks[2]["continueOn"] = {"failed": True}
    with pytest.raises(WorkflowInvalidError) as info:
        Engine.check(doc)
    text = str(info.value)
    assert "dependency cycle" in text
    assert "unknown result '.Finished'" in text
    assert "(name: C): continueOn cannot be combined with depends" in text


def test_kind_and_duplicate_templates() -> None:
    doc = minimal()
    doc["kind"] = "CronWorkflow"
    doc["spec"]["templates"].append(copy.deepcopy(doc["spec"]["templates"][0]))
    with pytest.raises(WorkflowInvalidError) as info:
        Engine.check(doc)
    assert "kind: expected 'Workflow'" in str(info.value)
    assert "spec.templates[1] (name: main): duplicate template name" in str(info.value)


def test_undeclared_parameter_and_enum(run_workflow) -> None:
    with pytest.raises(WorkflowInvalidError, match="parameter 'nope' is not declared"):
        run_workflow("steps-coinflip", parameters={"nope": "1"})
    with pytest.raises(WorkflowInvalidError, match="not in enum"):
        run_workflow("steps-coinflip", parameters={"coin": "edge"})
