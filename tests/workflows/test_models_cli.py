"""``edgefed models show|get|promote|rollback`` on a task trained for real (embedded store, real rounds)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import yaml

from tests.helpers import edgefed, free_port, task_doc, write_task

TASK = "models-cli"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A home where TASK ran 3 rounds; the CLI as a function of it."""
    root = tmp_path_factory.mktemp("models")

    def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return edgefed(*args, home=root / "home", timeout=timeout, cwd=root)

    path = write_task(root / "task.yaml", task_doc(TASK, ("cleveland", "hungary"), rounds=3, quorum=2))
    try:
        assert cli("data", "seed", "--task", str(path)).returncode == 0
        ran = cli("run", str(path), timeout=600)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        yield {"cli": cli, "root": root}
    finally:
        cli("store", "stop", timeout=120)


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_show_names_metrics_lineage_and_hashes(trained) -> None:
    cli = trained["cli"]
    shown = _json(cli("models", "show", TASK, "2", "-o", "json"))
    assert shown["round"] == 2 and shown["model"]["verified"] is True
    assert len(shown["model"]["sha256"]) == 64 and shown["model"]["versionId"]
    assert shown["parent"]["round"] == 1
    assert sorted(c["edge"] for c in shown["contributors"]) == ["cleveland", "hungary"]
    assert 0.5 < shown["evaluation"]["accuracy"] <= 1
    latest = _json(cli("models", "show", TASK, "-o", "json"))  # nothing promoted: the latest
    assert latest["round"] == 3 and latest["serves"] is False
    by_version = _json(cli("models", "show", TASK, shown["model"]["versionId"][:10], "-o", "json"))
    assert by_version["round"] == 2
    table = cli("models", "show", TASK, "2")
    assert table.returncode == 0 and "verified" in table.stdout and "cleveland" in table.stdout


def test_get_writes_the_verified_weights_and_never_overwrites(trained) -> None:
    cli, root = trained["cli"], trained["root"]
    got = cli("models", "get", TASK, "3")
    assert got.returncode == 0, got.stderr
    target = root / f"{TASK}-r00003.npz"
    sha = _json(cli("models", "show", TASK, "3", "-o", "json"))["model"]["sha256"]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha
    with np.load(target) as weights:
        assert len(weights.files) >= 2  # kernel and bias at least
    again = cli("models", "get", TASK, "3")
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha


def test_promote_and_rollback_record_who_when_why_and_rewrite_nothing(trained) -> None:
    cli = trained["cli"]
    before = _json(cli("models", "show", TASK, "1", "-o", "json"))["model"]
    first = _json(
        cli("models", "promote", TASK, "1", "--reason", "first good one", "--by", "alice", "-o", "json")
    )
    assert (first["seq"], first["round"], first["by"], first["reason"], first["replaces"]) == (
        1,
        1,
        "alice",
        "first good one",
        None,
    )
    second = _json(cli("models", "promote", TASK, "latest", "-m", "better", "-o", "json"))
    assert second["round"] == 3 and second["replaces"] == {"seq": 1, "round": 1} and "@" in second["by"]
    assert _json(cli("models", "show", TASK, "served", "-o", "json"))["round"] == 3
    back = _json(cli("models", "rollback", TASK, "-m", "regression at cleveland", "-o", "json"))
    assert (back["action"], back["round"], back["replaces"]) == ("rollback", 1, {"seq": 2, "round": 3})
    shown = _json(cli("models", "show", TASK, "-o", "json"))
    assert shown["round"] == 1 and shown["serves"] is True
    assert [p["seq"] for p in shown["promotions"]] == [1, 2, 3]
    assert shown["model"] == before  # the round itself is untouched
    undo = _json(cli("models", "rollback", TASK, "-o", "json"))  # like `kubectl rollout undo`: back again
    assert undo["round"] == 3


