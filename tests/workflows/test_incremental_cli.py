"""``edgefed incremental generate`` writes objects a cluster accepts; bad jobs are refused naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conformance.events import check_events_document
from tests.helpers import REPO, edgefed

JOB = REPO / "examples" / "heart-incremental.yaml"
TASK = REPO / "examples" / "heart-demo.yaml"


def test_generate_writes_the_check_crons_and_the_argo_events_pair(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = edgefed("incremental", "generate", str(JOB), str(TASK), "-o", str(out), home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {p.name: yaml.safe_load(p.read_text())["kind"] for p in out.iterdir() if p.suffix == ".yaml"}
    assert kinds == {
        "heart-incremental-check.yaml": "Workflow",
        "heart-incremental-check-template.yaml": "WorkflowTemplate",
        "heart-incremental-check-cron.yaml": "CronWorkflow",
        "heart-incremental-scheduled-cron.yaml": "CronWorkflow",
        "heart-incremental-eventsource.yaml": "EventSource",
        "heart-incremental-sensor.yaml": "Sensor",
    }
    for name in ("heart-incremental-eventsource.yaml", "heart-incremental-sensor.yaml"):
        assert check_events_document(yaml.safe_load((out / name).read_text())) == [], name
    # the EventSource holds a notification-only identity per hospital: its MinIO policy lets it listen, no more
    source = yaml.safe_load((out / "heart-incremental-eventsource.yaml").read_text())
    assert source["spec"]["minio"]["new-data-cleveland"]["accessKey"]["name"] == "edgefed-notify-cleveland"
    policy = json.loads((out / "heart-incremental-minio-policy-notify-cleveland.json").read_text())
    assert policy["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["s3:ListenBucketNotification", "s3:GetBucketLocation"],
            "Resource": ["arn:aws:s3:::edge-cleveland"],
        }
    ]
    commands = (out / "heart-incremental-minio-policies.txt").read_text()
    assert "mc admin policy create SITE_CLEVELAND edgefed-notify-cleveland" in commands
    cron = yaml.safe_load((out / "heart-incremental-scheduled-cron.yaml").read_text())
    assert cron["spec"]["schedules"] == ["0 3 * * 0"]
    assert cron["spec"]["workflowSpec"]["arguments"]["parameters"] == [
        {"name": "trigger", "value": "schedule"}
    ]


def test_a_job_for_another_task_or_with_a_bad_field_exits_2_naming_it(tmp_path: Path) -> None:
    document = yaml.safe_load(JOB.read_text())
    document["spec"]["task"] = "other-task"
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(document))
    result = edgefed(
        "incremental", "generate", str(other), str(TASK), "-o", str(tmp_path / "o1"), home=tmp_path / "h"
    )
    assert result.returncode == 2 and "spec.task is 'other-task'" in " ".join(result.stderr.split())
    assert not (tmp_path / "o1").exists()
    document = yaml.safe_load(JOB.read_text())
    document["spec"]["triggers"] = {"newRows": {"minRows": 0}}
    document["spec"]["checkSchedule"] = "every hour"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    result = edgefed("incremental", "check", str(bad), str(TASK), home=tmp_path / "h")
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stdout + result.stderr
    assert "invalid IncrementalLearningJob" in message
    assert "spec.triggers.newRows.minRows" in message and "spec.checkSchedule" in message
