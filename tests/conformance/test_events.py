"""The Argo Events check: a MinIO EventSource and the Sensor that submits a Workflow from a template pass;
each broken variant fails with a problem naming the field."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.conformance.events import (
    ARGO_EVENTS_COMMIT,
    VENDORED_SCHEMA,
    check_events_document,
    events_validator,
)


def minio_event_source() -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "minio-uploads", "namespace": "argo-events", "labels": {"app": "edgefed"}},
        "spec": {
            "eventBusName": "default",
            "minio": {
                "round-data": {
                    "bucket": {"name": "edge-rounds"},
                    "endpoint": "minio.minio.svc:9000",
                    "events": ["s3:ObjectCreated:*"],
                    "filter": {"prefix": "uploads/", "suffix": ".npz"},
                    "insecure": True,
                    "accessKey": {"name": "minio-credentials", "key": "accesskey"},
                    "secretKey": {"name": "minio-credentials", "key": "secretkey"},
                }
            },
        },
    }


def workflow_sensor() -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": "round-trigger", "namespace": "argo-events"},
        "spec": {
            "template": {"serviceAccountName": "operate-workflow-sa"},
            "dependencies": [
                {"name": "upload", "eventSourceName": "minio-uploads", "eventName": "round-data"},
            ],
            "triggers": [
                {
                    "template": {
                        "name": "submit-round",
                        "argoWorkflow": {
                            "operation": "submit",
                            "source": {
                                "resource": {
                                    "apiVersion": "argoproj.io/v1alpha1",
                                    "kind": "Workflow",
                                    "metadata": {"generateName": "round-"},
                                    "spec": {
                                        "workflowTemplateRef": {"name": "edgefed-round"},
                                        "arguments": {"parameters": [{"name": "key", "value": ""}]},
                                    },
                                }
                            },
                            "parameters": [
                                {
                                    "src": {
                                        "dependencyName": "upload",
                                        "dataKey": "notification.0.s3.object.key",
                                    },
                                    "dest": "spec.arguments.parameters.0.value",
                                }
                            ],
                        },
                    },
                    "retryStrategy": {"steps": 3, "duration": "10s", "factor": 2},
                }
            ],
        },
    }


def test_vendored_schema_is_small_and_complete() -> None:
    assert VENDORED_SCHEMA.stat().st_size < 300_000
    definitions = json.loads(VENDORED_SCHEMA.read_text())["definitions"]
    assert {"io.argoproj.events.v1alpha1.EventSource", "io.argoproj.events.v1alpha1.Sensor"} <= set(
        definitions
    )
    refs = {ref.rsplit("/", 1)[-1] for ref in re.findall(r'"\$ref": "([^"]+)"', json.dumps(definitions))}
    assert refs <= set(definitions), f"dangling $refs: {sorted(refs - set(definitions))}"
    assert ARGO_EVENTS_COMMIT in (VENDORED_SCHEMA.parent / "README.md").read_text()


@pytest.mark.parametrize("make", [minio_event_source, workflow_sensor])
def test_valid_documents_pass(make: Callable[[], dict[str, Any]]) -> None:
    assert check_events_document(make()) == []


def test_the_sensor_depends_on_the_event_source() -> None:
    source, sensor = minio_event_source(), workflow_sensor()
    dep = sensor["spec"]["dependencies"][0]
    assert dep["eventSourceName"] == source["metadata"]["name"]
    assert dep["eventName"] in source["spec"]["minio"]


def _minio(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["minio"]["round-data"]


def _trigger(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["triggers"][0]


def _break_unknown_field(doc: dict[str, Any]) -> None:
    _minio(doc)["bukcet"] = {"name": "x"}


def _break_unknown_metadata_field(doc: dict[str, Any]) -> None:
    doc["metadata"]["label"] = {"a": "b"}


def _break_bucket_name(doc: dict[str, Any]) -> None:
    _minio(doc)["bucket"] = {}


def _break_empty_bucket_name(doc: dict[str, Any]) -> None:
    _minio(doc)["bucket"]["name"] = ""


def _break_events(doc: dict[str, Any]) -> None:
    _minio(doc)["events"] = []


def _break_event_name(doc: dict[str, Any]) -> None:
    _minio(doc)["events"] = ["ObjectCreated:*"]


def _break_secret_selector(doc: dict[str, Any]) -> None:
    _minio(doc)["secretKey"] = {"key": "secretkey"}


def _break_access_key(doc: dict[str, Any]) -> None:
    del _minio(doc)["accessKey"]


def _break_endpoint(doc: dict[str, Any]) -> None:
    _minio(doc)["endpoint"] = ""


def _break_filter(doc: dict[str, Any]) -> None:
    _minio(doc)["filter"]["sufix"] = _minio(doc)["filter"].pop("suffix")


def _break_kind(doc: dict[str, Any]) -> None:
    doc["kind"] = "EventSauce"


def _break_api_version(doc: dict[str, Any]) -> None:
    doc["apiVersion"] = "argoproj.io/v1"


def _break_metadata_name(doc: dict[str, Any]) -> None:
    doc["metadata"]["name"] = "MinIO_Uploads"


def _break_long_metadata_name(doc: dict[str, Any]) -> None:
    doc["metadata"]["name"] = "m" * 64


def _break_missing_metadata_name(doc: dict[str, Any]) -> None:
    del doc["metadata"]["name"]


def _break_duplicate_event_name(doc: dict[str, Any]) -> None:
    doc["spec"]["webhook"] = {
        "round-data": {"endpoint": "/push", "method": "POST", "port": "12000", "url": "http://edge"}
    }


EVENT_SOURCE_BREAKS = [
    (_break_unknown_field, "spec.minio.round-data.bukcet", "unknown field 'bukcet'"),
    (_break_unknown_metadata_field, "metadata.label", "did you mean 'labels'"),
    (_break_bucket_name, "spec.minio.round-data.bucket.name", "required"),
    (_break_empty_bucket_name, "spec.minio.round-data.bucket.name", "bucket name can't be empty"),
    (_break_events, "spec.minio.round-data.events", "events can't be empty"),
    (_break_event_name, "spec.minio.round-data.events[0]", "unknown event"),
    (_break_secret_selector, "spec.minio.round-data.secretKey.name", "secretKey.name is required"),
    (_break_access_key, "spec.minio.round-data.accessKey", "required"),
    (_break_endpoint, "spec.minio.round-data.endpoint", "endpoint url can't be empty"),
    (_break_filter, "spec.minio.round-data.filter.sufix", "did you mean 'suffix'"),
    (_break_kind, "kind", "unsupported kind 'EventSauce'"),
    (_break_api_version, "apiVersion", "must be 'argoproj.io/v1alpha1'"),
    (_break_metadata_name, "metadata.name", "DNS-1123"),
    (_break_long_metadata_name, "metadata.name", "at most 63"),
    (_break_missing_metadata_name, "metadata.name", "metadata.name is required"),
    (_break_duplicate_event_name, "spec.webhook.round-data", "more than one 'round-data'"),
    (_break_duplicate_event_name, "spec", "can not be put together"),
]


def _break_trigger_name(doc: dict[str, Any]) -> None:
    del _trigger(doc)["template"]["name"]


def _break_empty_trigger_name(doc: dict[str, Any]) -> None:
    _trigger(doc)["template"]["name"] = ""


def _break_duplicate_trigger(doc: dict[str, Any]) -> None:
    doc["spec"]["triggers"].append(json.loads(json.dumps(_trigger(doc))))


def _break_no_triggers(doc: dict[str, Any]) -> None:
    doc["spec"]["triggers"] = []


def _break_dependency_event_name(doc: dict[str, Any]) -> None:
    del doc["spec"]["dependencies"][0]["eventName"]


def _break_dependency_source_name(doc: dict[str, Any]) -> None:
    doc["spec"]["dependencies"][0]["eventSourceName"] = ""


def _break_duplicate_dependency(doc: dict[str, Any]) -> None:
    doc["spec"]["dependencies"].append(dict(doc["spec"]["dependencies"][0]))


def _break_operation(doc: dict[str, Any]) -> None:
    _trigger(doc)["template"]["argoWorkflow"]["operation"] = "create"


def _break_parameter_dependency(doc: dict[str, Any]) -> None:
    del _trigger(doc)["template"]["argoWorkflow"]["parameters"][0]["src"]["dependencyName"]


def _break_unknown_trigger_field(doc: dict[str, Any]) -> None:
    _trigger(doc)["template"]["argoWorkflow"]["sources"] = {}


def _break_dlq(doc: dict[str, Any]) -> None:
    _trigger(doc)["dlqTrigger"] = {"atLeastOnce": True, "template": {"name": "dlq", "log": {}}}


def _break_sensor_name(doc: dict[str, Any]) -> None:
    doc["metadata"]["name"] = "-round-trigger"


def _break_sensor_kind(doc: dict[str, Any]) -> None:
    doc["kind"] = "Sensors"


SENSOR_BREAKS = [
    (_break_trigger_name, "spec.triggers[0].template.name", "required"),
    (_break_empty_trigger_name, "spec.triggers[0].template.name", "trigger must define a name"),
    (_break_duplicate_trigger, "spec.triggers[1].template.name", "duplicate trigger name"),
    (_break_no_triggers, "spec.triggers", "no triggers found"),
    (_break_dependency_event_name, "spec.dependencies[0].eventName", "required"),
    (_break_dependency_source_name, "spec.dependencies[0].eventSourceName", "eventSourceName"),
    (_break_duplicate_dependency, "spec.dependencies[1].name", "duplicate dependency name"),
    (_break_operation, "spec.triggers[0].template.argoWorkflow.operation", "unknown operation type 'create'"),
    (
        _break_parameter_dependency,
        "spec.triggers[0].template.argoWorkflow.parameters[0].src.dependencyName",
        "required",
    ),
    (_break_unknown_trigger_field, "spec.triggers[0].template.argoWorkflow.sources", "did you mean 'source'"),
    (_break_dlq, "spec.triggers[0].atLeastOnce", "trigger.atLeastOnce must be set to true"),
    (_break_sensor_name, "metadata.name", "DNS-1123"),
    (_break_sensor_kind, "kind", "unsupported kind 'Sensors'"),
]


def _assert_named(problems: list[str], path: str, words: str) -> None:
    assert any(p.startswith(f"{path}: ") and words in p for p in problems), (
        f"no problem at {path} mentioning {words!r} among:\n" + "\n".join(problems)
    )


@pytest.mark.parametrize(
    ("breaker", "path", "words"),
    EVENT_SOURCE_BREAKS,
    ids=[f"{b.__name__}-{p}" for b, p, _ in EVENT_SOURCE_BREAKS],
)
def test_broken_event_source_fails(breaker: Callable[[dict[str, Any]], None], path: str, words: str) -> None:
    doc = minio_event_source()
    breaker(doc)
    _assert_named(check_events_document(doc), path, words)


@pytest.mark.parametrize(
    ("breaker", "path", "words"), SENSOR_BREAKS, ids=[f"{b.__name__}-{p}" for b, p, _ in SENSOR_BREAKS]
)
def test_broken_sensor_fails(breaker: Callable[[dict[str, Any]], None], path: str, words: str) -> None:
    doc = workflow_sensor()
    breaker(doc)
    _assert_named(check_events_document(doc), path, words)


def test_a_missing_field_is_reported_once() -> None:
    doc = workflow_sensor()
    del doc["spec"]["dependencies"][0]["eventName"]
    assert [p for p in check_events_document(doc) if p.startswith("spec.dependencies[0].eventName")] == [
        "spec.dependencies[0].eventName: required field is missing [schema]"
    ]


def test_numbers_are_accepted_where_kubernetes_takes_int_or_string() -> None:
    doc = minio_event_source()
    doc["spec"]["template"] = {"container": {"resources": {"limits": {"cpu": 0.5, "memory": "128Mi"}}}}
    assert check_events_document(doc) == []


def test_a_non_mapping_document_is_reported() -> None:
    assert check_events_document([]) == ["(document): expected a mapping, found array [lint]"]  # type: ignore[arg-type]


def test_validators_are_cached() -> None:
    assert events_validator("Sensor") is events_validator("Sensor")
    with pytest.raises(KeyError):
        events_validator("Workflow")
