"""The incremental learning job's objects pass what a cluster with Argo Workflows and Argo Events enforces."""

from __future__ import annotations

import pytest

from edgefed.workflows.build import manifests
from tests.conformance.cluster_model import check_cluster
from tests.conformance.events import check_events_document
from tests.conformance.samples import incremental_manifests, make_task
from tests.conformance.test_cluster_model import _operator, _rendered, _values_for


@pytest.mark.parametrize(
    ("edges", "custom"), [(1, False), (10, False), (3, True)], ids=["1", "10", "3-custom"]
)
def test_the_event_source_and_sensor_pass_argo_events_checks(edges: int, custom: bool) -> None:
    task = make_task(edges, custom=custom)
    docs = incremental_manifests(task)
    source = next(d for d in docs.values() if d["kind"] == "EventSource")
    sensor = next(d for d in docs.values() if d["kind"] == "Sensor")
    assert check_events_document(source) == []
    assert check_events_document(sensor) == []
    # one notification per edge, on its own bucket, with its site identity (never the cloud's)
    minio = source["spec"]["minio"]
    assert len(minio) == edges
    for edge, entry in zip(task.spec.edges, minio.values(), strict=True):
        assert entry["bucket"]["name"] == edge.dataset.bucket
        # a notification-only identity: never the site identity that reads and writes the edge's data
        assert entry["accessKey"]["name"] == entry["secretKey"]["name"] == f"edgefed-notify-{edge.name}"
    assert {d["eventName"] for d in sensor["spec"]["dependencies"]} == set(minio)


@pytest.mark.parametrize(
    ("edges", "custom"), [(1, False), (10, False), (3, True)], ids=["1", "10", "3-custom"]
)
def test_the_check_runs_every_pod_under_its_least_privilege_identity(edges: int, custom: bool) -> None:
    task = make_task(edges, custom=custom)
    chart = _rendered(_values_for(task))
    secrets, configmaps = _operator(chart, task)
    # installed beside the task's own objects (the check runs the task's WorkflowTemplate): rights are exact
    # for the installation, not per document
    argo = [
        *manifests(task, cron=True).values(),
        *(d for d in incremental_manifests(task).values() if d["kind"] not in ("EventSource", "Sensor")),
    ]
    assert check_cluster(chart, argo, operator_secrets=secrets, operator_configmaps=configmaps) == []
