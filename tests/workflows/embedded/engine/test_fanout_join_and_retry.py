"""withSequence in DAGs, the join over a fan-out whose items fail and error, retryStrategy.expression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgefed.workflows.embedded.engine import (
    Engine,
    UnsupportedFeatureError,
    WorkflowInvalidError,
    render_report,
)
from tests.workflows.embedded.engine.helpers import phases

JOIN = "train.Succeeded || train.Failed || train.Errored"


def workflow(
    templates: list[dict[str, Any]], parameters: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "t"},
        "spec": {"entrypoint": "main", "arguments": {"parameters": parameters or []}, "templates": templates},
    }


def echo(name: str = "echo") -> dict[str, Any]:
    return {
        "name": name,
        "inputs": {"parameters": [{"name": "msg"}]},
        "container": {"image": "alpine", "command": ["echo", "{{inputs.parameters.msg}}"]},
    }


def sequence_dag(seq: dict[str, Any], **task: Any) -> dict[str, Any]:
    return workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {
                            "name": "loop",
                            "template": "echo",
                            "withSequence": seq,
                            "arguments": {"parameters": [{"name": "msg", "value": "{{item}}"}]},
                            **task,
                        }
                    ]
                },
            },
            echo(),
        ],
        [{"name": "n", "value": "3"}, {"name": "fmt", "value": "edge-%03d"}],
    )


@pytest.mark.parametrize(
    ("seq", "expected"),
    [
        (
            {"count": "{{workflow.parameters.n}}", "format": "{{workflow.parameters.fmt}}"},
            ["edge-000", "edge-001", "edge-002"],
        ),
        ({"start": "2", "count": "{{=asInt(workflow.parameters.n) * 2 - 4}}"}, ["2", "3"]),
        ({"start": 7, "end": 9}, ["7", "8", "9"]),  # integers as YAML writes them: IntOrString
        ({"start": "1", "end": "-1"}, ["1", "0", "-1"]),
        ({"count": "1", "format": "%x-%d"}, ["0-%!d(MISSING)"]),  # Go's fmt, to the letter
    ],
)
def test_with_sequence_in_a_dag(run_workflow, seq: dict[str, Any], expected: list[str]) -> None:
    result = run_workflow(sequence_dag(seq))
    assert result.phase == "Succeeded", render_report(result)
    group = result.node_by_name("t.loop")
    assert group.type == "TaskGroup"
    items = [result.nodes[c] for c in group.children]
    labels = [v.replace("(", "").replace(")", "") for v in expected]  # generateNodeName drops them
    assert [n.display_name for n in items] == [f"loop({i}:{v})" for i, v in enumerate(labels)]
    assert [n.inputs["msg"] for n in items] == expected


def test_with_sequence_count_zero_skips_and_a_bad_value_errors(run_workflow) -> None:
    result = run_workflow(sequence_dag({"count": "0"}))
    loop = result.node_by_name("t.loop")
    assert (loop.phase, loop.message) == ("Skipped", "Skipped, empty params")
    assert result.phase == "Succeeded"

    result = run_workflow(sequence_dag({"count": "three"}))
    loop = result.node_by_name("t.loop")
    assert loop.phase == "Error"
    assert loop.message == 'withSequence.count: strconv.Atoi: parsing "three": invalid syntax'
    assert result.phase == "Error"


def test_with_sequence_is_checked_up_front() -> None:
    with pytest.raises(WorkflowInvalidError, match="only one of count or end can be defined in withSequence"):
        Engine.check(sequence_dag({"count": "2", "end": "3"}))
    with pytest.raises(WorkflowInvalidError, match="only one of withItems, withParam, withSequence"):
        Engine.check(sequence_dag({"count": "2"}, withItems=[1]))
    with pytest.raises(UnsupportedFeatureError, match=r"withSequence.step: unknown field"):
        Engine.check(sequence_dag({"count": "2", "step": "2"}))


# ------------------------------------------------------------------------------ the join over a fan-out


def join_workflow(edges: list[str], erroring: str) -> dict[str, Any]:
    """``train`` fans out over ``edges``: ``erroring`` exits 0 without writing its declared output (node
    Error), every other edge exits 1 (Failed). ``join`` depends on any outcome, ``all-failed`` on
    AllFailed."""
    script = f'if [ "{{{{inputs.parameters.edge}}}}" = "{erroring}" ]; then exit 0; fi; echo -n m > /tmp/model; exit 1'
    return workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {
                            "name": "train",
                            "template": "train",
                            "withItems": edges,
                            "arguments": {"parameters": [{"name": "edge", "value": "{{item}}"}]},
                        },
                        {
                            "name": "join",
                            "template": "echo",
                            "depends": JOIN,
                            "arguments": {
                                "parameters": [
                                    {"name": "msg", "value": "{{tasks.train.outputs.parameters.model}}"}
                                ]
                            },
                        },
                        {
                            "name": "all-failed",
                            "template": "echo",
                            "depends": "train.AllFailed",
                            "arguments": {"parameters": [{"name": "msg", "value": "all failed"}]},
                        },
                    ]
                },
            },
            {
                "name": "train",
                "inputs": {"parameters": [{"name": "edge"}]},
                "container": {"image": "alpine", "command": ["sh", "-c", script]},
                "outputs": {"parameters": [{"name": "model", "valueFrom": {"path": "/tmp/model"}}]},
            },
            echo(),
        ]
    )


@pytest.mark.parametrize(
    ("edges", "group_phase"),
    [
        (["a", "b", "c"], "Failed"),  # the last Failed/Error child in item order is c: Failed
        (["a", "c", "b"], "Error"),  # ... is b: Error
    ],
)
def test_join_runs_when_items_fail_and_one_errors(run_workflow, edges: list[str], group_phase: str) -> None:
    """dag.go: the TaskGroup takes the phase of its last Failed/Error child; evaluateDependsLogic's
    AllFailed counts only Failed children; so ``train.Failed || train.Errored`` lets the join run
    either way, and ``train.AllFailed`` is false."""
    result = run_workflow(join_workflow(edges, erroring="b"))
    p = phases(result)
    assert p["train(1:b)" if edges[1] == "b" else "train(2:b)"] == "Error"
    assert {p[f"train({i}:{e})"] for i, e in enumerate(edges) if e != "b"} == {"Failed"}
    train = result.node_by_name("t.train")
    assert train.phase == group_phase
    join = result.node_by_name("t.join")
    assert join.phase == "Succeeded"
    assert join.inputs["msg"] == "[]"  # only succeeded items contribute to the aggregate
    assert p["all-failed"] == "Omitted"
    # the leaf all-failed was omitted: it inherits the first failure flowing in (train(0:a), Failed), so
    # Argo's assessDAGPhase fails the DAG even though the join ran (a DAG of train -> join alone succeeds)
    assert result.phase == "Failed" and result.message == "task 't.train(0:a)' failed"


def test_all_failed_counts_only_failed_items(run_workflow) -> None:
    result = run_workflow(join_workflow(["a", "c"], erroring="none"))
    p = phases(result)
    assert p["train(0:a)"] == p["train(1:c)"] == "Failed"
    assert p["join"] == "Succeeded" and p["all-failed"] == "Succeeded"
    assert result.phase == "Succeeded"


# ---------------------------------------------------------------------------- retryStrategy.expression


def retry_workflow(codes: list[int], counter: Path, limit: int = 5) -> dict[str, Any]:
    """A script exiting with ``codes[n]`` on its n-th attempt, under the lead's retry strategy."""
    script = (
        "import pathlib, sys\n"
        'f = pathlib.Path("{{workflow.parameters.counter}}")\n'
        "n = int(f.read_text()) if f.exists() else 0\n"
        "f.write_text(str(n + 1))\n"
        f"sys.exit({codes!r}[n])\n"
    )
    return workflow(
        [
            {
                "name": "main",
                "retryStrategy": {
                    "limit": str(limit),
                    "retryPolicy": "Always",
                    "expression": "asInt(lastRetry.exitCode) not in [2, 3, 4]",
                },
                "script": {"image": "python", "command": ["python"], "source": script},
            }
        ],
        [{"name": "counter", "value": str(counter)}],
    )