#: Run in a fresh process: loads the export as TF Serving and a Python client would, predicts the test set.
_LOAD_EXPORT = """
import json, sys
import numpy as np, pandas as pd, tensorflow as tf
out, test_set = sys.argv[1], sys.argv[2]
described = json.load(open(f"{out}/export.json"))
frame = pd.read_parquet(test_set)
x = frame[described["featureColumns"]].to_numpy(np.float32)
loaded = tf.saved_model.load(f"{out}/saved_model/{described['version']}")
by_name = loaded.signatures["serving_default"](**{c: tf.constant(x[:, i]) for i, c in enumerate(described["featureColumns"])})
by_matrix = loaded.signatures["predict_features"](features=tf.constant(x))
keras = tf.keras.models.load_model(f"{out}/model.keras")
lite = tf.lite.Interpreter(model_path=f"{out}/model.tflite")
lite.resize_tensor_input(lite.get_input_details()[0]["index"], x.shape)
lite.allocate_tensors()
lite.set_tensor(lite.get_input_details()[0]["index"], x)
lite.invoke()
lite_classes = {d["name"]: lite.get_tensor(d["index"]) for d in lite.get_output_details()}
lite_classes = next(v for v in lite_classes.values() if v.ndim == 1)
print(json.dumps({
    "classes": by_name["classes"].numpy().tolist(),
    "matrix": by_matrix["classes"].numpy().tolist(),
    "keras": np.argmax(keras(x), axis=-1).tolist(),
    "tflite": lite_classes.tolist(),
    "labels": frame["label"].tolist(),
}))
"""


