"""The fake Argo server behaves as Argo v4's server and controller where edgefed depends on it:
validation on create, TTL deletion with Kubernetes' owner cascade, a list that lags a create."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from edgefed.workflows.cluster.client import ArgoClient
from edgefed.workflows.cluster.errors import ArgoRejectedError
from tests.workflows.cluster.fake_argo import FakeArgo, FakeClock
from tests.workflows.cluster.fake_playbooks import succeeded

pytestmark = [pytest.mark.timeout(60), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

Client = Callable[..., ArgoClient]
DAY = 24 * 3600


def template(
    name: str = "t1-task", *, ttl: dict[str, int] | None = None, **values: str | None
) -> dict[str, Any]:
    params = [{"name": k, **({"value": v} if v is not None else {})} for k, v in values.items()]
    spec: dict[str, Any] = {
        "entrypoint": "main",
        "arguments": {"parameters": params},
        "templates": [{"name": "main", "container": {"image": "x"}}],
    }
    if ttl:
        spec["ttlStrategy"] = ttl
    return {"metadata": {"name": name}, "spec": spec}


def from_template(name: str = "t1-task", **values: str) -> dict[str, Any]:
    return {
        "metadata": {"generateName": "t1-", "labels": {"edgefed.io/task": "t1"}},
        "spec": {
            "workflowTemplateRef": {"name": name},
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in values.items()]},
        },
    }


def test_a_missing_workflow_template_is_refused_as_the_server_does(argo: FakeArgo, client_of: Client) -> None:
    with pytest.raises(ArgoRejectedError) as info:
        client_of(argo).create_workflow(from_template("t1-task"))
    # the server's template informer answers NotFound, which ToStatusError keeps: 404, not 400
    assert info.value.status == 404
    assert str(info.value) == (
        'the Argo server rejected workflow t1- (404): workflowtemplate.argoproj.io "t1-task" not found'
    )
    assert not argo.workflows


def test_a_required_parameter_without_a_value_is_refused_with_argos_message(
    argo: FakeArgo, client_of: Client
) -> None:
    client = client_of(argo)
    client.ensure_template(template(task="t1", store=None))
    with pytest.raises(ArgoRejectedError) as info:
        client.create_workflow(from_template())
    assert info.value.status == 400
    assert info.value.detail == "spec.arguments.store.value or spec.arguments.store.valueFrom is required"
    created = client.create_workflow(from_template(store="http://minio:9000"))  # supplied: accepted
    assert created.metadata.name in argo.workflows


def test_a_workflow_of_its_own_needs_values_too_and_a_short_name(argo: FakeArgo, client_of: Client) -> None:
    client = client_of(argo)
    doc = {
        "metadata": {"name": "w"},
        "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "p"}]}},
    }
    with pytest.raises(
        ArgoRejectedError, match=r"spec\.arguments\.p\.value or spec\.arguments\.p\.valueFrom"
    ):
        client.create_workflow(doc)
    long = {"metadata": {"name": "w" * 64}, "spec": {"entrypoint": "main"}}
    with pytest.raises(ArgoRejectedError, match="must not be more than 63 characters long"):
        client.create_workflow(long)


def test_ttl_deletes_ended_workflows_per_their_strategy_or_their_templates(argo: FakeArgo) -> None:
    clock = argo.clock
    assert isinstance(clock, FakeClock)
    argo.templates["t1-round"] = template("t1-round", ttl={"secondsAfterSuccess": DAY})
    argo.add_workflow("own", {}, [{"phase": "Failed"}], spec={"ttlStrategy": {"secondsAfterFailure": 60}})
    argo.add_workflow(
        "from-template", {}, [{"phase": "Succeeded"}], spec={"workflowTemplateRef": {"name": "t1-round"}}
    )
    argo.add_workflow("errored", {}, [{"phase": "Error"}], spec={"ttlStrategy": {"secondsAfterFailure": 1}})
    argo.add_workflow(
        "running", {}, [{"phase": "Running"}], spec={"ttlStrategy": {"secondsAfterCompletion": 1}}
    )
    clock.advance(59)
    assert argo.collect() == []
    clock.advance(1)
    assert argo.collect() == ["own"]
    clock.advance(DAY)
    # Error is not Failed (secondsAfterFailure does not apply); a running workflow has not ended
    assert argo.collect() == ["from-template"]
    assert sorted(argo.workflows) == ["errored", "running"]


def test_ttl_counts_from_when_the_workflow_ended_and_scales(argo: FakeArgo, client_of: Client) -> None:
    argo.ttl_scale = 0.5
    ttl = {"ttlStrategy": {"secondsAfterSuccess": 100}}
    argo.add_workflow("w", {}, succeeded({}, pending=0, running_=1), spec=ttl)
    client = client_of(argo)
    assert client.get_workflow("w").status.phase == "Running"
    argo.clock.advance(1000)  # still Running: no TTL yet
    assert argo.collect() == []
    assert client.get_workflow("w").status.phase == "Succeeded"  # it ends now
    argo.clock.advance(49)
    assert argo.collect() == []
    argo.clock.advance(1)
    assert argo.collect() == ["w"]


def test_deleting_an_owner_deletes_what_it_owns_as_kubernetes_gc_does(
    argo: FakeArgo, client_of: Client
) -> None:
    argo.add_workflow("task", {}, [{"phase": "Running"}])
    argo.add_workflow("round-1", {}, [{"phase": "Succeeded"}], owner="task")
    argo.add_workflow("pod-of-round-1", {}, [{"phase": "Succeeded"}], owner="round-1")
    argo.add_workflow("other", {}, [{"phase": "Succeeded"}])
    assert client_of(argo).delete_workflow("task")
    assert list(argo.workflows) == ["other"]
    assert argo.deleted == ["task", "round-1", "pod-of-round-1"]


def test_the_list_lags_a_create_but_a_get_finds_it_at_once(argo: FakeArgo, client_of: Client) -> None:
    argo.list_lag = 2
    client = client_of(argo)
    created = client.create_workflow({"metadata": {"name": "w"}, "spec": {"entrypoint": "main"}})
    assert client.get_workflow("w") is not None and created.metadata.name == "w"
    seen = [[w.metadata.name for w in client.list_workflows("")] for _ in range(3)]
    assert seen == [[], [], ["w"]]
