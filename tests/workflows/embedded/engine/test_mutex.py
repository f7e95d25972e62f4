"""``synchronization.mutexes``: a second holder waits (it does not fail), across threads and processes."""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from edgefed.workflows.embedded.engine import (
    Engine,
    EngineOptions,
    Node,
    UnsupportedFeatureError,
    WorkflowInvalidError,
    WorkflowObjects,
    WorkflowResult,
)
from tests.workflows.embedded.engine.helpers import edge_fan_out

WAITING = "Waiting for default/Mutex/edgefed-task-demo lock. Lock status: 0/1"


class RecordingObjects(WorkflowObjects):
    """The default store, remembering every status the engine published."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[tuple[str, dict[str, Any]]] = []

    def update_status(self, name: str, status: Any) -> None:
        self.statuses.append((name, dict(status)))
        super().update_status(name, status)


def task_doc(name: str, command: str, marker: Path | None = None) -> dict[str, Any]:
    """A task holding the mutex while ``command`` runs (``$MARKER``: a path, passed as a parameter so that
    the engine's ``/tmp`` mapping leaves it alone)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "marker", "value": str(marker or "")}]},
            "synchronization": {"mutexes": [{"name": "edgefed-task-demo"}]},
            "templates": [
                {
                    "name": "main",
                    "container": {
                        "image": "x",
                        "command": ["sh", "-c", command],
                        "env": [{"name": "MARKER", "value": "{{workflow.parameters.marker}}"}],
                    },
                }
            ],
        },
    }


def wait_for(path: Path, alive: Any, seconds: float = 60) -> None:
    """Until ``path`` exists (``alive()`` false: the holder ended without creating it)."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline or not alive():
            raise TimeoutError(f"{path} did not appear within {seconds} s")
        time.sleep(0.02)


def root(result: WorkflowResult) -> Node:
    return result.nodes[result.root_id]


def test_a_second_run_in_another_thread_waits_for_the_first(tmp_path: Path) -> None:
    marker = tmp_path / "first-holds-the-lock"
    options = EngineOptions(run_dir=tmp_path / "runs")
    first: list[WorkflowResult] = []
    thread = threading.Thread(
        target=lambda: first.append(
            Engine(options).run(task_doc("first", 'touch "$MARKER"; sleep 1', marker))
        ),
    )
    thread.start()
    wait_for(marker, thread.is_alive)
    store = RecordingObjects()
    second = Engine(EngineOptions(run_dir=tmp_path / "runs", workflows=store)).run(task_doc("second", "true"))
    thread.join()
    assert first[0].succeeded and second.succeeded
    assert store.statuses[0] == ("second", {"phase": "Pending", "message": WAITING, "progress": "0/0"})
    assert store.statuses[1][1]["phase"] == "Running"
    assert root(first[0]).finished_at <= root(second).started_at
    assert root(first[0]).started_at <= second.started_at


SCRIPT = """
import json, sys
from pathlib import Path
from edgefed.workflows.embedded.engine import Engine, EngineOptions
result = Engine(EngineOptions(run_dir=Path(sys.argv[2]))).run(json.loads(sys.argv[1]))
node = result.nodes[result.root_id]
print(json.dumps({"phase": str(result.phase), "started": node.started_at.isoformat(),
                  "finished": node.finished_at.isoformat()}))
"""


def test_a_run_waits_for_a_holder_in_another_process(tmp_path: Path) -> None:
    marker = tmp_path / "other-process-holds-the-lock"
    doc = task_doc("other", 'touch "$MARKER"; sleep 1', marker)
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, json.dumps(doc), str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(marker, lambda: proc.poll() is None)
        store = RecordingObjects()
        mine = Engine(EngineOptions(run_dir=tmp_path / "runs", workflows=store)).run(task_doc("mine", "true"))
    finally:
        out, _ = proc.communicate(timeout=120)
    other = json.loads(out)
    assert other["phase"] == "Succeeded" and mine.succeeded
    assert store.statuses[0][1] == {"phase": "Pending", "message": WAITING, "progress": "0/0"}
    assert datetime.fromisoformat(other["finished"]) <= root(mine).started_at


def test_a_template_mutex_runs_its_nodes_one_at_a_time(tmp_path: Path) -> None:
    events: list[Node] = []
    template = {
        "synchronization": {"mutexes": [{"name": "gpu", "namespace": "lab"}]},
        "container": {"image": "x", "command": ["sleep", "0.3"]},
    }
    result = Engine(
        EngineOptions(run_dir=tmp_path / "runs", parallelism=4, on_node=lambda n: events.append(copy.copy(n)))
    ).run(edge_fan_out(template, ["a", "b", "c"]))
    assert result.succeeded
    items = sorted((n for n in result.pods()), key=lambda n: n.started_at)
    assert len(items) == 3
    for before, after in itertools.pairwise(items):
        assert before.finished_at <= after.started_at
    waiting = [e for e in events if e.message.startswith("Waiting for")]
    assert waiting and all(e.phase == "Pending" for e in waiting)
    assert waiting[0].message == "Waiting for lab/Mutex/gpu lock. Lock status: 0/1"
    assert all(n.message == "" for n in result.pods())  # cleared once the lock was taken


def test_pending_timeout_bounds_the_wait_for_a_template_mutex(tmp_path: Path) -> None:
    template = {
        "synchronization": {"mutexes": [{"name": "gpu"}]},
        "pendingTimeout": "1s",
        "script": {
            "image": "x",
            "command": ["sh"],
            "source": 'if [ "{{inputs.parameters.edge}}" = hold ]; then sleep 3; fi',
        },
    }
    result = Engine(EngineOptions(run_dir=tmp_path / "runs")).run(edge_fan_out(template, ["hold", "late"]))
    phases = {n.inputs["edge"]: (n.phase, n.message) for n in result.pods()}
    assert phases == {"hold": ("Succeeded", ""), "late": ("Failed", "timeout")}


@pytest.mark.parametrize(
    ("synchronization", "error", "expected"),
    [
        (
            {"semaphores": [{"configMapKeyRef": {"name": "c", "key": "k"}}]},
            UnsupportedFeatureError,
            "semaphores",
        ),
        ({"mutexes": [{"name": "m", "database": True}]}, UnsupportedFeatureError, "database locks"),
        ({"mutexes": [{"namespace": "x"}]}, WorkflowInvalidError, "mutexes[0].name: required"),
        ({"mutex": {"name": "m"}}, UnsupportedFeatureError, "synchronization.mutex: unknown field"),
    ],
)
def test_refused_synchronization(
    synchronization: dict[str, Any], error: type[Exception], expected: str
) -> None:
    doc = task_doc("x", "true")
    doc["spec"]["synchronization"] = synchronization
    with pytest.raises(error) as info:
        Engine.check(doc)
    assert expected in str(info.value)