def test_export_loads_in_a_fresh_process_and_predicts_what_the_evaluation_scored(trained) -> None:
    from tensorflow.core.protobuf import saved_model_pb2

    from edgefed.steps import layout
    from edgefed.steps.store import get_bytes
    from edgefed.workflows.embedded.store.server import EmbeddedStore

    cli, root = trained["cli"], trained["root"]
    done = cli("models", "export", TASK, "3", "--tflite", "--to", "served", "-o", "json")
    assert f"exporting round 3 of {TASK} (TensorFlow)..." in done.stderr  # progress, in a log too
    exported = _json(done)
    out = root / "served"
    assert (
        exported["round"] == 3
        and exported["modelSha256"]
        == _json(cli("models", "show", TASK, "3", "-o", "json"))["model"]["sha256"]
    )
    assert exported["contract"]["name"] == "heart" and set(exported["files"]) == {
        "keras",
        "savedModel",
        "tflite",
    }
    # what TensorFlow Serving reads: <base>/<version>/saved_model.pb, tag 'serve', predict signatures
    meta = saved_model_pb2.SavedModel.FromString((out / "saved_model" / "3" / "saved_model.pb").read_bytes())
    graph = meta.meta_graphs[0]
    assert list(graph.meta_info_def.tags) == ["serve"]
    signature = graph.signature_def["serving_default"]
    assert signature.method_name == "tensorflow/serving/predict"
    assert set(signature.inputs) == set(exported["featureColumns"]) and "age" in signature.inputs
    assert set(signature.outputs) == {"logits", "probabilities", "classes"}

    store = EmbeddedStore(root / "home" / "store")
    store.start()  # attaches to the store the CLI left running
    test_set = root / "test.parquet"
    test_set.write_bytes(
        get_bytes(store.client(layout.ADMIN_IDENTITY), layout.EVAL_BUCKET, layout.test_set_key("heart"))
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    fresh = subprocess.run(
        [sys.executable, "-c", _LOAD_EXPORT, str(out), str(test_set)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    answers = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert answers["classes"] == answers["matrix"] == answers["keras"] == answers["tflite"]
    accuracy = np.mean(np.array(answers["classes"]) == np.array(answers["labels"]))
    evaluation = _json(cli("models", "show", TASK, "3", "-o", "json"))["evaluation"]
    assert accuracy == pytest.approx(
        evaluation["accuracy"], abs=1e-9
    )  # the very classes the evaluation counted

    again = cli("models", "export", TASK, "3", "--to", "served")
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr


def test_deploy_copies_the_served_version_into_each_edges_own_store_and_status_shows_it(trained) -> None:
    cli, root = trained["cli"], trained["root"]
    task_file = str(root / "task.yaml")
    promoted = _json(cli("models", "promote", TASK, "2", "-m", "deploy me", "-o", "json"))
    deployed = cli("models", "deploy", task_file)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "round 2 of models-cli runs at 2 edge(s)" in " ".join(deployed.stdout.split())
    status = {s["edge"]: s for s in _json(cli("edges", "status", task_file, "-o", "json"))}
    for edge in ("cleveland", "hungary"):
        s = status[edge]
        assert (s["deployed"]["round"], s["deployed"]["sha256"]) == (2, promoted["sha256"])
        assert s["deployed"]["model"] == f"s3://edge-{edge}/models/{TASK}/00002/model.npz"
        # checked in round 1; its data unchanged since, later rounds reused that verdict
        assert s["verdict"]["passed"] is True and s["verdict"]["round"] == 1
        assert s["verdict"]["datasetEtag"] == s["etag"]
        assert s["lastContribution"]["round"] == 3 and s["rows"] == s["lastContribution"]["examples"] > 0
        assert s["etag"] == s["lastContribution"]["etag"]  # the bytes it last learned from
    # one edge only, another version: the other edge keeps what it runs
    only = cli("models", "deploy", task_file, "3", "--edges", "hungary")
    assert only.returncode == 0, only.stdout + only.stderr
    status = {s["edge"]: s for s in _json(cli("edges", "status", task_file, "-o", "json"))}
    assert (status["hungary"]["deployed"]["round"], status["cleveland"]["deployed"]["round"]) == (3, 2)
    table = cli("edges", "status", task_file)
    assert table.returncode == 0 and "PASS (round 1)" in table.stdout and "round 2 (" in table.stdout
    # bad input: an edge the task does not have, nothing deployed
    bad = cli("models", "deploy", task_file, "3", "--edges", "nowhere")
    assert bad.returncode == 2 and "has no edge 'nowhere'" in bad.stderr
    # for a cluster: the same Workflow, written for argo submit
    written = cli("models", "deploy", task_file, "2", "--generate", "deploy-out")
    assert written.returncode == 0, written.stderr
    document = yaml.safe_load((root / "deploy-out" / f"{TASK}-deploy-r00002.yaml").read_text())
    assert document["kind"] == "Workflow" and document["spec"]["entrypoint"] == "deploy-model"


def test_serve_edge_answers_with_its_deployed_version_and_forwards_hard_examples(trained) -> None:
    """``edgefed serve cloud`` and ``serve edge`` as a user starts them: the edge serves what was deployed to it."""
    import signal
    import time

    import urllib3

    root = trained["root"]
    env = {**os.environ, "EDGEFED_HOME": str(root / "home"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cloud_port, edge_port = free_port(), free_port()

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "edgefed.workflows.cli", "serve", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def ready(port: int, process: subprocess.Popen) -> dict:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read()
            try:
                response = urllib3.request("GET", f"http://127.0.0.1:{port}/readyz", retries=False)
                if response.status == 200:
                    return json.loads(response.data)
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"nothing ready on {port}")

    cloud = start("cloud", TASK, "--version", "2", "--port", str(cloud_port))
    edge = start(
        "edge",
        TASK,
        "--edge",
        "hungary",
        "--cloud",
        f"http://127.0.0.1:{cloud_port}",
        "--threshold",
        "1.0",
        "--port",
        str(edge_port),
    )
    try:
        assert ready(cloud_port, cloud)["model"]["round"] == 2
        served = ready(edge_port, edge)["model"]
        assert served["round"] == 3 and served["source"] == f"s3://edge-hungary/models/{TASK}/00003/model.npz"
        response = urllib3.request(
            "POST",
            f"http://127.0.0.1:{edge_port}/v1/predict",
            body=json.dumps({"instances": [[0.5] * 32]}),
            headers={"Content-Type": "application/json"},
        )
        answer = json.loads(response.data)
        assert response.status == 200, answer
        assert answer["predictions"][0]["answeredBy"] == "cloud" and answer["cloudModel"]["round"] == 2
    finally:
        for process in (edge, cloud):
            process.send_signal(signal.SIGINT)
        for process in (edge, cloud):
            assert process.wait(timeout=60) == 130
    # the services are gone with their commands
    with pytest.raises(urllib3.exceptions.HTTPError):
        urllib3.request("GET", f"http://127.0.0.1:{edge_port}/healthz", retries=False)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("models", "show", "no-such-task"), 2, "task 'no-such-task' has no committed model"),
        (("models", "show", TASK, "9"), 2, f"task '{TASK}' has no committed round 9 (committed: 0..3)"),
        (("models", "promote", TASK, "9"), 2, f"task '{TASK}' has no committed round 9"),
        (("models", "get", TASK, "zzzzzzzzzz"), 2, f"task '{TASK}' has no version 'zzzzzzzzzz'"),
        (("models", "rollback", "no-such-task"), 2, "task 'no-such-task' has no committed model"),
    ],
)
def test_bad_input_names_the_task_or_version_and_changes_nothing(trained, args, code, message) -> None:
    cli = trained["cli"]
    history = _json(cli("models", "show", TASK, "-o", "json"))["promotions"]
    result = cli(*args)
    assert result.returncode == code, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split())
    assert _json(cli("models", "show", TASK, "-o", "json"))["promotions"] == history


