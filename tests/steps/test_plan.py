"""The plan step and its pure parts: stop conditions, client sampling, attempts, all from the registry.

The plan step runs against the real store; rounds are committed with :class:`ModelRegistry` directly
(no TensorFlow), as the aggregate step would commit them.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from edgefed.steps import layout
from edgefed.steps.cli import run as step
from edgefed.steps.interface import Env, Outputs, StepExit
from edgefed.steps.planning import StopState, evaluate_due, sample_edges, sample_size, stop_reason
from edgefed.steps.registry import ModelRegistry
from edgefed.workflows.build import step_config
from edgefed.workflows.spec import parse_task
from tests.helpers import task_doc

EDGES = [f"e{i}" for i in range(10)]


# -- sampling ------------------------------------------------------------------------------------
def test_sampling_is_a_function_of_seed_and_round():
    sampling = {"fraction": 0.3, "minEdges": 1, "seed": 7}
    first = [sample_edges(EDGES, sampling, r) for r in range(1, 21)]
    again = [sample_edges(EDGES, sampling, r) for r in range(1, 21)]
    assert first == again  # a resumed round asks the same edges
    assert all(len(s) == 3 for s in first)
    assert all(s == [e for e in EDGES if e in s] for s in first)  # in the spec's order
    assert len({tuple(s) for s in first}) > 10  # rounds differ
    other_seed = [sample_edges(EDGES, {**sampling, "seed": 8}, r) for r in range(1, 21)]
    assert other_seed != first
    # over many rounds every edge is asked about equally often (uniform without replacement)
    counts = Counter(e for r in range(1, 2001) for e in sample_edges(EDGES, sampling, r))
    assert set(counts) == set(EDGES) and max(counts.values()) - min(counts.values()) < 150


def test_sample_size_counts_fractions_up_and_honours_min_edges():
    assert sample_size({"fraction": 0.25}, 10) == 3
    assert sample_size({"count": 4}, 10) == 4
    assert sample_size({"fraction": 0.1, "minEdges": 5}, 10) == 5
    assert sample_size({"count": 20}, 10) == 10
    assert sample_edges(EDGES, None, 3) == EDGES


def test_spec_checks_the_sample_against_edges_and_quorum():
    from edgefed.workflows.errors import SpecError

    def problems(sampling, **extra):
        with pytest.raises(SpecError) as err:
            parse_task(task_doc("t", ("a", "b", "c", "d"), sampling=sampling, **extra))
        return str(err.value)

    assert "spec.sampling: each round asks 2 of 4 edges, below the quorum (3)" in problems(
        {"fraction": 0.5}, quorum=3
    )
    assert "spec.sampling.count: count 9 is above the number of edges (4)" in problems({"count": 9})
    assert "give exactly one of fraction and count" in problems({"count": 1, "fraction": 0.5})
    assert "spec.sampling.minEdges" in problems({"count": 1, "minEdges": 7})
    ok = parse_task(task_doc("t", ("a", "b", "c", "d"), sampling={"count": 2, "seed": 3}, quorum=2))
    assert ok.spec.sampling.count == 2


# -- stop conditions ---------------------------------------------------------------------------------
PLAN = {"lastRound": 10, "everyRounds": 3, "stop": {"targetAccuracy": 0.9, "minImprovement": None}}


def test_stop_reason_and_evaluation_cadence():
    state = StopState()
    assert stop_reason(PLAN, 2, state) is None
    state.observe(3, 0.95, None)
    assert stop_reason(PLAN, 3, state) == "target accuracy 0.9 reached (0.9500)"
    assert stop_reason(PLAN, 4, state) is None  # the evaluation is of an earlier round
    assert stop_reason(PLAN, 10, StopState()) == "all 10 rounds done"
    assert [r for r in range(1, 11) if evaluate_due(PLAN, r)] == [3, 6, 9, 10]
    assert StopState.from_json(json.loads(json.dumps(state.to_json()))) == state


# -- the step, on the real store ---------------------------------------------------------------
@pytest.fixture
def cloud(store, monkeypatch):
    creds = store.credentials(layout.CLOUD_IDENTITY)
    monkeypatch.setenv(Env.ACCESS_KEY, creds.access_key)
    monkeypatch.setenv(Env.SECRET_KEY, creds.secret_key)
    return ModelRegistry(store.client(layout.CLOUD_IDENTITY))


def _commit(registry: ModelRegistry, task: str, round_: int, accuracy: float | None = None) -> None:
    lineage = {
        "workflow": "w",
        "parent": None,
        "contributors": [],
        "missing": [],
        "examples": 0,
        "metrics": {},
    }
    registry.commit(task, round_, [np.full(3, round_, np.float32)], lineage)
    if accuracy is not None:
        registry.record_evaluation(task, round_, {"accuracy": accuracy, "loss": 0.5})


def _plan(store, tmp_path, task, *, workflow="task-wf", uid=None, budget=40, since=0, edges=EDGES):
    config = step_config(task)
    edges_file = tmp_path / "edges.json"
    edges_file.write_text(json.dumps(edges))
    out = tmp_path / f"out-{workflow}-{budget}"
    code = step(
        [
            "plan",
            f"--task={task.name}",
            f"--workflow={workflow}",
            f"--store=http://{store.endpoint}",
            f"--config={json.dumps(config)}",
            f"--outputs={out}",
            f"--edges-file={edges_file}",
            f"--budget={budget}",
            f"--since={since}",
            f"--workflow-uid={uid or workflow + '-uid'}",
        ]
    )
    outputs = {p.name: p.read_text() for p in out.iterdir()} if out.exists() else {}
    return code, outputs


def test_plan_goes_on_names_the_round_and_stops_from_the_registry(store, cloud, tmp_path):
    task = parse_task(
        task_doc(
            "plan-a", tuple(EDGES), rounds=5, stop={"targetAccuracy": 0.9}, sampling={"count": 3, "seed": 1}
        )
    )
    _commit(cloud, task.name, 0)
    code, out = _plan(store, tmp_path, task)
    assert code == 0 and out[Outputs.GO] == "true" and out[Outputs.NEXT_ROUND] == "1"
    assert out[Outputs.NAME] == "plan-a-r00001-a1"
    assert json.loads(out[Outputs.EDGES]) == sample_edges(EDGES, {"count": 3, "seed": 1}, 1)
    assert out[Outputs.TITLE] == "plan-a: round 1 of 5"

    # the round committed with an accuracy below the target: round 2 next, chain budget counted down
    _commit(cloud, task.name, 1, accuracy=0.7)
    code, out = _plan(store, tmp_path, task, budget=7)
    assert (out[Outputs.GO], out[Outputs.NEXT_ROUND], out[Outputs.BUDGET]) == ("true", "2", "6")
    assert out[Outputs.ACCURACY] == "0.7000" and out[Outputs.LAST_ROUND] == "1"

    # a spent budget: not this chain, but not stopped either
    _commit(cloud, task.name, 2, accuracy=0.8)
    code, out = _plan(store, tmp_path, task, budget=0)
    assert out[Outputs.GO] == "false" and out[Outputs.STOP_REASON] == ""

    _commit(cloud, task.name, 3, accuracy=0.95)
    code, out = _plan(store, tmp_path, task, since=1)
    assert out[Outputs.GO] == "false"
    assert out[Outputs.STOP_REASON] == "target accuracy 0.9 reached (0.9500)"
    assert out[Outputs.ROUNDS_RUN] == "2" and "done" in out[Outputs.TITLE]


def test_a_round_this_workflow_started_and_did_not_commit_fails_the_plan(store, cloud, tmp_path):
    """The round's Workflow failed before committing: the same task Workflow must not start it again
    (exit 5, never retried); a new task Workflow (a resubmission) tries it as attempt 2."""
    task = parse_task(task_doc("plan-b", ("a", "b"), rounds=3))
    _commit(cloud, task.name, 0)
    code, out = _plan(store, tmp_path, task, workflow="task-1")
    assert code == 0 and out[Outputs.NAME] == "plan-b-r00001-a1"
    code, out = _plan(store, tmp_path, task, workflow="task-1")
    assert code == StepExit.ROUND_FAILED
    code, out = _plan(store, tmp_path, task, workflow="task-2")
    assert code == 0 and out[Outputs.NAME] == "plan-b-r00001-a2"
    # a Workflow under a name seen before (deleted, resubmitted) is a new one: its uid tells
    code, out = _plan(store, tmp_path, task, workflow="task-2", uid="another-uid")
    assert code == 0 and out[Outputs.NAME] == "plan-b-r00001-a3"
    # once it commits, round 2 is next whoever asks
    _commit(cloud, task.name, 1)
    code, out = _plan(store, tmp_path, task, workflow="task-2")
    assert code == 0 and out[Outputs.NAME] == "plan-b-r00002-a1"


def test_stop_state_is_kept_so_each_plan_reads_only_the_new_evaluation(store, cloud, tmp_path):
    task = parse_task(
        task_doc("plan-c", ("a",), rounds=9, stop={"minImprovement": {"delta": 0.05, "patience": 2}})
    )
    _commit(cloud, task.name, 0)
    for round_, accuracy in enumerate([0.5, 0.52, 0.53], start=1):
        _commit(cloud, task.name, round_, accuracy=accuracy)
        code, out = _plan(store, tmp_path, task)
        assert code == 0
    assert out[Outputs.STOP_REASON].startswith("accuracy improved by less than 0.05 for 2 evaluations")
    saved = json.loads(
        cloud.client.get_object(layout.MODELS_BUCKET, layout.plan_state_key(task.name, 3)).read()
    )
    assert saved == {"best": 0.5, "stale": 2, "last": [3, 0.53]}
    # the registry is the truth: a lost state object is rebuilt from the evaluations (only the admin
    # may delete in the models bucket)
    admin = store.client(layout.ADMIN_IDENTITY)
    admin.remove_object(layout.MODELS_BUCKET, layout.plan_state_key(task.name, 3))
    admin.remove_object(layout.MODELS_BUCKET, layout.plan_state_key(task.name, 2))
    code, again = _plan(store, tmp_path, task, workflow="other")
    assert again[Outputs.STOP_REASON] == out[Outputs.STOP_REASON]


def test_last_committed_survives_a_commit_cut_before_latest(store, cloud):
    """A commit writes its manifest, then ``latest``: a crash between leaves ``latest`` one behind."""
    task = "plan-d"
    _commit(cloud, task, 0)
    _commit(cloud, task, 1)
    manifest = cloud.manifest(task, 1)
    cloud.client.put_object(
        layout.MODELS_BUCKET,
        layout.manifest_key(task, 2),
        __import__("io").BytesIO(json.dumps(manifest).encode()),
        len(json.dumps(manifest)),
    )
    assert cloud.last_committed(task) == 2 == cloud.last_round(task)
