"""DAG templates: ordering, depends, fan-out, failure handling, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgefed.workflows.embedded.engine import Node, render_report
from tests.workflows.embedded.engine.helpers import phases


def test_diamond_runs_in_dependency_order(run_workflow, tmp_path: Path) -> None:
    order = tmp_path / "order.txt"
    events: list[tuple[str, str]] = []
    result = run_workflow(
        "dag-diamond",
        parameters={"order-file": str(order)},
        on_node=lambda n: events.append((n.name, n.phase)),
    )
    assert result.phase == "Succeeded", render_report(result)
    lines = order.read_text().split()
    assert sorted(lines) == ["A", "B", "C", "D"]
    assert lines[0] == "A" and lines[-1] == "D"
    # B and C only start after A finished, D after both.
    finished = {name.rsplit(".", 1)[-1]: i for i, (name, phase) in enumerate(events) if phase == "Succeeded"}
    started = {name.rsplit(".", 1)[-1]: i for i, (name, phase) in enumerate(events) if phase == "Running"}
    assert finished["A"] < started["B"] and finished["A"] < started["C"]
    assert max(finished["B"], finished["C"]) < started["D"]
    root = result.nodes[result.root_id]
    assert root.type == "DAG" and root.name == result.name
    assert [result.nodes[c].display_name for c in root.children] == ["A", "B", "C", "D"]
    assert result.node_by_name(f"{result.name}.D").type == "Pod"


def test_fan_out_with_one_failing_item_is_tolerated_by_any_succeeded(run_workflow) -> None:
    result = run_workflow("fanout-aggregate")
    assert result.phase == "Succeeded", render_report(result)
    train = result.node_by_name("fanout-aggregate.train")
    assert train.type == "TaskGroup" and train.phase == "Failed"
    kids = [result.nodes[c] for c in train.children]
    assert [k.display_name for k in kids] == ["train(0:cleveland)", "train(1:hungary)", "train(2:va)"]
    assert [k.phase for k in kids] == ["Succeeded", "Failed", "Succeeded"]
    assert kids[1].name == "fanout-aggregate.train(1:hungary)"
    agg = result.node_by_name("fanout-aggregate.aggregate")
    assert agg.phase == "Succeeded"
    # aggregated output of a fanned-out task: JSON list over the succeeded children
    assert agg.inputs["models"] == json.dumps(["model-cleveland", "model-va"])
    assert result.node_by_name("fanout-aggregate.evaluate").phase == "Succeeded"


def test_fan_out_fails_when_the_aggregate_fails(run_workflow) -> None:
    result = run_workflow("fanout-aggregate", parameters={"aggregate-exit": "1"})
    assert result.phase == "Failed"
    assert result.node_by_name("fanout-aggregate.aggregate").phase == "Failed"
    evaluate = result.node_by_name("fanout-aggregate.evaluate")
    assert evaluate.phase == "Omitted" and evaluate.type == "Skipped"
    assert "aggregate" in result.message
    report = render_report(result)
    assert "✖ aggregate" in report and "○ evaluate" in report
    assert "aggregating" in report  # the failing node's last log lines


def test_fan_out_with_alternative_depends_and_all_items_failing(run_workflow) -> None:
    from tests.workflows.embedded.engine.helpers import load

    doc = load("fanout-aggregate")
    doc["spec"]["templates"][3]["dag"]["tasks"][1]["depends"] = "train.Succeeded || train.Failed"
    result = run_workflow(doc, parameters={"edges": '["a"]', "failing-edge": "a"})
    assert result.phase == "Succeeded"
    assert result.node_by_name("fanout-aggregate.train(0:a)").phase == "Failed"
    assert result.node_by_name("fanout-aggregate.aggregate").inputs["models"] == "[]"

    doc["spec"]["templates"][3]["dag"]["tasks"][1]["depends"] = "train"
    result = run_workflow(doc, parameters={"edges": '["a", "b"]', "failing-edge": "a"})
    assert result.phase == "Failed"
    assert result.node_by_name("fanout-aggregate.aggregate").phase == "Omitted"


def test_every_depends_operator(run_workflow) -> None:
    result = run_workflow("depends-operators")
    p = phases(result)
    assert (
        p["ok"] == "Succeeded" and p["bad"] == "Failed" and p["skip"] == "Skipped" and p["errored"] == "Error"
    )
    ran = [
        "t-succeeded", "t-failed", "t-not", "t-skipped", "t-plain-skipped", "t-errored", "t-omitted",
        "t-parens", "t-allfailed", "t-group-failed", "t-mixed-any",
    ]  # fmt: skip
    for name in ran:
        assert p[name] == "Succeeded", name
    for name in ["t-omit-chain", "t-never", "t-anysucceeded", "t-daemoned"]:
        assert p[name] == "Omitted", name
    assert p["mixed(0:0)"] == "Skipped" and p["mixed(1:1)"] == "Failed" and p["mixed"] == "Failed"
    assert "cannot start" in result.node_by_name("depends-operators.errored").message
    # leaves t-never / t-anysucceeded are omitted after failures: the DAG fails (Argo's assessDAGPhase)
    assert result.phase == "Failed"


def test_legacy_dependencies_with_continue_on(run_workflow) -> None:
    result = run_workflow("legacy-dependencies")
    p = phases(result)
    assert p == {result.name: "Succeeded", "A": "Succeeded", "B": "Failed", "C": "Succeeded", "D": "Succeeded",
                 "E": "Succeeded"}  # fmt: skip
    assert result.phase == "Succeeded"
    # a failing leaf with continueOn.failed does not fail the DAG either
    result = run_workflow("legacy-dependencies", parameters={"leaf-fails": "yes"})
    assert phases(result)["E"] == "Failed"
    assert result.phase == "Succeeded"
    # without continueOn, a failed dependency omits its dependents ...
    from tests.workflows.embedded.engine.helpers import load

    doc = load("legacy-dependencies")
    del doc["spec"]["templates"][0]["dag"]["tasks"][1]["continueOn"]
    result = run_workflow(doc)
    assert phases(result)["D"] == "Omitted" and phases(result)["E"] == "Omitted"
    # ... and the omitted leaf E inherits B's Failed, which its own continueOn.failed lets pass: Argo's
    # assessDAGPhase "if task.ContinuesOn(branchPhase) { continue }" gives a Succeeded DAG
    assert result.phase == "Succeeded"
    # without any continueOn the DAG fails
    del doc["spec"]["templates"][0]["dag"]["tasks"][4]["continueOn"]
    result = run_workflow(doc)
    assert phases(result)["E"] == "Omitted"
    assert result.phase == "Failed"


@pytest.mark.parametrize("fail_fast", ["true", "false"])
def test_dag_fail_fast_schedules_ready_tasks_either_way_as_argo_v4_does(run_workflow, fail_fast) -> None:
    """v4.1.2 dag.go reads dag.failFast only in assessDAGPhase, which stays Running while C runs; when C
    is done, executeDAG creates D before assessing again. So D runs, failFast true or false."""
    result = run_workflow("fail-fast", parameters={"fail-fast": fail_fast})
    p = phases(result)
    assert p["A"] == "Failed" and p["B"] == "Omitted"
    assert p["C"] == "Succeeded" and p["D"] == "Succeeded"
    assert result.phase == "Failed" and "'fail-fast.A' failed" in result.message


def test_with_param_outputs_and_global_outputs(run_workflow) -> None:
    result = run_workflow("with-param-outputs")
    assert result.phase == "Succeeded", render_report(result)
    square = result.node_by_name("with-param-outputs.square")
    assert [result.nodes[c].display_name for c in square.children] == [
        "square(0:1)",
        "square(1:2)",
        "square(2:3)",
    ]
    greet = [result.nodes[c] for c in result.node_by_name("with-param-outputs.greet").children]
    # object items render like Argo: sorted key:value pairs
    assert [g.display_name for g in greet] == ["greet(0:age:36,name:ada)", "greet(1:age:7,name:bob)"]
    assert greet[1].log_path.read_text().strip() == "hello bob aged 7"
    total = result.node_by_name("with-param-outputs.total")
    assert total.inputs["squares"] == "[1, 4, 9]"
    assert total.outputs["parameters"] == {"sum": "14"}
    assert result.outputs == {"grand-total": "14", "after-result": "global=14"}
    root = result.nodes[result.root_id]
    assert root.outputs["parameters"] == {"total": "14", "after": "global=14"}
    gen = result.node_by_name("with-param-outputs.gen")
    assert gen.outputs["result"] == "[1, 2, 3]" and gen.outputs["exitCode"] == "0"


def test_node_callback_sees_every_phase_change(run_workflow) -> None:
    seen: list[tuple[str, str]] = []

    def on_node(node: Node) -> None:
        seen.append((node.display_name, node.phase))

    result = run_workflow("dag-diamond", parameters={"order-file": "/dev/null"}, on_node=on_node)
    for task in "ABCD":
        assert [ph for name, ph in seen if name == task] == ["Pending", "Running", "Succeeded"]
    assert seen[-1] == (result.name, "Succeeded")