def test_a_version_whose_bytes_fail_their_hash_is_refused_everywhere(trained) -> None:
    """An administrator's overwrite of round 0's manifest (a new version naming a wrong SHA-256) stands for
    a corrupted object: list and show name the overwrite, get and promote the mismatch, all exit 1;
    nothing is written or recorded."""
    from edgefed.steps import layout
    from edgefed.steps.store import get_bytes, put_bytes
    from edgefed.workflows.embedded.store.server import EmbeddedStore

    cli, root = trained["cli"], trained["root"]
    history = _json(cli("models", "show", TASK, "-o", "json"))["promotions"]
    store = EmbeddedStore(root / "home" / "store")
    store.start()  # attaches to the store the CLI left running
    admin = store.client(layout.ADMIN_IDENTITY)
    key = layout.manifest_key(TASK, 0)
    manifest = json.loads(get_bytes(admin, layout.MODELS_BUCKET, key))
    manifest["model"]["sha256"] = "0" * 64
    put_bytes(
        admin, layout.MODELS_BUCKET, key, json.dumps(manifest).encode(), content_type="application/json"
    )

    # show and list present the round as committed (the manifest's first version) and name the overwrite
    shown = cli("models", "show", TASK, "0", "-o", "json")
    assert shown.returncode == 1 and json.loads(shown.stdout)["model"]["verified"] is False
    assert json.loads(shown.stdout)["model"]["sha256"] != "0" * 64
    overwritten = "its manifest was written 1 more time(s) after the commit"
    assert overwritten in " ".join(shown.stderr.split())
    listed = cli("models", "list", TASK, "-o", "json")
    assert listed.returncode == 1, listed.stdout + listed.stderr
    checks = {v["round"]: v["verified"] for v in json.loads(listed.stdout)["versions"]}
    assert checks == {0: False, 1: True, 2: True, 3: True}
    assert f"round 0: {overwritten}" in " ".join(listed.stderr.split())
    got = cli("models", "get", TASK, "0", "--to", "r0.npz")
    assert got.returncode == 1 and "corrupt" in got.stderr and not (root / "r0.npz").exists()
    promoted = cli("models", "promote", TASK, "0")
    assert promoted.returncode == 1 and "does not match the manifest" in " ".join(promoted.stderr.split())
    assert _json(cli("models", "show", TASK, "-o", "json"))["promotions"] == history
