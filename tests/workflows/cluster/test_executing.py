"""``edgefed submit`` of real tasks through the fake Argo server in executing mode: the task Workflow
and its child rounds run on the embedded engine against the real store and steps. Resume comes from
the model registry whatever Argo lost: a deleted task Workflow, TTL-collected rounds; a lagging list
starts no parallel task. Every test counts what the registry holds: no round is trained twice."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgefed.steps import layout
from edgefed.steps.registry import ModelRegistry
from edgefed.workflows.build import task_submission, to_document
from edgefed.workflows.cli.app import app
from edgefed.workflows.cluster.client import ArgoClient, apply_parameters
from edgefed.workflows.cluster.errors import WorkflowGoneError
from edgefed.workflows.cluster.submit import submit_task
from edgefed.workflows.cluster.view import read_task
from edgefed.workflows.cluster.watch import watch_task
from edgefed.workflows.embedded.runtime import EmbeddedRuntime
from edgefed.workflows.embedded.store import EmbeddedStore
from edgefed.workflows.spec import FederatedTask, parse_task
from tests.helpers import seeded_runtime, task_doc, write_task
from tests.workflows.cluster.fake_argo import FakeArgo
from tests.workflows.cluster.fake_runner import EngineRunner
from tests.workflows.cluster.support import NS, TOKEN

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

EDGES = ("cleveland", "hungary")
DAY = 24 * 3600


@pytest.fixture(scope="module")
def runtime(store: EmbeddedStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRuntime]:
    with seeded_runtime(store, tmp_path_factory.mktemp("home"), "heart", EDGES) as rt:
        yield rt


@pytest.fixture
def no_leftover_threads() -> Iterator[None]:
    """The runtime's warm workers live for the module: threads are not counted here."""
    yield


def make_task(name: str, rounds: int, **spec: Any) -> FederatedTask:
    return parse_task(task_doc(name, EDGES, rounds=rounds, **spec))


@pytest.fixture
def executing(runtime: EmbeddedRuntime) -> Iterator[FakeArgo]:
    with FakeArgo(token=TOKEN, namespace=NS, runner=EngineRunner(runtime)) as fake:
        yield fake


@pytest.fixture
def client(executing: FakeArgo, client_of: Callable[..., ArgoClient]) -> ArgoClient:
    """A client of the executing fake; a whole task may take a while on a busy machine."""
    return client_of(executing, poll=0.05, timeout=300)


def submit(task: FederatedTask, runtime: EmbeddedRuntime, client: ArgoClient, **options: Any) -> Any:
    """``edgefed submit TASK -p store=<the runtime's store>``."""
    return submit_task(task, client, parameters=runtime.prepare(task), **options)


def committed(runtime: EmbeddedRuntime, task: str) -> dict[str, Any]:
    """What the registry holds of ``task``: committed rounds, how many versions each round's manifest
    has, how many workflows trained each round on each edge, the rounds ``latest`` moved through."""
    s3 = runtime.store.client(layout.ADMIN_IDENTITY)
    registry = ModelRegistry(s3)
    rounds = registry.committed_rounds(task)
    versions = {
        r: sum(
            1
            for obj in s3.list_objects(
                layout.MODELS_BUCKET, prefix=layout.manifest_key(task, r), include_version=True
            )
            if obj.object_name == layout.manifest_key(task, r) and not obj.is_delete_marker
        )
        for r in rounds
    }
    trained = {
        (edge, r): len(
            {
                obj.object_name.rstrip("/")
                for obj in s3.list_objects(
                    layout.UPDATES_BUCKET, prefix=layout.update_round_prefix(edge, task, r)
                )
            }
        )
        for edge in EDGES
        for r in rounds
        if r > 0
    }
    return {
        "rounds": rounds,
        "versions": versions,
        "trained": trained,
        "latest": sorted(v["round"] for v in registry.latest_versions(task)),
    }


def assert_each_round_once(runtime: EmbeddedRuntime, task: str, last: int) -> None:
    state = committed(runtime, task)
    assert state["rounds"] == list(range(last + 1))
    assert set(state["versions"].values()) == {1}, state["versions"]  # no manifest written twice
    assert set(state["trained"].values()) == {1}, state["trained"]  # one training run per edge and round
    assert state["latest"] == list(range(last + 1))


def test_a_task_runs_round_by_round_and_ends_with_its_outputs(
    executing: FakeArgo, runtime: EmbeddedRuntime, client: ArgoClient
) -> None:
    task = make_task("xa", 3)
    phases: dict[int, list[str]] = {}

    def on_update(snapshot: Any) -> None:
        for row in snapshot.rounds:
            seen = phases.setdefault(row.round, [])
            if not seen or seen[-1] != row.phase:
                seen.append(row.phase)

    submission, final = submit(task, runtime, client, on_update=on_update)
    assert submission.workflow == "xa-run-1" and final.run.phase == "Succeeded"
    assert sorted(phases) == [1, 2, 3] and all(p[-1] == "Succeeded" for p in phases.values())
    assert [(r.round, r.workflow, r.contributors) for r in final.rounds] == [
        (1, "xa-r00001-a1", 2),
        (2, "xa-r00002-a1", 2),
        (3, "xa-r00003-a1", 2),
    ]
    assert final.rounds[-1].accuracy is not None
    outputs = final.run.outputs
    registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
    assert outputs["last-round"] == "3" and outputs["rounds-run"] == "3"
    assert outputs["model-version"] == registry.manifest("xa", 3)["model"]["versionId"]
    assert "3" in final.run.title  # the progress step's patch of the title shows in Argo
    # the child rounds are the fake's own workflows: labelled, owned by the task Workflow
    children = sorted(executing.labelled(task="xa", kind="round"))
    assert children == ["xa-r00001-a1", "xa-r00002-a1", "xa-r00003-a1"]
    owner = executing.workflows["xa-run-1"].uid
    assert all(
        executing.workflows[c].document["metadata"]["ownerReferences"][0]["uid"] == owner for c in children
    )
    assert_each_round_once(runtime, "xa", 3)


