"""podSpecPatch: a patch of scheduling fields only is accepted (and ignored); anything else is refused."""

from __future__ import annotations

import pytest

from edgefed.workflows.engine import Engine, EngineOptions, UnsupportedFeatureError


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
    result = Engine(EngineOptions(run_dir=tmp_path)).run(workflow('{"tolerations": {{workflow.parameters.tol}}}'))
    assert result.phase == "Succeeded"


@pytest.mark.parametrize(
    "patch",
    ['{"containers": [{"name": "main", "command": ["false"]}]}', '{"tolerations": [], "volumes": []}', "[1, 2]"],
)
def test_other_patches_are_refused_up_front(tmp_path, patch):
    with pytest.raises(UnsupportedFeatureError, match="podSpecPatch"):
        Engine.check(workflow(patch))
