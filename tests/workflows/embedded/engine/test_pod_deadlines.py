"""Deadlines on pods: ``activeDeadlineSeconds`` on one slow item of a fan-out, and ``pendingTimeout``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from edgefed.workflows.embedded.engine import Engine, EngineOptions, Node, WorkflowInvalidError, render_report
from tests.workflows.embedded.engine.helpers import edge_fan_out

DEADLINE = "Pod was active on the node longer than the specified deadline"


def round_doc(edge: dict[str, Any], edges: list[str]) -> dict[str, Any]:
    """An edge fan-out (``slow`` sleeps 30 s, ``hold*`` 3 s, ``late`` 2 s) and a join counting every outcome."""
    script = {
        "image": "x",
        "command": ["sh"],
        "source": (
            'case "{{inputs.parameters.edge}}" in slow) sleep 30 & wait;; hold*) sleep 3;; '
            "late) sleep 2;; esac\necho model-{{inputs.parameters.edge}} > /tmp/model\n"
        ),
    }
    outputs = {"parameters": [{"name": "model", "valueFrom": {"path": "/tmp/model"}}]}
    return edge_fan_out({"script": script, "outputs": outputs, **edge}, edges, join=True)


def edges(result: Any) -> dict[str, Node]:
    """The edge nodes by edge (a Pod, or the Retry node of a retried template)."""
    return {
        n.inputs["edge"]: n
        for n in result.nodes.values()
        if n.type in ("Pod", "Retry") and "edge" in n.inputs
    }


def test_one_slow_edge_is_killed_at_its_deadline_and_the_join_runs_with_the_others(tmp_path: Path) -> None:
    doc = round_doc({"activeDeadlineSeconds": 1}, ["fast", "slow", "quick"])
    result = Engine(EngineOptions(run_dir=tmp_path / "runs")).run(doc)
    assert result.phase == "Succeeded", render_report(result)
    by_edge = edges(result)
    assert {e: n.phase for e, n in by_edge.items()} == {
        "fast": "Succeeded",
        "slow": "Failed",
        "quick": "Succeeded",
    }
    assert by_edge["slow"].message == DEADLINE
    join = result.find("join")[0]
    assert join.phase == "Succeeded"
    assert json.loads(join.inputs["models"]) == ["model-fast", "model-quick"]


def test_pending_timeout_fails_edges_that_wait_too_long_for_a_slot(tmp_path: Path) -> None:
    events: list[Node] = []
    doc = round_doc({"pendingTimeout": "1s"}, ["hold", "a", "b"])
    options = EngineOptions(
        run_dir=tmp_path / "runs", parallelism=1, on_node=lambda n: events.append(copy.copy(n))
    )
    result = Engine(options).run(doc)
    by_edge = edges(result)
    assert {e: (n.phase, n.message) for e, n in by_edge.items()} == {
        "hold": ("Succeeded", ""),
        "a": ("Failed", "timeout"),
        "b": ("Failed", "timeout"),
    }
    ran = {e.inputs.get("edge") for e in events if e.phase == "Running" and e.type == "Pod"}
    assert ran == {"hold", None}  # a and b never started (None: the join)
    join = result.find("join")[0]
    assert join.phase == "Succeeded" and json.loads(join.inputs["models"]) == ["model-hold"]
    assert result.phase == "Succeeded"


@pytest.mark.slow
def test_pending_timeout_does_not_apply_to_a_template_with_a_retry_strategy(tmp_path: Path) -> None:
    """As in Argo v4.1.2: it checks the Retry node, which is Running, never Pending."""
    doc = round_doc({"pendingTimeout": "1s", "retryStrategy": {"limit": "1"}}, ["hold", "a"])
    result = Engine(EngineOptions(run_dir=tmp_path / "runs", parallelism=1)).run(doc)
    assert {e: n.phase for e, n in edges(result).items()} == {"hold": "Succeeded", "a": "Succeeded"}


@pytest.mark.slow
def test_active_deadline_counts_from_running_not_from_waiting_for_a_slot(tmp_path: Path) -> None:
    """Kubernetes counts a pod's activeDeadlineSeconds from its start: waiting to be scheduled is not in it."""
    doc = round_doc({"activeDeadlineSeconds": 4}, ["hold", "late"])  # late waits ~3 s, then runs 2 s
    result = Engine(EngineOptions(run_dir=tmp_path / "runs", parallelism=1)).run(doc)
    assert {e: n.phase for e, n in edges(result).items()} == {"hold": "Succeeded", "late": "Succeeded"}


def test_pending_timeout_on_a_dag_template_is_invalid() -> None:
    doc = round_doc({}, ["a"])
    doc["spec"]["templates"][0]["pendingTimeout"] = "1m"
    with pytest.raises(WorkflowInvalidError, match="DAG template doesn't support pendingTimeout field"):
        Engine.check(doc)