def test_resume_after_the_task_workflow_was_deleted_midway(
    executing: FakeArgo, runtime: EmbeddedRuntime, client: ArgoClient
) -> None:
    task = make_task("xb", 4)

    def delete_after_round_2(name: str, status: dict[str, Any]) -> None:
        if name == "xb-r00002-a1" and status.get("phase") == "Succeeded":
            executing.delete("xb-run-1")  # `argo delete`: its child rounds go with it

    executing.on_status = delete_after_round_2
    with pytest.raises(WorkflowGoneError):
        submit(task, runtime, client)
    executing.on_status = None
    assert "xb-r00001-a1" in executing.deleted and "xb-run-1" in executing.deleted
    executing.runner.wait()  # what the deleted run was still doing has stopped
    submission, final = submit(task, runtime, client)
    assert submission.workflow == "xb-run-2" and submission.created  # a name is never used twice
    assert [r.round for r in final.rounds] == [3, 4]  # after the last committed round, nothing twice
    assert final.run.outputs["last-round"] == "4" and final.run.outputs["rounds-run"] == "2"
    assert_each_round_once(runtime, "xb", 4)


def test_resume_when_succeeded_rounds_were_ttl_collected(
    executing: FakeArgo, runtime: EmbeddedRuntime, client: ArgoClient, tmp_path: Path
) -> None:
    submit(make_task("xc", 2), runtime, client)
    executing.clock.advance(DAY)  # ttlStrategy.secondsAfterSuccess of the task and of every round
    assert executing.collect() and not executing.labelled(task="xc")
    submission, final = submit(make_task("xc", 4), runtime, client)
    assert [r.round for r in final.rounds] == [3, 4]
    assert_each_round_once(runtime, "xc", 4)

    result = CliRunner().invoke(
        app,
        ["status", "xc", "--argo-server", executing.url, "-n", NS, "--json"],
        env={"ARGO_TOKEN": TOKEN},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [(r["round"], r["source"]) for r in data["rounds"]] == [
        (1, "collected"),
        (2, "collected"),
        (3, "workflow"),
        (4, "workflow"),
    ]
    assert [w["workflow"] for w in data["workflows"]] == [submission.workflow]
    assert read_task(client, "xc").runs[0].outputs["last-round"] == "4"


def test_a_lagging_list_does_not_start_a_parallel_task(
    executing: FakeArgo, runtime: EmbeddedRuntime, client: ArgoClient, tmp_path: Path
) -> None:
    executing.list_lag = 1000  # no list shows the first submit's task Workflow
    task = make_task("xd", 2)
    first, _ = submit(task, runtime, client, detach=True)
    # the second submit, `edgefed submit task.yaml -p store=...`, watches the first one's
    task_file = write_task(tmp_path / "task.yaml", task_doc("xd", EDGES, rounds=2))
    overrides = [arg for k, v in runtime.prepare(task).items() for arg in ("-p", f"{k}={v}")]
    result = CliRunner().invoke(
        app,
        ["submit", str(task_file), "--argo-server", executing.url, "-n", NS, "--poll", "0.1", *overrides],
        env={"ARGO_TOKEN": TOKEN},
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"task xd: already running: task Workflow {first.workflow}" in out
    assert "round   1  accuracy " in out and "xd-r00001-a1" in out and "round   2  accuracy " in out
    assert f"task xd: Succeeded (workflow {first.workflow}): stopped after round 2" in out
    assert executing.labelled(task="xd", kind="task") == [first.workflow]
    executing.runner.wait()
    assert_each_round_once(runtime, "xd", 2)


def test_a_second_task_workflow_waits_for_the_tasks_mutex_and_trains_nothing_twice(
    executing: FakeArgo, runtime: EmbeddedRuntime, client: ArgoClient
) -> None:
    task = make_task("xe", 2)
    messages: list[str] = []
    executing.on_status = lambda name, status: messages.append(status.get("message") or "")
    first, _ = submit(task, runtime, client, detach=True)
    # `argo submit --from workflowtemplate/xe-task` meanwhile: Argo would run it too, after the first
    document = apply_parameters(to_document(task_submission(task)), runtime.prepare(task))
    second = client.create_workflow(document).metadata.name
    ends = {name: watch_task(client, "xe", name).run for name in (first.workflow, second)}
    assert {run.phase for run in ends.values()} == {"Succeeded"}
    assert "Waiting for argo/Mutex/edgefed-task-xe lock. Lock status: 0/1" in messages
    assert sorted(int(run.outputs["rounds-run"]) for run in ends.values()) == [0, 2]  # one ran both rounds
    assert_each_round_once(runtime, "xe", 2)
