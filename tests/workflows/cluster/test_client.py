"""The Argo client against the fake server: auth, retries, idempotent creates, templates, paging, TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hera.shared import global_config

from edgefed.workflows.cluster.client import (
    LABEL_SUBMISSION,
    ArgoClient,
    ArgoOptions,
    apply_parameters,
    failure_message,
)
from edgefed.workflows.cluster.errors import (
    ArgoAuthError,
    ArgoConflictError,
    ArgoError,
    ArgoRejectedError,
    ArgoRequestError,
    ArgoUnavailableError,
)
from edgefed.workflows.cluster.transport import normalize_server
from edgefed.workflows.errors import ExitCode
from tests.workflows.cluster.fake_argo import FakeArgo
from tests.workflows.cluster.support import NS, TOKEN, parameters_of

pytestmark = [
    pytest.mark.timeout(60),
    # Hera's service serialises requests with pydantic's v1-style .json(); not ours to fix.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

Client = Callable[..., ArgoClient]


def workflow_doc(name: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": {"edgefed.io/task": "t1", **labels}}
    meta.update({"name": name} if name else {"generateName": "t1-"})
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": meta,
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "x"}}]},
    }


# -- auth -----------------------------------------------------------------------------------
def test_bearer_token_is_sent_and_never_leaks(
    argo: FakeArgo, client_of: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    argo.fail(503, times=1, method="GET")  # a logged retry must not show the token either
    client = client_of(argo)
    client.create_workflow(workflow_doc())
    assert list(client.list_workflows("edgefed.io/task=t1"))
    assert TOKEN not in repr(client)
    assert {r.headers.get("Authorization") for r in argo.requests} == {f"Bearer {TOKEN}"}
    assert all(TOKEN not in json.dumps(r.body) for r in argo.requests)
    assert "retry 1/3" in caplog.text
    assert TOKEN not in caplog.text


def test_token_already_prefixed_with_bearer_is_sent_as_is(argo: FakeArgo, client_of: Client) -> None:
    list(client_of(argo, token=f"Bearer {TOKEN}").list_workflows("edgefed.io/task=t1"))
    assert argo.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_refused_token_raises_auth_error_without_retry_or_token(argo: FakeArgo, client_of: Client) -> None:
    wrong = "wrong-token-value-123"
    with pytest.raises(ArgoAuthError) as info:
        client_of(argo, token=wrong).create_workflow(workflow_doc())
    message = str(info.value)
    assert "the Argo server refused the token (401)" in message
    assert "ARGO_TOKEN" in message
    assert wrong not in message and TOKEN not in message
    assert len(argo.requests) == 1  # 4xx: never retried


def test_forbidden_names_the_action_and_is_not_retried(argo: FakeArgo, client_of: Client) -> None:
    argo.fail(403, times=5, method="POST")
    with pytest.raises(ArgoAuthError) as info:
        client_of(argo).create_workflow(workflow_doc())
    assert "(403)" in str(info.value) and "create workflow" in str(info.value)
    assert len(argo.calls("POST")) == 1


# -- retries and idempotent creates ---------------------------------------------------------
def test_503_twice_then_success_is_retried_with_backoff(
    argo: FakeArgo, client_of: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    argo.fail(503, times=2, method="POST", path=r"/workflows/")
    created = client_of(argo, backoff=0.05).create_workflow(workflow_doc())
    assert len(argo.calls("POST")) == 3
    assert list(argo.workflows) == [created.metadata.name]
    waits = [r.getMessage().rpartition(" in ")[2] for r in caplog.records if "retry" in r.getMessage()]
    assert waits == ["0.05s", "0.10s"]  # backoff 0.05 s, then 0.1 s
    # before each retry of a generateName create, the submission label is looked up (the 503 may have lied)
    lookups = [
        r
        for r in argo.calls("GET", r"/workflows/argo$")
        if LABEL_SUBMISSION in (r.param("listOptions.labelSelector") or "")
    ]
    assert len(lookups) == 2


def test_5xx_beyond_retries_gives_up(argo: FakeArgo, client_of: Client) -> None:
    argo.fail(500, times=10, method="GET")
    with pytest.raises(ArgoUnavailableError, match="after 3 attempt"):
        list(client_of(argo, retries=2).list_workflows("edgefed.io/task=t1"))
    assert len(argo.requests) == 3


def test_other_4xx_is_not_retried(argo: FakeArgo, client_of: Client) -> None:
    argo.fail(400, times=5, method="POST")
    with pytest.raises(ArgoRejectedError) as info:
        client_of(argo).create_workflow(workflow_doc())
    assert info.value.status == 400 and info.value.exit_code == ExitCode.INVALID
    assert len(argo.calls("POST")) == 1


def test_lost_create_response_does_not_create_twice(argo: FakeArgo, client_of: Client) -> None:
    argo.fail(503, method="POST", after=True)  # the workflow is created, the response is lost
    created = client_of(argo).create_workflow(workflow_doc())
    assert len(argo.calls("POST")) == 1
    assert list(argo.workflows) == [created.metadata.name]


def test_lost_create_response_of_a_named_workflow_is_found_by_name_though_the_list_lags(
    argo: FakeArgo, client_of: Client
) -> None:
    argo.list_lag = 5  # a label lookup would not see it: the GET by name does
    argo.fail(503, method="POST", after=True)
    created = client_of(argo).create_workflow(workflow_doc("t1-run-1"))
    assert created.metadata.name == "t1-run-1"
    assert len(argo.calls("POST")) == 1 and list(argo.workflows) == ["t1-run-1"]
    assert argo.calls("GET", r"/workflows/argo/t1-run-1$")


def test_a_named_workflow_that_exists_already_is_a_conflict(argo: FakeArgo, client_of: Client) -> None:
    client = client_of(argo)
    client.create_workflow(workflow_doc("t1-run-1"))
    with pytest.raises(ArgoConflictError, match="already exists"):
        client.create_workflow(workflow_doc("t1-run-1"))


def test_unreachable_server_is_retried_then_reported() -> None:
    with FakeArgo() as fake:
        url = fake.url
    client = ArgoClient(url, NS, token=TOKEN, options=ArgoOptions(retries=1, backoff=0.01))
    with client, pytest.raises(ArgoUnavailableError, match="cannot reach the Argo server") as info:
        list(client.list_workflows("edgefed.io/task=t1"))
    assert TOKEN not in str(info.value)


def test_get_and_delete_of_a_missing_workflow_say_so(argo: FakeArgo, client_of: Client) -> None:
    client = client_of(argo)
    assert client.get_workflow("nope") is None
    assert client.delete_workflow("nope") is False
    client.create_workflow(workflow_doc("t1-run-1"))
    assert client.delete_workflow("t1-run-1") is True and not argo.workflows


def test_list_pages_through_long_lists(argo: FakeArgo, client_of: Client) -> None:
    for i in range(205):
        argo.add_workflow(f"t1-r{i:05d}-a1", {"edgefed.io/task": "t1"}, [{"phase": "Succeeded"}])
    argo.add_workflow("other-r00001-a1", {"edgefed.io/task": "other"}, [{"phase": "Succeeded"}])
    names = [w.metadata.name for w in client_of(argo).list_workflows("edgefed.io/task=t1")]
    assert len(names) == 205
    lists = argo.calls("GET", r"/workflows/argo$")
    assert len(lists) == 2 and lists[1].param("listOptions.continue") == "200"
    assert lists[0].param("fields") == "-items.status.nodes"


# -- workflow templates ---------------------------------------------------------------------
def template_doc(image: str = "edgefed:1") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "edgefed-round"},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": image}}]},
    }


def test_ensure_template_creates_then_updates_with_resource_version(
    argo: FakeArgo, client_of: Client
) -> None:
    client = client_of(argo)
    created = client.ensure_template(template_doc("edgefed:1"))
    version = created["metadata"]["resourceVersion"]
    updated = client.ensure_template(template_doc("edgefed:2"))
    methods = [(r.method, r.path) for r in argo.requests]
    assert methods == [
        ("POST", "/api/v1/workflow-templates/argo"),
        ("POST", "/api/v1/workflow-templates/argo"),  # 409 AlreadyExists
        ("GET", "/api/v1/workflow-templates/argo/edgefed-round"),
        ("PUT", "/api/v1/workflow-templates/argo/edgefed-round"),
    ]
    put = argo.requests[-1].body
    assert put["name"] == "edgefed-round"
    assert put["template"]["metadata"]["resourceVersion"] == version
    assert updated["spec"]["templates"][0]["container"]["image"] == "edgefed:2"
    assert argo.templates["edgefed-round"]["spec"]["templates"][0]["container"]["image"] == "edgefed:2"


def test_ensure_template_rereads_when_modified_between_get_and_update(
    argo: FakeArgo, client_of: Client
) -> None:
    client = client_of(argo)
    client.ensure_template(template_doc("edgefed:1"))
    argo.fail(409, method="PUT")  # someone else updated it in between
    client.ensure_template(template_doc("edgefed:2"))
    assert len(argo.calls("GET", "workflow-templates")) == 2
    assert len(argo.calls("PUT")) == 2
    assert argo.templates["edgefed-round"]["spec"]["templates"][0]["container"]["image"] == "edgefed:2"


def test_ensure_template_needs_a_name(argo: FakeArgo, client_of: Client) -> None:
    doc = template_doc()
    doc["metadata"] = {"generateName": "x-"}
    with pytest.raises(ArgoError, match=r"metadata\.name; found generateName 'x-'"):
        client_of(argo).ensure_template(doc)
    assert not argo.requests


# -- helpers --------------------------------------------------------------------------------
def test_apply_parameters_overrides_and_appends_without_touching_the_input() -> None:
    doc = {"spec": {"arguments": {"parameters": [{"name": "round", "value": "1"}]}}}
    out = apply_parameters(doc, {"round": "7", "extra": "x"})
    assert parameters_of(out) == {"round": "7", "extra": "x"}
    assert parameters_of(doc) == {"round": "1"}


def test_failure_message_lists_failed_leaf_nodes_latest_first() -> None:
    from hera.workflows.models import Workflow

    def node(
        node_id: str, template: str, finished: int, children: list[str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        return {
            "id": node_id,
            "name": f"wf.{node_id}",
            "displayName": node_id,
            "templateName": template,
            "type": extra.pop("type", "Pod"),
            "phase": "Failed",
            "finishedAt": f"2024-05-01T12:00:{finished:02d}Z",
            "children": children,
            **extra,
        }

    edge = {"inputs": {"parameters": [{"name": "edge", "value": "b"}]}}
    nodes = {
        "dag": node("dag", "round", 9, ["retry", "agg"], type="DAG", message="child failed"),
        "retry": node("retry", "train", 3, ["try0", "try1"], type="Retry", message="no data", **edge),
        "try0": node("try0", "train", 2, message="no data", **edge),
        "try1": node("try1", "train", 3, message="no data", **edge),
        "agg": node("agg", "aggregate", 8, message="quorum not met"),
    }
    workflow = Workflow.model_validate(
        {"metadata": {"name": "wf"}, "spec": {}, "status": {"phase": "Failed", "nodes": nodes}}
    )
    assert (
        failure_message(workflow) == "workflow Failed; failed: agg: quorum not met; train (edge b): no data"
    )


# -- TLS ------------------------------------------------------------------------------------
def test_tls_verification_is_on_by_default(
    argo: FakeArgo, client_of: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(global_config, "verify_ssl", False)  # an explicit setting wins over Hera's global
    client = client_of(argo)
    assert client.verify_ssl is True and client.service.verify_ssl is True
    assert client_of(argo, verify_ssl=False).verify_ssl is False


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[str, str]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-argo")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp_path / "tls.crt", tmp_path / "tls.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(certfile), str(keyfile)


def test_tls_untrusted_certificate_is_refused_unless_verification_is_off(
    self_signed: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    selector = "edgefed.io/task=t1"
    with FakeArgo(token=TOKEN, tls=self_signed) as fake:
        assert fake.url.startswith("https://")
        with ArgoClient(fake.url, NS, token=TOKEN, options=ArgoOptions(retries=3, backoff=0.01)) as client:
            with pytest.raises(ArgoUnavailableError, match="TLS verification") as info:
                list(client.list_workflows(selector))
            assert TOKEN not in str(info.value)
        assert not fake.requests  # refused at the handshake, not retried, token never sent
        with ArgoClient(fake.url, NS, token=TOKEN, options=ArgoOptions(verify_ssl=False)) as client:
            assert list(client.list_workflows(selector)) == []
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", self_signed[0])  # a private CA: verification stays on
        with ArgoClient(fake.url, NS, token=TOKEN) as client:
            assert list(client.list_workflows(selector)) == []
        assert len(fake.requests) == 2


def test_normalize_server_keeps_a_path_prefix() -> None:
    assert normalize_server("argo.example.com:2746") == "https://argo.example.com:2746/"
    assert normalize_server("https://example.com/argo") == "https://example.com/argo/"
    with pytest.raises(ValueError):
        normalize_server("ftp://example.com")


def test_request_errors_keep_the_status(argo: FakeArgo, client_of: Client) -> None:
    argo.fail(422, method="GET")
    with pytest.raises(ArgoRequestError) as info:
        list(client_of(argo).list_workflows("x=y"))
    assert info.value.status == 422
