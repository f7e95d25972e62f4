"""``edgefed status``: a task's task Workflows and rounds from the fake Argo server, including rounds
whose Workflow the TTL deleted (from the task Workflow's nodes, else "collected")."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from edgefed.workflows.build.names import ROUND_TEMPLATE
from edgefed.workflows.cli import status as status_cli
from edgefed.workflows.cluster.client import ArgoClient
from edgefed.workflows.cluster.submit import submit_task
from edgefed.workflows.cluster.view import read_task
from tests.workflows.cluster.fake_argo import FakeArgo
from tests.workflows.cluster.fake_playbooks import round_outputs, running, succeeded, task_statuses
from tests.workflows.cluster.support import NS, TOKEN, make_task

pytestmark = [pytest.mark.timeout(60), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

Client = Callable[..., ArgoClient]
DAY = 24 * 3600
TASK = {"edgefed.io/task": "t1", "edgefed.io/kind": "task"}


def round_labels(round_: int) -> dict[str, str]:
    return {"edgefed.io/task": "t1", "edgefed.io/kind": "round", "edgefed.io/round": str(round_)}


def round_node(round_: int, phase: str, outputs: dict[str, str] | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": f"n{round_}",
        "name": f"t1-run-2.round({round_})",
        "type": "Pod",
        "templateName": ROUND_TEMPLATE,
        "phase": phase,
        "startedAt": "2024-05-01T12:00:00Z",
        "finishedAt": "2024-05-01T12:01:05Z",
        "inputs": {
            "parameters": [
                {"name": "round", "value": str(round_)},
                {"name": "name", "value": f"t1-r{round_:05d}-a1"},
            ]
        },
    }
    if outputs:
        node["outputs"] = {"parameters": [{"name": k, "value": v} for k, v in outputs.items()]}
    return node


@pytest.fixture
def resumed(argo: FakeArgo) -> FakeArgo:
    """Task t1 resumed in t1-run-2 after round 2 (t1-run-1 and its rounds are gone); round 3's
    Workflow was TTL-collected, round 4 runs; t1-run-2 still shows both in its nodes."""
    outputs = {**round_outputs(3), "missing-edges": '["b"]', "contributors": "1"}
    argo.add_workflow(
        "t1-run-2",
        TASK,
        [
            {
                "phase": "Running",
                "startedAt": "2024-05-01T12:00:00Z",
                "outputs": {"parameters": [{"name": "last-round", "value": "3"}]},
                "nodes": {"n3": round_node(3, "Succeeded", outputs), "n4": round_node(4, "Running")},
            }
        ],
        annotations={
            "workflows.argoproj.io/title": "t1: round 4 of 5",
            "workflows.argoproj.io/description": "round 3 done, accuracy 0.8000",
        },
    )
    argo.add_workflow("t1-r00004-a1", round_labels(4), running(pending=0, progress="2/5"), owner="t1-run-2")
    return argo


def test_rounds_come_from_child_workflows_else_the_task_nodes_else_collected(
    resumed: FakeArgo, client_of: Client
) -> None:
    view = read_task(client_of(resumed), "t1")
    (run,) = view.runs
    assert (run.workflow, run.phase, run.title) == ("t1-run-2", "Running", "t1: round 4 of 5")
    rows = [(r.round, r.workflow, r.phase, r.source) for r in view.rounds]
    assert rows == [
        (1, "", "collected", "collected"),
        (2, "", "collected", "collected"),
        (3, "t1-r00003-a1", "Succeeded", "node"),
        (4, "t1-r00004-a1", "Running", "workflow"),
    ]
    third = view.rounds[2]
    assert (third.accuracy, third.contributors, third.missing, third.seconds) == (0.8, 1, ["b"], 65.0)
    assert view.rounds[3].progress == "2/5"


def test_a_whole_task_then_the_ttl_status_shows_what_argo_keeps(argo: FakeArgo, client_of: Client) -> None:
    argo.playbook = lambda doc: task_statuses("t1", [1, 2])
    submit_task(make_task(2), client_of(argo))
    view = read_task(client_of(argo), "t1")
    assert [(r.round, r.source, r.accuracy) for r in view.rounds] == [
        (1, "workflow", 0.6),
        (2, "workflow", 0.7),
    ]
    argo.clock.advance(DAY)  # the rounds' and the task's ttlStrategy: a day after success
    view = read_task(client_of(argo), "t1")
    assert set(argo.deleted) == {"t1-run-1", "t1-r00001-a1", "t1-r00002-a1"}
    assert view.runs == [] and view.rounds == []  # Argo keeps nothing; the registry keeps the rounds


def test_failed_attempts_show_with_their_message(argo: FakeArgo, client_of: Client) -> None:
    argo.add_workflow("t1-run-1", TASK, [{"phase": "Failed", "message": "child 'plan' failed"}])
    argo.add_workflow("t1-r00001-a1", round_labels(1), succeeded(round_outputs(1))[-1:], owner="t1-run-1")
    argo.add_workflow(
        "t1-r00002-a1",
        round_labels(2),
        [{"phase": "Failed", "message": "child 'evaluate' failed"}],
        owner="t1-run-1",
    )
    view = read_task(client_of(argo), "t1")
    assert [(r.round, r.attempt, r.phase, r.message) for r in view.rounds] == [
        (1, 1, "Succeeded", ""),
        (2, 1, "Failed", "child 'evaluate' failed"),
    ]
    assert view.runs[0].message == "child 'plan' failed"


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """edgefed."""

    status_cli.register(app)
    return app


def test_cli_status_table_and_json(resumed: FakeArgo, cli: typer.Typer) -> None:
    args = ["status", "t1", "--argo-server", resumed.url, "-n", NS]
    env = {"ARGO_TOKEN": TOKEN, "COLUMNS": "200"}
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "task Workflow t1-run-2: Running" in out and "t1: round 4 of 5" in out and "last-round: 3" in out
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 7}
    assert "collected (see `edgefed models list`)" in lines["1"] and "collected" in lines["2"]
    assert "t1-r00003-a1" in lines["3"] and "Succeeded (from the task Workflow)" in lines["3"]
    assert "0.8000" in lines["3"] and "│ b " in lines["3"] and "1m05s" in lines["3"]
    assert "Running 2/5" in lines["4"]

    result = CliRunner().invoke(cli, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["namespace"] == NS and data["task"] == "t1"
    assert [w["workflow"] for w in data["workflows"]] == ["t1-run-2"]
    assert [(r["round"], r["source"]) for r in data["rounds"]] == [
        (1, "collected"),
        (2, "collected"),
        (3, "node"),
        (4, "workflow"),
    ]


def test_cli_status_of_a_task_argo_does_not_know(argo: FakeArgo, cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["status", "t9", "--argo-server", argo.url], env={"ARGO_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert "task t9: Argo shows no workflow of it in namespace argo" in result.output
