"""``edgefed submit`` against a loopback fake Argo server (tests/workflows/cluster/fake_argo.py): auth, retries,
template create-or-update, watching, failures, cancellation, resume, TLS and the CLI."""

from __future__ import annotations

import _thread
import dataclasses
import datetime as dt
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from hera.shared import global_config
from typer.testing import CliRunner

from edgefed.steps.interface import Env
from edgefed.workflows.build import round_workflow, to_document
from edgefed.workflows.cli import submit as submit_cli
from edgefed.workflows.cli.submit import register
from edgefed.workflows.cluster.errors import (
    ArgoAuthError,
    ArgoError,
    ArgoRequestError,
    ArgoUnavailableError,
    WatchCancelledError,
    WatchTimeoutError,
)
from edgefed.workflows.cluster.executor import (
    LABEL_SUBMISSION,
    ArgoExecutor,
    ArgoOptions,
    apply_parameters,
    failure_message,
)
from edgefed.workflows.cluster.submit import submit_task
from edgefed.workflows.cluster.transport import normalize_server
from edgefed.workflows.errors import ExitCode, RoundFailedError
from edgefed.workflows.spec import FederatedTask, parse_task
from tests.helpers import task_doc, write_task
from tests.workflows.cluster.fake_argo import FakeArgo, default_playbook, failed, running, succeeded

