"""Task- and step-level exit hooks (``onExit``, ``hooks.exit``) and the template's ``failFast``."""

from __future__ import annotations

from typing import Any

import pytest

from edgefed.workflows.embedded.engine import (
    Engine,
    UnsupportedFeatureError,
    WorkflowInvalidError,
    render_report,
)
from tests.workflows.embedded.engine.helpers import phases


def sh(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "container": {"image": "alpine", "command": ["sh", "-c", script]}, **extra}


def dag(tasks: list[dict[str, Any]], *templates: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "w"},
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "dag": {"tasks": tasks}}, *templates],
            **spec,
        },
    }


BYE = sh(
    "bye", "echo bye {{inputs.parameters.who}}", inputs={"parameters": [{"name": "who", "default": "-"}]}
)


def test_exit_hook_runs_whatever_the_phase_and_changes_nothing(run_workflow) -> None:
    doc = dag(
        [
            {"name": "bad", "template": "fail", "onExit": "bye"},
            {"name": "good", "template": "ok", "onExit": "broken"},
            {"name": "skipped", "template": "ok", "when": "1 == 2", "onExit": "bye"},
            {"name": "after", "template": "ok", "depends": "bad.Failed && good"},
        ],
        sh("fail", "exit 3"),
        sh("ok", "true"),
        sh("broken", "exit 1"),
        BYE,
    )
    result = run_workflow(doc)
    p = phases(result)
    assert p["bad"] == "Failed" and p["bad.onExit"] == "Succeeded"  # runs after a failure
    assert p["good"] == "Succeeded" and p["good.onExit"] == "Failed"  # a failed hook: good stays Succeeded
    assert p["skipped"] == "Skipped" and "skipped.onExit" not in p  # Skipped is not completed: no hook
    assert p["after"] == "Succeeded"
    # the leaves are 'skipped' and 'after', both fine: the failed hook changes neither DAG nor workflow
    assert result.phase == "Succeeded", render_report(result)
    hook = result.node_by_name("w.good.onExit")
    assert hook.parent_id == result.node_by_name("w.good").id


def test_exit_hook_arguments(run_workflow) -> None:
    """onExit gets spec.arguments; hooks.exit.arguments see the task's own status and outputs."""
    out = sh(
        "out",
        "echo -n 42 > /tmp/n",
        outputs={"parameters": [{"name": "n", "valueFrom": {"path": "/tmp/n"}}]},
    )
    doc = dag(
        [
            {"name": "a", "template": "out", "onExit": "bye"},
            {
                "name": "b",
                "template": "out",
                "hooks": {
                    "exit": {
                        "template": "bye",
                        "arguments": {
                            "parameters": [
                                {
                                    "name": "who",
                                    "value": "{{tasks.b.status}}:{{tasks.b.outputs.parameters.n}}",
                                }
                            ]
                        },
                    }
                },
            },
            {
                "name": "c",
                "template": "out",
                "hooks": {"exit": {"template": "bye", "expression": "tasks.c.status != 'Succeeded'"}},
            },
        ],
        out,
        BYE,
        arguments={"parameters": [{"name": "who", "value": "the workflow's"}]},
    )
    result = run_workflow(doc)
    assert result.phase == "Succeeded", render_report(result)
    assert result.node_by_name("w.a.onExit").inputs == {"who": "the workflow's"}
    assert result.node_by_name("w.b.onExit").inputs == {"who": "Succeeded:42"}
    assert "c.onExit" not in phases(result)  # its expression is false


def test_exit_hooks_of_a_fan_out_run_per_item_and_for_the_group(run_workflow) -> None:
    doc = dag(
        [
            {"name": "fan", "template": "ok", "withItems": ["x", "y"], "onExit": "bye"},
            {"name": "next", "template": "ok", "depends": "fan"},
        ],
        sh("ok", "true"),
        BYE,
    )
    events: list[tuple[str, str]] = []
    result = run_workflow(doc, on_node=lambda n: events.append((n.name, n.phase)))
    assert result.phase == "Succeeded", render_report(result)
    hooks = [n for n, ph in events if n.endswith(".onExit") and ph == "Succeeded"]
    assert sorted(hooks) == ["w.fan(0:x).onExit", "w.fan(1:y).onExit", "w.fan.onExit"]
    assert hooks[-1] == "w.fan.onExit"  # the group's, once every item's is done
    next_started = events.index(("w.next", "Running"))
    assert events.index(("w.fan.onExit", "Succeeded")) < next_started
    group = result.node_by_name("w.fan")
    assert [result.nodes[c].display_name for c in group.children][-1] == "fan.onExit"