def test_retry_expression_stops_at_a_bad_input_exit_code(run_workflow, tmp_path: Path) -> None:
    result = run_workflow(retry_workflow([1, 1, 3, 0], tmp_path / "n"))
    assert result.phase == "Failed", render_report(result)
    retry = result.nodes[result.root_id]
    assert retry.type == "Retry"
    assert [result.nodes[c].outputs["exitCode"] for c in retry.children] == ["1", "1", "3"]
    assert retry.message == "retryStrategy.expression evaluated to false"


def test_retry_expression_retries_transient_failures_until_success(run_workflow, tmp_path: Path) -> None:
    result = run_workflow(retry_workflow([1, 137, 0], tmp_path / "n"))
    assert result.phase == "Succeeded", render_report(result)
    assert len(result.nodes[result.root_id].children) == 3


def test_retry_expression_sees_no_exit_code_as_minus_one(run_workflow, tmp_path: Path) -> None:
    """An attempt that never ran (its command is missing: Error) has no exit code: ``"-1"``."""
    doc = retry_workflow([0], tmp_path / "n", limit=1)
    template = doc["spec"]["templates"][0]
    template["retryStrategy"]["expression"] = "lastRetry.exitCode == '-1' && lastRetry.status == 'Error'"
    template["script"]["command"] = ["/nonexistent/python"]
    result = run_workflow(doc)
    retry = result.nodes[result.root_id]
    assert [result.nodes[c].phase for c in retry.children] == ["Error", "Error"]  # retried, then the limit
    assert result.phase == "Error"


def test_the_join_alone_makes_a_succeeded_dag(run_workflow) -> None:
    doc = join_workflow(["a", "b", "c"], erroring="b")
    tasks = doc["spec"]["templates"][0]["dag"]["tasks"]
    tasks[:] = [t for t in tasks if t["name"] != "all-failed"]
    result = run_workflow(doc)
    assert result.node_by_name("t.train").phase == "Failed"
    assert result.node_by_name("t.join").phase == "Succeeded"
    assert result.phase == "Succeeded", render_report(result)