pytestmark = [
    pytest.mark.timeout(60),
    # Hera's service serialises requests with pydantic's v1-style .json(); not ours to fix.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

TOKEN = "s3cr3t-token-do-not-print"
NS = "argo"


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Every server, request and timer thread a test starts is gone when it ends."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2
    while (left := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not left, f"threads left running: {left}"


@pytest.fixture
def argo() -> Iterator[FakeArgo]:
    with FakeArgo(token=TOKEN, namespace=NS) as fake:
        yield fake


def executor(argo: FakeArgo, *, token: str | None = TOKEN, **kwargs: Any) -> ArgoExecutor:
    """An executor of the fake server; ``kwargs``: :class:`ArgoOptions` fields, or ``cancel``/``on_phase``."""
    hooks = {k: kwargs.pop(k) for k in ("cancel", "on_phase") if k in kwargs}
    options: dict[str, Any] = {"poll": 0.01, "backoff": 0.01, "timeout": 10}
    options.update(kwargs)
    return ArgoExecutor(argo.url, NS, token=token, options=ArgoOptions(**options), **hooks)


def make_task(rounds: int = 3, **spec: Any) -> FederatedTask:
    return parse_task(task_doc("t1", ("a", "b"), rounds=rounds, **spec))


def round_doc(round_: int = 1) -> dict[str, Any]:
    return to_document(round_workflow(make_task(), round_))


def parameters_of(document: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p.get("value") for p in document["spec"]["arguments"]["parameters"]}


def created_rounds(argo: FakeArgo) -> list[int]:
    return [int(doc["metadata"]["labels"]["edgefed.io/round"]) for doc in argo.created()]


# -- auth -----------------------------------------------------------------------------------
def test_bearer_token_is_sent_and_never_leaks(argo: FakeArgo, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    argo.fail(503, times=1, method="GET")  # a logged retry must not show the token either
    with executor(argo) as ex:
        outcome = ex.execute(round_doc(1), {})
        assert TOKEN not in repr(ex)
    assert outcome.succeeded
    assert argo.requests
    assert {r.headers.get("Authorization") for r in argo.requests} == {f"Bearer {TOKEN}"}
    assert all(TOKEN not in json.dumps(r.body) for r in argo.requests)
    assert "retry 1/3" in caplog.text
    assert TOKEN not in caplog.text


def test_token_already_prefixed_with_bearer_is_sent_as_is(argo: FakeArgo) -> None:
    with executor(argo, token=f"Bearer {TOKEN}") as ex:
        ex.last_succeeded_round("t1")
    assert argo.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_refused_token_raises_auth_error_without_retry_or_token(argo: FakeArgo) -> None:
    wrong = "wrong-token-value-123"
    with executor(argo, token=wrong) as ex, pytest.raises(ArgoAuthError) as info:
        ex.execute(round_doc(1), {})
    message = str(info.value)
    assert "the Argo server refused the token (401)" in message
    assert "ARGO_TOKEN" in message
    assert wrong not in message and TOKEN not in message
    assert len(argo.requests) == 1  # 4xx: never retried


def test_forbidden_names_the_action_and_is_not_retried(argo: FakeArgo) -> None:
    argo.fail(403, times=5, method="POST")
    with executor(argo, adopt=False) as ex, pytest.raises(ArgoAuthError) as info:
        ex.execute(round_doc(1), {})
    assert "(403)" in str(info.value) and "create workflow" in str(info.value)
    assert len(argo.calls("POST")) == 1


# -- retries --------------------------------------------------------------------------------
def test_503_twice_then_success_is_retried_with_backoff(
    argo: FakeArgo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    argo.fail(503, times=2, method="POST", path=r"/workflows/")
    with executor(argo, adopt=False, backoff=0.05) as ex:
        outcome = ex.execute(round_doc(1), {})
    assert outcome.succeeded
    assert len(argo.calls("POST")) == 3
    assert len(argo.workflows) == 1
    waits = [r.getMessage().rpartition(" in ")[2] for r in caplog.records if "retry" in r.getMessage()]
    assert waits == ["0.05s", "0.10s"]  # backoff 0.05 s, then 0.1 s
    # before each retry of a create, the submission label is looked up (the 503 may have lied)
    lookups = [
        r
        for r in argo.calls("GET", r"/workflows/argo$")
        if LABEL_SUBMISSION in r.param("listOptions.labelSelector")
    ]
    assert len(lookups) == 2


def test_5xx_beyond_retries_gives_up(argo: FakeArgo) -> None:
    argo.fail(500, times=10, method="GET")
    with executor(argo, retries=2) as ex, pytest.raises(ArgoUnavailableError, match="after 3 attempt"):
        ex.last_succeeded_round("t1")
    assert len(argo.requests) == 3


def test_other_4xx_is_not_retried(argo: FakeArgo) -> None:
    argo.fail(400, times=5, method="POST")
    with executor(argo, adopt=False) as ex, pytest.raises(ArgoRequestError) as info:
        ex.execute(round_doc(1), {})
    assert info.value.status == 400
    assert len(argo.calls("POST")) == 1


def test_lost_create_response_does_not_create_twice(argo: FakeArgo) -> None:
    argo.fail(503, method="POST", after=True)  # the workflow is created, the response is lost
    argo.fail(0, method="GET", path=r"/workflows/argo/")  # and a poll's connection drops
    with executor(argo, adopt=False) as ex:
        outcome = ex.execute(round_doc(1), {})
    assert outcome.succeeded
    assert len(argo.calls("POST")) == 1
    assert list(argo.workflows) == [outcome.workflow]


def test_unreachable_server_is_retried_then_reported() -> None:
    with FakeArgo() as fake:
        url = fake.url
    ex = ArgoExecutor(url, NS, token=TOKEN, options=ArgoOptions(retries=1, backoff=0.01))
    with ex, pytest.raises(ArgoUnavailableError, match="cannot reach the Argo server") as info:
        ex.last_succeeded_round("t1")
    assert TOKEN not in str(info.value)


# -- workflow templates ---------------------------------------------------------------------
def template_doc(image: str = "edgefed:1") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "edgefed-round"},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": image}}]},
    }


def test_ensure_template_creates_then_updates_with_resource_version(argo: FakeArgo) -> None:
    with executor(argo) as ex:
        created = ex.ensure_template(template_doc("edgefed:1"))
        version = created["metadata"]["resourceVersion"]
        updated = ex.ensure_template(template_doc("edgefed:2"))
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


def test_ensure_template_rereads_when_modified_between_get_and_update(argo: FakeArgo) -> None:
    with executor(argo) as ex:
        ex.ensure_template(template_doc("edgefed:1"))
        argo.fail(409, method="PUT")  # someone else updated it in between
        ex.ensure_template(template_doc("edgefed:2"))
    assert len(argo.calls("GET", "workflow-templates")) == 2
    assert len(argo.calls("PUT")) == 2
    assert argo.templates["edgefed-round"]["spec"]["templates"][0]["container"]["image"] == "edgefed:2"


def test_ensure_template_needs_a_name(argo: FakeArgo) -> None:
    doc = template_doc()
    doc["metadata"] = {"generateName": "x-"}
    with executor(argo) as ex, pytest.raises(ArgoError, match=r"metadata\.name"):
        ex.ensure_template(doc)
    assert not argo.requests


# -- executing rounds -----------------------------------------------------------------------
def test_execute_sets_parameters_and_returns_status_outputs(argo: FakeArgo) -> None:
    argo.playbook = lambda doc: succeeded(
        {"accuracy": "0.91", "loss": "0.2", "contributors": "2", "missing-edges": "[]"},
        pending=2,
        running_=3,
        train_seconds={"a": 1.5, "b": 2.5},
    )
    phases: list[str] = []
    with executor(argo, on_phase=lambda name, phase: phases.append(phase)) as ex:
        outcome = ex.execute(round_doc(2), {"store": "http://minio.edgefed:9000"})
    assert outcome.succeeded and outcome.message == ""
    assert outcome.workflow.startswith("t1-r00002-")
    assert dict(outcome.outputs) == {
        "accuracy": "0.91",
        "loss": "0.2",
        "contributors": "2",
        "missing-edges": "[]",
    }
    assert dict(outcome.train_seconds) == {"a": 1.5, "b": 2.5}
    assert outcome.seconds == 5.0  # status.startedAt → finishedAt
    assert phases == ["Submitted", "Pending", "Running", "Succeeded"]
    assert argo.gets(outcome.workflow) == 6  # 2 Pending + 3 Running + Succeeded
    (doc,) = argo.created()
    assert "name" not in doc["metadata"] and doc["metadata"]["generateName"] == "t1-r00002-"
    params = parameters_of(doc)
    assert params["round"] == "2" and params["store"] == "http://minio.edgefed:9000"


def test_apply_parameters_overrides_and_appends_without_touching_the_input() -> None:
    doc = round_doc(1)
    out = apply_parameters(doc, {"round": "7", "extra": "x"})
    assert parameters_of(out)["round"] == "7" and parameters_of(out)["extra"] == "x"
    assert parameters_of(doc)["round"] == "1" and "extra" not in parameters_of(doc)


def test_failed_workflow_reports_the_failed_node(argo: FakeArgo) -> None:
    argo.playbook = lambda doc: failed("aggregate", "quorum not met: 0 of 2 edges contributed (quorum 1)")
    with executor(argo) as ex:
        outcome = ex.execute(round_doc(1), {})
    assert not outcome.succeeded
    assert outcome.message == (
        "child 'aggregate' failed; failed: aggregate: quorum not met: 0 of 2 edges contributed (quorum 1)"
    )


def test_watch_times_out_and_names_the_workflow(argo: FakeArgo) -> None:
    argo.playbook = lambda doc: running()
    with executor(argo, timeout=0.3, poll=0.05) as ex, pytest.raises(WatchTimeoutError) as info:
        ex.execute(round_doc(1), {})
    name = next(iter(argo.workflows))
    assert info.value.workflow == name and "keeps running on the cluster" in str(info.value)
    assert 4 <= argo.gets(name) <= 8  # bounded: 0.05, 0.075, 0.11, ... until 0.3 s


def test_cancel_event_stops_the_watch_promptly_and_a_rerun_adopts_the_workflow(argo: FakeArgo) -> None:
    argo.playbook = lambda doc: running()
    errors: list[BaseException] = []
    # Polls 30 s apart: a watch that ends within the join's timeout was cut short by the cancel.
    ex = executor(argo, poll=30, max_poll=30)

    def work() -> None:
        try:
            ex.execute(round_doc(1), {})
        except BaseException as err:
            errors.append(err)

    worker = threading.Thread(target=work)
    worker.start()
    deadline = time.monotonic() + 5
    while not argo.workflows or argo.gets(next(iter(argo.workflows))) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    ex.cancel.set()
    worker.join(timeout=5)
    assert not worker.is_alive()
    (err,) = errors
    name = next(iter(argo.workflows))
    assert isinstance(err, WatchCancelledError) and err.workflow == name
    assert err.exit_code == ExitCode.INTERRUPTED
    polls = argo.gets(name)
    time.sleep(0.15)
    assert argo.gets(name) == polls  # nothing polls any more
    ex.close()

    # the workflow went on running; a new submit watches it instead of creating round 1 again
    argo.workflows[name].statuses = succeeded({"accuracy": "0.7"}, pending=0, running_=1)
    argo.workflows[name].index = 0
    with executor(argo) as again:
        outcome = again.execute(round_doc(1), {})
    assert outcome.workflow == name and outcome.succeeded
    assert len(argo.created()) == 1


def test_ctrl_c_stops_the_watch(argo: FakeArgo) -> None:
    argo.playbook = lambda doc: running()
    timer = threading.Timer(0.3, _thread.interrupt_main)
    with executor(argo, poll=0.02, max_poll=0.02) as ex:
        timer.start()
        try:
            with pytest.raises(WatchCancelledError) as info:
                ex.execute(round_doc(1), {})
        finally:
            timer.cancel()
            timer.join()
    assert info.value.workflow == next(iter(argo.workflows))


# -- the driver: whole tasks, failures and resume -------------------------------------------
def test_full_task_then_a_rerun_resumes_after_the_last_succeeded_round(argo: FakeArgo) -> None:
    reports = []
    with executor(argo) as ex:
        result = submit_task(make_task(3), ex, on_round=reports.append)
    assert created_rounds(argo) == [0, 1, 2, 3]
    assert [r.accuracy for r in result.rounds] == [0.6, 0.7, 0.8]
    assert [r.round for r in reports] == [1, 2, 3] and reports[0].contributors == 2
    assert result.stop_reason == "all 3 rounds done" and result.resumed_from == 0
    for round_, doc in zip([0, 1, 2, 3], argo.created(), strict=True):
        assert parameters_of(doc)["round"] == str(round_)
        assert doc["metadata"]["labels"]["edgefed.io/task"] == "t1"

    with executor(argo) as ex:
        assert ex.last_succeeded_round("t1") == 3
        again = submit_task(make_task(3), ex)
    assert created_rounds(argo) == [0, 1, 2, 3]  # nothing submitted again
    assert again.resumed_from == 3 and again.rounds == []

    with executor(argo) as ex:  # more rounds: only the missing ones are submitted
        more = submit_task(make_task(5), ex)
    assert created_rounds(argo) == [0, 1, 2, 3, 4, 5]
    assert more.resumed_from == 3 and [r.round for r in more.rounds] == [4, 5]


def test_a_failed_round_stops_the_task_and_the_rerun_redoes_only_that_round(argo: FakeArgo) -> None:
    def playbook(doc: dict[str, Any]) -> list[dict[str, Any]]:
        if doc["metadata"]["labels"]["edgefed.io/round"] == "2":
            return failed("aggregate", "quorum not met: 0 of 2 edges contributed (quorum 1)")
        return default_playbook(doc)

    argo.playbook = playbook
    with executor(argo) as ex, pytest.raises(RoundFailedError) as info:
        submit_task(make_task(3), ex)
    assert info.value.round == 2
    assert "quorum not met: 0 of 2 edges contributed" in str(info.value)
    assert info.value.workflow.startswith("t1-r00002-")
    assert created_rounds(argo) == [0, 1, 2]  # no round 3

    argo.playbook = default_playbook
    with executor(argo) as ex:
        result = submit_task(make_task(3), ex)
    assert created_rounds(argo) == [0, 1, 2, 2, 3]
    assert result.resumed_from == 1 and [r.round for r in result.rounds] == [2, 3]


def test_resume_rebuilds_stop_state_from_argo_outputs(argo: FakeArgo) -> None:
    task = make_task(6, stop={"targetAccuracy": 0.75})
    with executor(argo) as ex:
        first = submit_task(task, ex)
    assert first.last_round == 3 and "target accuracy 0.75 reached" in first.stop_reason
    with executor(argo) as ex:
        second = submit_task(task, ex)  # accuracies come back from the Succeeded workflows' outputs
    assert second.rounds == [] and "target accuracy 0.75 reached (0.8000)" in second.stop_reason
    assert created_rounds(argo) == [0, 1, 2, 3]


def test_history_pages_through_long_lists(argo: FakeArgo) -> None:
    for i in range(205):
        argo.add_workflow(
            f"t1-r{i:05d}-x",
            {"edgefed.io/task": "t1", "edgefed.io/round": str(i)},
            succeeded({"accuracy": "0.5"}, pending=0, running_=0)[-1:],
        )
    argo.add_workflow(
        "other-r00900-x", {"edgefed.io/task": "other", "edgefed.io/round": "900"}, [{"phase": "Succeeded"}]
    )
    argo.add_workflow(
        "t1-r00999-x", {"edgefed.io/task": "t1", "edgefed.io/round": "999"}, [{"phase": "Failed"}]
    )
    with executor(argo) as ex:
        assert ex.last_succeeded_round("t1") == 204
    lists = argo.calls("GET", r"/workflows/argo$")
    assert len(lists) == 2 and lists[1].param("listOptions.continue") == "200"


def test_submitted_documents_carry_no_credential_value(argo: FakeArgo) -> None:
    with executor(argo) as ex:
        submit_task(make_task(2), ex, parameters={"store": "http://minio.edgefed:9000"})
    bodies = [json.dumps(r.body) for r in argo.requests if r.body is not None]
    assert bodies and all(TOKEN not in body for body in bodies)
    created = argo.created()
    rounds = [d for d in created if "workflowTemplateRef" in d["spec"]]
    assert [d["spec"]["workflowTemplateRef"]["name"] for d in rounds] == ["t1-round", "t1-round"]
    assert [parameters_of(d)["round"] for d in rounds] == ["1", "2"]
    templates = [r.body["template"] for r in argo.calls("POST", r"/workflow-templates/argo$")]
    assert templates and templates[0]["metadata"]["name"] == "t1-round"
    for doc in created:
        assert parameters_of(doc)["store"] == "http://minio.edgefed:9000"
    for doc in created + templates:
        for template in doc["spec"].get("templates", []):
            for env in (template.get("container") or {}).get("env", []):
                if env["name"] in (Env.ACCESS_KEY, Env.SECRET_KEY):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"]


# -- TLS ------------------------------------------------------------------------------------
def test_tls_verification_is_on_by_default(argo: FakeArgo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(global_config, "verify_ssl", False)  # an explicit setting wins over Hera's global
    with executor(argo) as ex:
        assert ex.verify_ssl is True and ex.service.verify_ssl is True
    with executor(argo, verify_ssl=False) as ex:
        assert ex.verify_ssl is False


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
    with FakeArgo(token=TOKEN, tls=self_signed) as fake:
        assert fake.url.startswith("https://")
        with ArgoExecutor(fake.url, NS, token=TOKEN, options=ArgoOptions(retries=3, backoff=0.01)) as ex:
            with pytest.raises(ArgoUnavailableError, match="TLS verification") as info:
                ex.last_succeeded_round("t1")
            assert TOKEN not in str(info.value)
        assert not fake.requests  # refused at the handshake, not retried, token never sent
        with ArgoExecutor(fake.url, NS, token=TOKEN, options=ArgoOptions(verify_ssl=False)) as ex:
            assert ex.last_succeeded_round("t1") is None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", self_signed[0])  # a private CA: verification stays on
        with ArgoExecutor(fake.url, NS, token=TOKEN) as ex:
            assert ex.last_succeeded_round("t1") is None
        assert len(fake.requests) == 2


def test_normalize_server_keeps_a_path_prefix() -> None:
    assert normalize_server("argo.example.com:2746") == "https://argo.example.com:2746/"
    assert normalize_server("https://example.com/argo") == "https://example.com/argo/"
    with pytest.raises(ValueError):
        normalize_server("ftp://example.com")


# -- CLI ------------------------------------------------------------------------------------
@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """edgefed."""

    register(app)
    return app


def test_cli_submits_with_the_token_from_the_environment(
    argo: FakeArgo, cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    class Spy(ArgoExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            seen.update(kwargs)
            super().__init__(
                *args, **{**kwargs, "options": dataclasses.replace(kwargs["options"], poll=0.01)}
            )

    monkeypatch.setattr(submit_cli, "ArgoExecutor", Spy)
    task_file = write_task(tmp_path / "task.yaml", task_doc("t1", ("a", "b"), rounds=2))
    args = ["submit", str(task_file), "--argo-server", argo.url, "--namespace", NS]
    result = CliRunner().invoke(cli, args, env={"ARGO_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert "round   2  accuracy 0.7000" in result.output
    assert "stopped after round 2: all 2 rounds done" in result.output
    assert TOKEN not in result.output
    assert seen["options"].verify_ssl is True
    assert created_rounds(argo) == [0, 1, 2]

    result = CliRunner().invoke(cli, args, env={"ARGO_TOKEN": "nope"})
    assert result.exit_code == ExitCode.FAILED
    assert "refused the token (401)" in result.output and "nope" not in result.output

    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    result = CliRunner().invoke(
        cli, [*args, "--token-file", str(token_file), "--insecure-skip-verify"], env={"ARGO_TOKEN": ""}
    )
    assert result.exit_code == 0, result.output
    assert seen["options"].verify_ssl is False
    assert "resuming after succeeded round 2" in result.output


def test_cli_ctrl_c_says_the_workflow_keeps_running_and_exits_130(
    argo: FakeArgo, cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argo.playbook = lambda doc: running()
    task_file = write_task(tmp_path / "task.yaml", task_doc("t1", ("a", "b"), rounds=2))
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        result = CliRunner().invoke(
            cli,
            ["submit", str(task_file), "--argo-server", argo.url, "-n", NS, "--poll", "0.1"],
            env={"ARGO_TOKEN": TOKEN},
        )
    finally:
        timer.cancel()
        timer.join()
    name = next(iter(argo.workflows))
    assert result.exit_code == ExitCode.INTERRUPTED, result.output
    assert f"workflow {name} keeps running on the cluster" in " ".join(result.output.split())


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
    assert failure_message(workflow) == (
        "workflow Failed; failed: agg: quorum not met; train (edge b): no data"
    )
