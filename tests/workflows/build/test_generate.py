"""`edgefed generate`, the Python API and the example script: what a cluster gets, and what it never gets."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from edgefed.workflows.build import NODE_LABEL, manifests, round_workflow, to_document
from edgefed.workflows.spec import parse_task
from tests.helpers import REPO, edgefed, task_doc, write_task


def test_example_script_generates_one_pipeline_per_task(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "generate_pipelines.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for task, edges in {
        "heart-west": ["cleveland", "va-long-beach"],
        "heart-europe": ["hungary", "switzerland"],
    }.items():
        template = yaml.safe_load((tmp_path / task / f"{task}-round-template.yaml").read_text())
        assert template["kind"] == "WorkflowTemplate" and template["metadata"]["name"] == f"{task}-round"
        params = {p["name"]: p.get("value") for p in template["spec"]["arguments"]["parameters"]}
        assert json.loads(params["edges"]) == edges
        assert json.loads(params["config"])["quorum"] == len(edges)
        submission = yaml.safe_load((tmp_path / task / f"{task}-round-00001-from-template.yaml").read_text())
        assert submission["spec"]["workflowTemplateRef"] == {"name": f"{task}-round"}
        assert submission["metadata"]["labels"] == {"edgefed.io/task": task, "edgefed.io/round": "1"}
        script = (tmp_path / task / f"{task}-label-nodes.sh").read_text()
        for edge in edges:
            assert f"kubectl label node edge-{edge} {NODE_LABEL}={edge} --overwrite" in script


def test_generation_is_deterministic_and_small_at_scale():
    task = parse_task(task_doc("big", tuple(f"edge-{i:05d}" for i in range(1000))))
    first = manifests(task, cron=True)  # `make bench` prints how long this takes
    assert manifests(task, cron=True) == first
    round_size = len(json.dumps(first["big-round-00001.yaml"]))
    assert round_size < 256 * 1024
    big = parse_task(task_doc("bigger", tuple(f"edge-{i:05d}" for i in range(10_000))))
    assert len(json.dumps(to_document(round_workflow(big, 1)))) < 256 * 1024


def test_cli_generate_writes_every_manifest_and_no_credential(store, tmp_path):
    """With real credentials in the store, none of them reaches a generated manifest."""
    doc = task_doc("scan", ("a", "b"))
    doc["spec"]["edges"][1]["credentialsSecret"] = "b-minio"
    path = write_task(tmp_path / "task.yaml", doc)
    out = tmp_path / "out"
    result = edgefed("generate", str(path), "-o", str(out), home=tmp_path / "home", timeout=120)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            "scan-init.yaml",
            "scan-label-nodes.sh",
            "scan-minio-policies.txt",
            "scan-minio-policy-cloud.json",
            "scan-minio-policy-edge-a.json",
            "scan-minio-policy-edge-b.json",
            "scan-minio-policy-site-a.json",
            "scan-minio-policy-site-b.json",
            "scan-retrain-cron.yaml",
            "scan-round-00001-from-template.yaml",
            "scan-round-00001.yaml",
            "scan-round-template.yaml",
            "scan-task-template.yaml",
            "task.yaml",
        ]
    )
    secrets = []
    for identity in ("admin", "cloud", "edge-a", "edge-b", "site-a", "site-b"):
        creds = store.credentials(identity)
        secrets += [creds.access_key, creds.secret_key]
    text = "".join(p.read_text() for p in out.iterdir())
    assert not [s for s in secrets if s in text]
    round_doc = yaml.safe_load((out / "scan-round-00001.yaml").read_text())
    train = next(t for t in round_doc["spec"]["templates"] if t["name"] == "train")
    refs = [
        e["valueFrom"]["secretKeyRef"] for e in train["container"]["env"] if "secretKeyRef" in e["valueFrom"]
    ]
    assert all(set(r) == {"name", "key"} for r in refs)
    # the edge's cloud store identity (named per edge: b's differs) and its own site's (conventional)
    assert {r["name"] for r in refs} == {
        "{{inputs.parameters.secret}}",
        "edgefed-site-{{inputs.parameters.edge}}",
    }
    items = json.loads(
        next(p["value"] for p in round_doc["spec"]["arguments"]["parameters"] if p["name"] == "edges")
    )
    assert [i["secret"] for i in items] == ["edgefed-edge-a", "b-minio"]
    # the CronWorkflow runs the task's WorkflowTemplate: no argo-server URL, no token, no TLS
    cron = yaml.safe_load((out / "scan-retrain-cron.yaml").read_text())
    assert cron["kind"] == "CronWorkflow"
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"] == {"name": "scan-task"}
    assert "argo-server" not in (out / "scan-retrain-cron.yaml").read_text()
    task = yaml.safe_load((out / "task.yaml").read_text())
    assert task["spec"]["entrypoint"] == "task"
    assert task["spec"]["synchronization"] == {"mutexes": [{"name": "edgefed-task-scan"}]}
