"""Federated rounds end to end: generated workflows executed by the embedded engine against the real
S3 store, with real (small) TensorFlow training on the heart data of real hospitals."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest

from edgefed.steps import codec, layout
from edgefed.steps.contracts import load_contract
from edgefed.steps.registry import ModelRegistry
from edgefed.workflows.build import (
    round_workflow,
    step_config,
    to_document,
)
from edgefed.workflows.embedded.runtime import EmbeddedRuntime
from edgefed.workflows.errors import RoundFailedError
from edgefed.workflows.spec import parse_task
from tests.helpers import interrupt_after, run_task, seeded_runtime, task_doc, write_task

HOSPITALS = ("cleveland", "hungary", "switzerland")


@pytest.fixture(scope="module")
def runtime(store, tmp_path_factory) -> Iterator[EmbeddedRuntime]:
    """One runtime (warm workers: TensorFlow imported once) on the session store for the module."""
    with seeded_runtime(store, tmp_path_factory.mktemp("home"), "heart", HOSPITALS) as rt:
        yield rt


def make_task(name: str, **spec):
    return parse_task(task_doc(name, HOSPITALS, **spec))


def test_two_rounds_give_two_versions_with_correct_lineage(runtime):
    task = make_task("lineage", rounds=2, quorum=3)
    result, registry = run_task(runtime, task)
    assert [r.round for r in result.rounds] == [1, 2]
    assert registry.committed_rounds("lineage") == [0, 1, 2]
    cloud = runtime.store.client(layout.CLOUD_IDENTITY)

    previous = registry.manifest("lineage", 0)
    for round_, report in zip((1, 2), result.rounds, strict=True):
        manifest = registry.manifest("lineage", round_)
        assert manifest["round"] == round_
        assert manifest["workflow"] == report.workflow and report.workflow.startswith(
            f"lineage-r{round_:05d}-"
        )
        assert manifest["parent"] == {
            "round": round_ - 1,
            "versionId": previous["model"]["versionId"],
            "sha256": previous["model"]["sha256"],
        }
        assert [c["edge"] for c in manifest["contributors"]] == list(HOSPITALS)
        assert manifest["missing"] == []
        contract = load_contract("heart")
        assert manifest["contract"] == {
            "name": "heart",
            "version": contract.version,
            "sha256": contract.sha256,
        }
        # every update's SHA-256 is that of the object the edge wrote, and FedAvg is its weighted mean
        updates, counts = [], []
        for c in manifest["contributors"]:
            key = layout.update_key(c["edge"], "lineage", round_, report.workflow)
            blob = cloud.get_object(layout.UPDATES_BUCKET, key).read()
            assert codec.sha256(blob) == c["sha256"]
            weights, meta = codec.decode(blob)
            assert meta["examples"] == c["examples"] > 0
            # the version names the exact bytes each edge learned from
            site = runtime.store.client(layout.ADMIN_IDENTITY)
            bucket, _, key = c["dataset"]["url"].removeprefix("s3://").partition("/")
            stat = site.stat_object(bucket, key)
            assert (c["dataset"]["etag"], c["dataset"]["versionId"]) == (stat.etag, stat.version_id)
            assert c["dataset"]["rows"] == c["examples"]
            updates.append(weights)
            counts.append(c["examples"])
        assert manifest["examples"] == sum(counts)
        model = registry.load("lineage", round_)
        for i, w in enumerate(model.weights):
            expected = np.average(np.stack([u[i] for u in updates]), axis=0, weights=counts)
            np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-6)
        evaluation = registry.evaluation("lineage", round_)
        assert evaluation is not None and 0.5 < evaluation["accuracy"] <= 1.0
        assert report.accuracy == pytest.approx(evaluation["accuracy"], abs=1e-6)
        previous = manifest

    versions = registry.latest_versions("lineage")
    assert [v["round"] for v in versions] == [2, 1, 0]
    assert versions[0]["isLatest"]
    # the model improved on the initial one
    assert registry.evaluation("lineage", 2)["accuracy"] >= 0.6


def test_a_task_submitted_from_its_workflow_template_runs_the_same(runtime):
    """What the CronWorkflow and `edgefed submit` create: a small Workflow referencing the task's
    WorkflowTemplate. The engine resolves the reference as Argo does and the rounds commit as usual."""
    task = make_task("from-template", rounds=2, quorum=3)
    result, registry = run_task(runtime, task, from_template=True)
    assert [r.round for r in result.rounds] == [1, 2]
    assert registry.committed_rounds("from-template") == [0, 1, 2]
    manifest = registry.manifest("from-template", 2)
    assert manifest["workflow"].startswith("from-template-r00002-")
    assert [c["edge"] for c in manifest["contributors"]] == list(HOSPITALS)
    assert result.rounds[1].accuracy is not None  # evaluate ran: the submission's evaluate=true won


def test_edge_with_missing_dataset_sits_out_when_quorum_holds(runtime):
    doc = task_doc("sitout", HOSPITALS, rounds=1, quorum=2)
    doc["spec"]["edges"][1]["dataset"]["key"] = "heart/not-there.parquet"
    result, registry = run_task(runtime, parse_task(doc))
    manifest = registry.manifest("sitout", 1)
    assert [c["edge"] for c in manifest["contributors"]] == ["cleveland", "switzerland"]
    assert len(manifest["missing"]) == 1
    missing = manifest["missing"][0]
    assert missing["edge"] == "hungary"
    assert "s3://edge-hungary/heart/not-there.parquet does not exist" in missing["reason"]
    assert result.rounds[0].missing == ["hungary"]


def test_edges_departing_from_conventions_run_the_same_way(runtime):
    """A custom Secret, another dataset key and per-edge tolerations make the items objects (podSpecPatch)."""
    doc = task_doc("custom", HOSPITALS, rounds=1, quorum=3)
    doc["spec"]["edges"][0]["credentialsSecret"] = "cleveland-minio"
    doc["spec"]["edges"][1]["tolerations"] = [{"key": "edge", "operator": "Exists", "effect": "NoSchedule"}]
    client = runtime.store.client(layout.ADMIN_IDENTITY)
    data_bytes = client.get_object("edge-switzerland", "heart/train.parquet").read()
    client.put_object(
        "edge-switzerland", "exports/2026/heart.parquet", io.BytesIO(data_bytes), len(data_bytes)
    )
    doc["spec"]["edges"][2]["dataset"]["key"] = "exports/2026/heart.parquet"
    task = parse_task(doc)
    document = to_document(round_workflow(task, 1))
    train = next(t for t in document["spec"]["templates"] if t["name"] == "train")
    assert train["podSpecPatch"] == '{"tolerations": {{inputs.parameters.tolerations}}}'
    assert {p["name"] for p in train["inputs"]["parameters"]} == {"edge", "secret", "dataset", "tolerations"}
    _, registry = run_task(runtime, task)
    manifest = registry.manifest("custom", 1)
    assert [c["edge"] for c in manifest["contributors"]] == list(HOSPITALS)
    assert manifest["missing"] == []


def test_round_fails_clearly_and_commits_nothing_when_quorum_does_not_hold(runtime):
    doc = task_doc("noquorum", HOSPITALS, rounds=1, quorum=3)
    doc["spec"]["edges"][2]["dataset"]["key"] = "heart/gone.parquet"
    with pytest.raises(RoundFailedError) as info:
        run_task(runtime, parse_task(doc))
    message = str(info.value)
    assert "round 1 failed" in message
    assert "2 usable update(s), quorum is 3" in message
    assert "switzerland: s3://edge-switzerland/heart/gone.parquet does not exist" in message
    registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
    assert registry.committed_rounds("noquorum") == [0]


def test_interrupted_task_resumes_without_redoing_or_duplicating_rounds(runtime):
    task = make_task("resume", rounds=3, quorum=2)

    with pytest.raises(KeyboardInterrupt):
        run_task(runtime, task, on_round=interrupt_after(1))
    registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
    assert registry.committed_rounds("resume") == [0, 1]
    first = registry.manifest("resume", 1)

    result, _ = run_task(runtime, task)
    assert result.resumed_from == 1
    assert [r.round for r in result.rounds] == [2, 3]
    assert registry.committed_rounds("resume") == [0, 1, 2, 3]
    assert registry.manifest("resume", 1) == first  # not redone
    assert registry.manifest("resume", 2)["parent"]["versionId"] == first["model"]["versionId"]
    # exactly one version of every round's objects, and one `latest` version per round
    cloud = runtime.store.client(layout.CLOUD_IDENTITY)
    for round_ in range(4):
        for key in (layout.manifest_key("resume", round_), layout.model_key("resume", round_)):
            versions = [
                o
                for o in cloud.list_objects(layout.MODELS_BUCKET, prefix=key, include_version=True)
                if o.object_name == key
            ]
            assert len(versions) == 1, key
    assert sorted(v["round"] for v in registry.latest_versions("resume")) == [0, 1, 2, 3]

    # a third run has nothing left to do, and a committed round is refused if asked again
    result, _ = run_task(runtime, task)
    assert result.rounds == [] and result.last_round == 3


def test_edge_step_cannot_write_another_edges_prefix_or_read_its_data(runtime, tmp_path):
    """The train step run as edge `cleveland` but told it is `hungary` is refused by the store."""
    from edgefed.steps import cli
    from edgefed.steps.interface import Env

    task = make_task("creds", rounds=1)
    parameters = runtime.prepare(task)
    creds = runtime.store.credentials(layout.edge_identity("cleveland"))
    site = runtime.store.credentials(layout.site_identity("cleveland"))
    config = step_config(task)
    common = [
        "--task=creds",
        "--round=1",
        "--workflow=manual",
        f"--store={parameters['store']}",
        f"--config={json.dumps(config)}",
        f"--outputs={tmp_path}",
    ]
    env = {
        Env.ACCESS_KEY: creds.access_key,
        Env.SECRET_KEY: creds.secret_key,
        Env.SITE_ACCESS_KEY: site.access_key,
        Env.SITE_SECRET_KEY: site.secret_key,
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert cli.run(["init", *common]) != 0  # an edge may not write models either
        cloud_creds = runtime.store.credentials(layout.CLOUD_IDENTITY)
        os.environ.update({Env.ACCESS_KEY: cloud_creds.access_key, Env.SECRET_KEY: cloud_creds.secret_key})
        assert cli.run(["init", *common]) == 0
        os.environ.update(env)
        # reading another edge's dataset is refused
        code = cli.run(
            [
                "train",
                *common,
                "--edge=cleveland",
                "--dataset=s3://edge-hungary/heart/train.parquet",
                f"--dataset-store={parameters['store']}",
            ]
        )
        assert code != 0
        # writing under another edge's update prefix is refused
        code = cli.run(
            [
                "train",
                *common,
                "--edge=hungary",
                "--dataset=s3://edge-cleveland/heart/train.parquet",
                f"--dataset-store={parameters['store']}",
            ]
        )
        assert code != 0
        # its own data and prefix work
        code = cli.run(
            [
                "train",
                *common,
                "--edge=cleveland",
                "--dataset=s3://edge-cleveland/heart/train.parquet",
                f"--dataset-store={parameters['store']}",
            ]
        )
        assert code == 0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.slow
def test_cli_seed_run_interrupt_resume_and_list(tmp_path):
    """The user's path: seed, run, Ctrl-C mid-task (exit 130), run again (resumes), models list."""
    home = tmp_path / "home"
    env = {**os.environ, "EDGEFED_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200"}
    cli = [sys.executable, "-m", "edgefed.workflows.cli"]
    doc = task_doc("cli-task", ("cleveland", "hungary"), rounds=4, quorum=2)
    path = write_task(tmp_path / "task.yaml", doc)
    try:
        seeded = subprocess.run(
            [*cli, "data", "seed", "--task", str(path)], env=env, capture_output=True, text=True, timeout=300
        )
        assert seeded.returncode == 0, seeded.stderr
        assert "s3://edge-cleveland/heart/train.parquet" in seeded.stdout

        proc = subprocess.Popen(
            [*cli, "run", str(path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines = []
        deadline = time.monotonic() + 300
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("round   2") or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
        output = "".join(lines) + rest
        assert proc.returncode == 130, output
        assert "resume" in output

        again = subprocess.run([*cli, "run", str(path)], env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "resuming after committed round" in again.stdout
        assert "round   1 " not in again.stdout  # committed rounds are not redone
        assert "round   4 " in again.stdout

        listed = subprocess.run(
            [*cli, "models", "list", "cli-task", "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert listed.returncode == 0, listed.stderr
        versions = json.loads(listed.stdout)["versions"]
        assert [v["round"] for v in versions] == [0, 1, 2, 3, 4]
        assert all(v["contributors"] == ["cleveland", "hungary"] for v in versions[1:])
        assert all(v["accuracy"] is not None for v in versions[1:])
        # the store's credentials never reach the user's terminal
        creds = json.loads((home / "store" / "credentials.json").read_text())
        secrets = [v for v in json.dumps(creds).split('"') if len(v) >= 20]
        for text in (seeded.stdout, seeded.stderr, output, again.stdout, again.stderr, listed.stdout):
            assert not any(s in text for s in secrets)
    finally:
        subprocess.run([*cli, "store", "stop"], env=env, capture_output=True, timeout=120)
