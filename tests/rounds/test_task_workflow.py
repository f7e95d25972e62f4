"""The task Workflow end to end on the embedded engine: the very document ``argo submit task.yaml`` runs,
with real steps, the real store and real (small) TensorFlow training.

Resume comes from the registry alone; a round is never trained twice; the task's mutex queues a
second task Workflow; client sampling and the round deadline decide which edges take part. Faults are
scripted through :mod:`tests.rounds.faults` (the warm workers' step target)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from edgefed.steps import layout
from edgefed.steps.planning import sample_edges
from edgefed.steps.registry import ModelRegistry
from edgefed.workflows.build import round_template, task_workflow, to_document
from edgefed.workflows.embedded.runtime import EmbeddedRuntime
from edgefed.workflows.errors import RoundFailedError
from edgefed.workflows.spec import parse_task
from tests.helpers import run_task, task_doc
from tests.rounds.faults import script, scripted_runtime

HOSPITALS = ("cleveland", "hungary", "switzerland")


@pytest.fixture(scope="module")
def runtime(store, tmp_path_factory) -> Iterator[EmbeddedRuntime]:
    with scripted_runtime(store, tmp_path_factory.mktemp("home"), "heart", HOSPITALS) as rt:
        yield rt


@pytest.fixture(scope="module")
def faults(runtime):
    return runtime.faults


@pytest.fixture(autouse=True)
def no_faults(faults):
    script(faults, [])
    yield
    script(faults, [])


def make_task(name: str, **spec):
    return parse_task(task_doc(name, HOSPITALS, **spec))


def _trainings(runtime: EmbeddedRuntime, task: str) -> dict[int, list[str]]:
    """Round -> the edges whose update objects exist: every training run leaves one."""
    cloud = runtime.store.client(layout.CLOUD_IDENTITY)
    out: dict[int, list[str]] = {}
    for edge in HOSPITALS:
        for obj in cloud.list_objects(
            layout.UPDATES_BUCKET, prefix=layout.update_prefix(edge), recursive=True
        ):
            if f"/{task}/" in obj.object_name and obj.object_name.endswith(".npz"):
                part = obj.object_name.split(f"/{task}/", 1)[1].split("/", 1)[0]  # round-00001
                round_ = int(part.removeprefix("round-"))
                out.setdefault(round_, []).append(edge)
    return out


def test_the_task_workflow_runs_every_round_as_a_child_and_reports_its_progress(runtime):
    task = make_task("tw-run", rounds=2, quorum=3)
    parameters = runtime.prepare(task)
    runtime.install_template(to_document(round_template(task)))
    result = runtime.engine().run(to_document(task_workflow(task)), parameters=parameters)
    assert result.succeeded, result.message
    assert result.outputs["last-round"] == "2" and result.outputs["rounds-run"] == "2"
    assert result.outputs["stop-reason"] == "all 2 rounds done"
    assert float(result.outputs["accuracy"]) > 0.5
    registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
    assert result.outputs["model-version"] == registry.manifest("tw-run", 2)["model"]["versionId"]
    # each round is its own Workflow, named for task, round and attempt, owned by the task Workflow
    assert sorted(result.children) == ["tw-run-r00001-a1", "tw-run-r00002-a1"]
    child = result.children["tw-run-r00002-a1"].metadata
    assert child["ownerReferences"][0]["name"] == result.name
    assert child["labels"]["edgefed.io/round"] == "2"
    assert registry.manifest("tw-run", 2)["workflow"] == "tw-run-r00002-a1"
    # the Argo UI's title/description, patched by the task Workflow itself
    annotations = result.metadata["annotations"]
    assert annotations["workflows.argoproj.io/title"] == "tw-run: done, round 2 of 2"
    assert annotations["workflows.argoproj.io/description"].startswith("all 2 rounds done, accuracy 0.")


def test_a_failed_round_is_retried_by_the_next_submission_and_no_round_is_trained_twice(runtime, faults):
    """Round 2's aggregate fails on every retry: the task Workflow fails, naming the round's Workflow.
    The next task Workflow starts round 2 again (attempt 2); round 1 is not redone."""
    task = make_task("tw-resume", rounds=3, quorum=3)
    script(faults, [{"step": "aggregate", "task": "tw-resume", "round": 2, "exit": 1}])
    with pytest.raises(RoundFailedError) as info:
        run_task(runtime, task)
    assert info.value.round == 2 and "tw-resume-r00002-a1" in str(info.value)
    assert "scripted fault: aggregate exits 1" in str(info.value)
    registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
    assert registry.committed_rounds("tw-resume") == [0, 1]
    first = registry.manifest("tw-resume", 1)

    script(faults, [])
    result, _ = run_task(runtime, task)  # a new task Workflow: continues after the last committed round
    assert result.resumed_from == 1 and [r.round for r in result.rounds] == [2, 3]
    assert [r.workflow for r in result.rounds] == ["tw-resume-r00002-a2", "tw-resume-r00003-a1"]
    assert registry.manifest("tw-resume", 1) == first
    trained = _trainings(runtime, "tw-resume")
    assert {r: sorted(e) for r, e in trained.items()} == {
        1: sorted(HOSPITALS),
        2: sorted(HOSPITALS * 2),  # attempt 1 trained, then failed to aggregate; attempt 2
        3: sorted(HOSPITALS),
    }
    result, _ = run_task(runtime, task)  # nothing left
    assert result.rounds == [] and result.stop_reason == "all 3 rounds done"


def test_a_round_committed_before_its_evaluate_failed_counts_as_done_and_keeps_its_metrics(runtime, faults):
    """Round 2's evaluate fails after its commit (as an interrupt between the two would leave it): the
    round counts as done, and the next plan step scores it, so its metrics reach the registry and the
    stop conditions all the same."""
    task = make_task("tw-eval", rounds=3, quorum=3)
    script(faults, [{"step": "evaluate", "task": "tw-eval", "round": 2, "exit": 1}])
    result, registry = run_task(runtime, task)
    assert [r.round for r in result.rounds] == [1, 3]  # round 2's Workflow failed, after its commit
    assert registry.committed_rounds("tw-eval") == [0, 1, 2, 3]
    caught_up = registry.evaluation("tw-eval", 2)
    assert caught_up is not None and caught_up["round"] == 2 and 0.0 <= caught_up["accuracy"] <= 1.0
    assert caught_up["workflow"].startswith("tw-eval-")  # the task Workflow's plan step scored it
    assert registry.evaluation("tw-eval", 3) is not None
    assert sorted(_trainings(runtime, "tw-eval")[2]) == sorted(HOSPITALS)  # trained once


def test_a_second_task_workflow_of_the_same_task_waits_for_the_first(runtime):
    task = make_task("tw-mutex", rounds=2, quorum=3)
    results: dict[str, object] = {}

    def run(key: str) -> None:
        results[key] = run_task(runtime, task)[0]

    threads = [threading.Thread(target=run, args=(k,)) for k in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    ran = sorted(len(r.rounds) for r in results.values())
    assert ran == [0, 2]  # one ran both rounds; the other waited, then found nothing to do
    registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
    assert registry.committed_rounds("tw-mutex") == [0, 1, 2]
    assert {r: sorted(e) for r, e in _trainings(runtime, "tw-mutex").items()} == {
        1: sorted(HOSPITALS),
        2: sorted(HOSPITALS),
    }


def test_sampled_rounds_ask_the_edges_seed_and_round_choose(runtime):
    sampling = {"count": 2, "seed": 11}
    task = make_task("tw-sample", rounds=3, quorum=2, sampling=sampling)
    result, registry = run_task(runtime, task)
    assert [r.round for r in result.rounds] == [1, 2, 3]
    for round_ in (1, 2, 3):
        asked = sample_edges(list(HOSPITALS), task.spec.sampling.model_dump(by_alias=True), round_)
        manifest = registry.manifest("tw-sample", round_)
        assert manifest["edges"] == asked
        assert sorted(c["edge"] for c in manifest["contributors"]) == sorted(asked)
        assert sorted(_trainings(runtime, "tw-sample")[round_]) == sorted(asked)


def test_a_slow_edge_sits_the_round_out_at_the_deadline(runtime, faults):
    """The slow edge's train step is killed at the deadline on each of its attempts (retries: 2, backoff
    5 s then 10 s), so the round takes ~3 deadlines + 15 s. 5 s is still far beyond a healthy step in the
    warm workers (well under a second), and a healthy attempt that overran it would be retried."""
    task = make_task("tw-slow", rounds=1, quorum=2, deadlines={"edgeSeconds": 5})
    script(faults, [{"step": "train", "task": "tw-slow", "edge": "switzerland", "sleep": 300}])
    result, registry = run_task(runtime, task)
    (report,) = result.rounds
    assert report.missing == ["switzerland"] and report.contributors == 2
    missing = registry.manifest("tw-slow", 1)["missing"]
    assert missing[0]["edge"] == "switzerland" and "did not finish" in missing[0]["reason"]
    assert report.seconds < 300  # closed at the deadline, not when the slow edge would have ended


def test_a_task_with_a_store_ca_runs_here_and_mounts_it_on_a_cluster(runtime):
    """The CA ConfigMap is cluster trust for HTTPS stores: every pod of the generated Workflow mounts it,
    and the embedded run (loopback HTTP) runs the same task without it."""
    from edgefed.workflows.embedded.task import local_task, run_task

    task = make_task(
        "tw-ca", rounds=1, quorum=3, store={"endpoint": "minio.example:9443", "caConfigMap": "ca"}
    )
    document = to_document(task_workflow(task))
    assert {
        "name": "store-ca",
        "configMap": {"name": "ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]},
    } in (document["spec"]["volumes"])
    assert "store-ca" not in str(to_document(task_workflow(local_task(task))))
    result = run_task(runtime, task)
    assert result.last_round == 1