def test_exit_hooks_are_checked_up_front() -> None:
    with pytest.raises(
        WorkflowInvalidError, match=r"tasks\[0\] \(name: a\).onExit: template 'nope' not found"
    ):
        Engine.check(dag([{"name": "a", "template": "ok", "onExit": "nope"}], sh("ok", "true")))
    with pytest.raises(UnsupportedFeatureError, match=r"hooks.running: not supported .* other than exit"):
        Engine.check(
            dag([{"name": "a", "template": "ok", "hooks": {"running": {"template": "ok"}}}], sh("ok", "true"))
        )


# ----------------------------------------------------------------------------------- template failFast


def test_template_fail_fast_dag(run_workflow) -> None:
    """Adapted from argo-workflows test/e2e/expectedfailures/parallelism-dag-fail-fast.yaml (argosay's
    ``exit 1`` / ``sleep`` as sh), plus tasks that would start later: none does, not even the handler."""
    doc = dag(
        [
            {"name": "task1", "template": "fail"},
            {"name": "task2", "template": "sleep"},
            {"name": "handler", "template": "ok", "depends": "task1.Failed"},
            {"name": "after-sleep", "template": "ok", "depends": "task2"},
        ],
        sh("fail", "exit 1"),
        sh("sleep", "sleep 0.3"),
        sh("ok", "true"),
    )
    main = doc["spec"]["templates"][0]
    main.update(parallelism=2, failFast=True)
    result = run_workflow(doc)
    p = phases(result)
    assert p["task1"] == "Failed" and p["task2"] == "Succeeded"
    assert "handler" not in p and "after-sleep" not in p
    assert result.phase == "Failed"
    assert result.message == "template has failed or errored children and failFast enabled"

    main["failFast"] = False  # the default: both go on
    result = run_workflow(doc)
    p = phases(result)
    assert p["handler"] == "Succeeded" and p["after-sleep"] == "Succeeded"
    assert result.phase == "Succeeded"


def test_template_fail_fast_steps(run_workflow) -> None:
    """Adapted from argo-workflows test/e2e/expectedfailures/parallelism-step-fail-fast.yaml, with a
    continueOn that failFast overrides and a later group that never starts."""
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "s"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "parallelism": 2,
                    "failFast": True,
                    "steps": [
                        [
                            {"name": "step1", "template": "fail", "continueOn": {"failed": True}},
                            {"name": "step2", "template": "sleep"},
                        ],
                        [{"name": "later", "template": "sleep"}],
                    ],
                },
                sh("fail", "exit 1"),
                sh("sleep", "sleep 0.2"),
            ],
        },
    }
    result = run_workflow(doc)
    p = phases(result)
    assert p["step1"] == "Failed" and p["step2"] == "Succeeded"
    assert p["[0]"] == "Failed" and "later" not in p
    assert (
        result.nodes[result.root_id].message == "template has failed or errored children and failFast enabled"
    )
    assert result.phase == "Failed"

    doc["spec"]["templates"][0]["failFast"] = False  # continueOn lets the steps go on
    result = run_workflow(doc)
    assert phases(result)["later"] == "Succeeded" and result.phase == "Succeeded"


def test_template_fail_fast_stops_the_items_waiting_for_a_slot(run_workflow) -> None:
    doc = dag(
        [{"name": "fan", "template": "item", "withItems": ["bad", "x", "y", "z"]}],
        sh("item", '[ "{{inputs.parameters.i}}" != bad ]', inputs={"parameters": [{"name": "i"}]}),
    )
    doc["spec"]["templates"][0]["dag"]["tasks"][0]["arguments"] = {
        "parameters": [{"name": "i", "value": "{{item}}"}]
    }
    doc["spec"]["templates"][0].update(parallelism=1, failFast=True)
    result = run_workflow(doc)
    group = result.node_by_name("w.fan")
    assert [result.nodes[c].display_name for c in group.children] == ["fan(0:bad)"]
    assert group.phase == "Failed" and result.phase == "Failed"
