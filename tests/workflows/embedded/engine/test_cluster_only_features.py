"""Features with meaning only on a cluster that the engine still honours: scheduling podSpecPatch, raw artifacts."""

from __future__ import annotations

import pytest

from edgefed.workflows.embedded.engine import Engine, EngineOptions, UnsupportedFeatureError


def workflow(patch: str) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "patch-"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "tol", "value": '[{"key":"edge","operator":"Exists"}]'}]},
            "templates": [
                {
                    "name": "main",
                    "podSpecPatch": patch,
                    "container": {"image": "x", "command": ["sh", "-c", "echo ran"]},
                }
            ],
        },
    }


def test_scheduling_patch_runs(tmp_path):
    result = Engine(EngineOptions(run_dir=tmp_path)).run(
        workflow('{"tolerations": {{workflow.parameters.tol}}}')
    )
    assert result.phase == "Succeeded"


@pytest.mark.parametrize(
    "patch",
    [
        '{"containers": [{"name": "main", "command": ["false"]}]}',
        '{"tolerations": [], "volumes": []}',
        "[1, 2]",
    ],
)
def test_other_patches_are_refused_up_front(tmp_path, patch):
    with pytest.raises(UnsupportedFeatureError, match="podSpecPatch"):
        Engine.check(workflow(patch))


def raw_artifact_workflow(path: str, extra: dict | None = None) -> dict:
    doc = workflow('{"tolerations": []}')
    template = doc["spec"]["templates"][0]
    template["inputs"] = {
        "artifacts": [
            {"name": "big", "path": path, "raw": {"data": "{{workflow.parameters.tol}}"}, **(extra or {})}
        ]
    }
    template["container"]["command"] = ["sh", "-c", f"cat {path}"]
    return doc


def test_raw_input_artifact_is_written_with_parameters_substituted(tmp_path):
    result = Engine(EngineOptions(run_dir=tmp_path)).run(raw_artifact_workflow("/tmp/in/edges.json"))
    assert result.phase == "Succeeded"
    (pod,) = result.pods()
    assert pod.outputs["result"] == '[{"key":"edge","operator":"Exists"}]'


def test_other_artifact_sources_are_refused_up_front():
    doc = raw_artifact_workflow("/tmp/x", {"s3": {"key": "k"}})
    with pytest.raises(UnsupportedFeatureError, match="artifacts from s3: not supported"):
        Engine.check(doc)


def test_raw_artifact_outside_tmp_is_an_error(tmp_path):
    result = Engine(EngineOptions(run_dir=tmp_path)).run(raw_artifact_workflow("/etc/edgefed-test"))
    assert result.phase != "Succeeded"
    assert "must be under /tmp/" in result.pods()[0].message


TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {"name": "greet"},
    "spec": {
        "entrypoint": "main",
        "arguments": {
            "parameters": [{"name": "who", "value": "template"}, {"name": "greeting", "value": "hello"}]
        },
        "templates": [
            {
                "name": "main",
                "container": {
                    "image": "x",
                    "command": [
                        "sh",
                        "-c",
                        "echo {{workflow.parameters.greeting}} {{workflow.parameters.who}}",
                    ],
                },
            }
        ],
    },
}
SUBMISSION = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"generateName": "greet-"},
    "spec": {
        "workflowTemplateRef": {"name": "greet"},
        "arguments": {"parameters": [{"name": "who", "value": "workflow"}]},
    },
}


def test_workflow_template_ref_resolves_with_the_workflows_arguments_winning(tmp_path):
    result = Engine(EngineOptions(run_dir=tmp_path, templates=(TEMPLATE,))).run(SUBMISSION)
    assert result.phase == "Succeeded"
    assert result.pods()[0].outputs["result"] == "hello workflow"


def test_workflow_template_ref_to_an_unknown_template_is_invalid():
    from edgefed.workflows.embedded.engine import WorkflowInvalidError

    with pytest.raises(
        WorkflowInvalidError, match="no WorkflowTemplate named 'greet' was given to the engine"
    ):
        Engine.check(SUBMISSION)


def test_cli_runs_a_submission_against_a_template_file(tmp_path):
    import subprocess
    import sys

    import yaml

    (tmp_path / "t.yaml").write_text(yaml.safe_dump(TEMPLATE))
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(SUBMISSION))
    cmd = [
        sys.executable,
        "-m",
        "edgefed.workflows.cli",
        "engine",
        "run",
        str(tmp_path / "w.yaml"),
        "--run-dir",
        str(tmp_path / "runs"),
    ]
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=120).returncode == 2
    ok = subprocess.run(
        [*cmd, "--template", str(tmp_path / "t.yaml")], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
