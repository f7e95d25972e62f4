"""``edgefed submit`` against the fake Argo server in playbook mode: the task Workflow is created once
(or the running one watched), watched round by round; failures, lag, cancellation and the CLI."""

from __future__ import annotations

import _thread
import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from edgefed.steps.interface import Env
from edgefed.workflows import build
from edgefed.workflows.cli.submit import RoundsDisplay, register
from edgefed.workflows.cluster.client import ArgoClient
from edgefed.workflows.cluster.errors import (
    ArgoRejectedError,
    TaskFailedError,
    WatchCancelledError,
    WatchTimeoutError,
    WorkflowGoneError,
)
from edgefed.workflows.cluster.submit import submit_task
from edgefed.workflows.cluster.view import RoundRow, TaskRun
from edgefed.workflows.cluster.watch import Snapshot
from edgefed.workflows.errors import ExitCode
from tests.helpers import task_doc, write_task
from tests.workflows.cluster.fake_argo import FakeArgo
from tests.workflows.cluster.fake_playbooks import running, task_statuses
from tests.workflows.cluster.support import NS, TOKEN, make_task, parameters_of

pytestmark = [
    pytest.mark.timeout(60),
    # Hera's service serialises requests with pydantic's v1-style .json(); not ours to fix.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

Client = Callable[..., ArgoClient]
TASK_LABELS = {"edgefed.io/task": "t1", "edgefed.io/kind": "task"}


def task_creates(argo: FakeArgo) -> list[dict[str, Any]]:
    return [d for d in argo.created() if d["metadata"]["labels"].get("edgefed.io/kind") == "task"]


# -- the task Workflow ----------------------------------------------------------------------
def test_submit_installs_both_templates_creates_the_task_workflow_and_watches_every_round(
    argo: FakeArgo, client_of: Client
) -> None:
    argo.playbook = lambda doc: task_statuses("t1", [1, 2, 3])
    snapshots: list[Snapshot] = []
    submission, final = submit_task(
        make_task(3),
        client_of(argo),
        parameters={"store": "http://minio.edgefed:9000"},
        on_update=snapshots.append,
    )
    assert submission.workflow == "t1-run-1" and submission.created
    assert sorted(argo.templates) == ["t1-round", "t1-task"]
    (doc,) = argo.created()  # one create: the task Workflow; its rounds are the controller's
    assert doc["metadata"]["name"] == "t1-run-1"
    assert doc["spec"]["workflowTemplateRef"] == {"name": "t1-task"}
    assert {k: v for k, v in doc["metadata"]["labels"].items() if k in TASK_LABELS} == TASK_LABELS
    assert parameters_of(doc)["store"] == "http://minio.edgefed:9000"
    # every round showed Running, then Succeeded, read from its child Workflow
    seen = [(r.round, r.phase) for s in snapshots for r in s.rounds if r.round == s.rounds[-1].round]
    for round_ in (1, 2, 3):
        assert (round_, "Running") in seen and (round_, "Succeeded") in seen
    assert final is not None and final.run.phase == "Succeeded"
    assert [(r.round, r.workflow, r.accuracy, r.source) for r in final.rounds] == [
        (1, "t1-r00001-a1", 0.6, "workflow"),
        (2, "t1-r00002-a1", 0.7, "workflow"),
        (3, "t1-r00003-a1", 0.8, "workflow"),
    ]
    assert final.run.outputs["stop-reason"] == "all 3 rounds done"
    assert final.run.outputs["last-round"] == "3" and final.run.title == "t1: done, round 3 of 3"


def test_a_running_task_workflow_is_watched_instead_of_creating_another(
    argo: FakeArgo, client_of: Client
) -> None:
    argo.add_workflow(
        "t1-x7k2p", TASK_LABELS, task_statuses("t1", [4, 5], last=5)
    )  # e.g. `argo submit task.yaml`
    submission, final = submit_task(make_task(5), client_of(argo))
    assert submission.workflow == "t1-x7k2p" and not submission.created
    assert argo.created() == [] and argo.templates == {}  # nothing created, not even templates
    assert final is not None and [r.round for r in final.rounds] == [4, 5]


def test_a_finished_task_workflow_is_not_watched_a_new_one_is_numbered_after_it(
    argo: FakeArgo, client_of: Client
) -> None:
    argo.add_workflow("t1-run-4", TASK_LABELS, task_statuses("t1", [1, 2])[-1:])  # Succeeded
    submission, _ = submit_task(make_task(2), client_of(argo), detach=True)
    assert submission.workflow == "t1-run-5" and submission.created


def test_a_lagging_list_does_not_start_a_parallel_task(argo: FakeArgo, client_of: Client) -> None:
    argo.list_lag = 10
    argo.playbook = lambda doc: running()
    first, _ = submit_task(make_task(3), client_of(argo), detach=True)
    # a second submit right after: the list does not show the first one's workflow yet
    assert not list(client_of(argo).list_workflows("edgefed.io/kind=task"))
    second, _ = submit_task(make_task(3), client_of(argo), detach=True)
    assert (first.workflow, first.created) == ("t1-run-1", True)
    assert (second.workflow, second.created) == ("t1-run-1", False)  # found by name: the template's counter
    assert len(argo.labelled(kind="task")) == 1 and len(task_creates(argo)) == 1


def test_a_lagging_list_and_no_counter_yet_the_api_server_refuses_the_second(
    argo: FakeArgo, client_of: Client
) -> None:
    argo.list_lag = 10
    argo.playbook = lambda doc: running()
    argo.fail(503, times=10, method="PUT")  # the first submit cannot record its run on the template
    first, _ = submit_task(make_task(3), client_of(argo, retries=1), detach=True)
    argo.faults.clear()
    second, _ = submit_task(make_task(3), client_of(argo), detach=True)
    assert (second.workflow, second.created) == (first.workflow, False)
    assert len(argo.labelled(kind="task")) == 1
    assert [d["metadata"]["name"] for d in task_creates(argo)] == ["t1-run-1", "t1-run-1"]  # 409


def test_a_run_number_is_never_used_again_after_its_workflow_is_gone(
    argo: FakeArgo, client_of: Client
) -> None:
    first, _ = submit_task(make_task(2), client_of(argo))
    argo.clock.advance(24 * 3600)  # TTL: the run and its rounds are deleted
    assert first.workflow in argo.collect()
    second, _ = submit_task(make_task(2), client_of(argo), detach=True)
    assert (first.workflow, second.workflow) == ("t1-run-1", "t1-run-2")
    assert argo.templates["t1-task"]["metadata"]["annotations"]["edgefed.io/last-run"] == "2"


def test_a_lagging_list_hiding_a_finished_run_moves_on_to_the_next_name(
    argo: FakeArgo, client_of: Client
) -> None:
    argo.list_lag = 10
    argo.add_workflow("t1-run-1", TASK_LABELS, [{"phase": "Failed"}])
    argo.workflows["t1-run-1"].unlisted = 10
    submission, _ = submit_task(make_task(3), client_of(argo), detach=True)
    assert submission.workflow == "t1-run-2" and submission.created


def test_the_templates_the_server_does_not_see_yet_are_waited_for(argo: FakeArgo, client_of: Client) -> None:
    argo.template_lag = 2  # the server's template cache sees t1-task only at the third create
    submission, _ = submit_task(make_task(2), client_of(argo), detach=True)
    assert submission.created and len(task_creates(argo)) == 3


def test_a_missing_template_is_a_clear_error_naming_it(argo: FakeArgo, client_of: Client) -> None:
    argo.template_lag = 100  # never seen: e.g. deleted right after it was created
    with pytest.raises(ArgoRejectedError) as info:
        submit_task(make_task(2), client_of(argo, retries=2), detach=True)
    assert info.value.exit_code == ExitCode.INVALID
    assert 'workflowtemplate.argoproj.io "t1-task" not found' in str(info.value)
    assert not argo.workflows


def test_a_missing_required_parameter_is_a_clear_error_naming_it(
    argo: FakeArgo, client_of: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = build.task_template

    def without_store_value(task: Any, **kwargs: Any) -> Any:
        template = real(task, **kwargs)
        for param in template.arguments:
            if param.name == "store":
                param.value = None
        return template

    monkeypatch.setattr(build, "task_template", without_store_value)
    with pytest.raises(ArgoRejectedError) as info:
        submit_task(make_task(2), client_of(argo), detach=True)
    assert info.value.status == 400
    assert str(info.value) == (
        "the Argo server rejected workflow t1-run-1 (400): "
        "spec.arguments.store.value or spec.arguments.store.valueFrom is required"
    )
    # supplied with -p, it is accepted
    submission, _ = submit_task(
        make_task(2), client_of(argo), parameters={"store": "http://s3:9000"}, detach=True
    )
    assert submission.created


def test_a_failed_round_fails_the_submit_naming_the_round_and_its_failed_node(
    argo: FakeArgo, client_of: Client
) -> None:
    argo.playbook = lambda doc: task_statuses("t1", [1, 2, 3], fail_round=2)
    with pytest.raises(TaskFailedError) as info:
        submit_task(make_task(3), client_of(argo))
    assert info.value.exit_code == ExitCode.FAILED
    assert str(info.value) == (
        "task t1 failed (workflow t1-run-1): round 2 (workflow t1-r00002-a1) failed: child 'aggregate' "
        "failed; failed: aggregate: quorum not met: 0 of 2 edges contributed (quorum 1)"
    )
    assert "t1-r00003-a1" not in argo.workflows


def test_the_task_workflow_deleted_while_watched_says_a_resubmit_resumes(
    argo: FakeArgo, client_of: Client
) -> None:
    argo.playbook = lambda doc: running()

    def delete_soon(snapshot: Snapshot) -> None:
        argo.delete(snapshot.run.workflow)

    with pytest.raises(
        WorkflowGoneError, match="was deleted from namespace argo before it ended; submitting"
    ):
        submit_task(make_task(2), client_of(argo), on_update=delete_soon)


def test_the_watch_times_out_and_names_the_workflow(argo: FakeArgo, client_of: Client) -> None:
    argo.playbook = lambda doc: running()
    with pytest.raises(WatchTimeoutError) as info:
        submit_task(make_task(2), client_of(argo, timeout=0.3, poll=0.05))
    assert info.value.workflow == "t1-run-1" and "keeps running on the cluster" in str(info.value)
    assert 4 <= argo.gets("t1-run-1") <= 10  # bounded: 0.05, 0.075, 0.11, ... until 0.3 s


def test_cancel_stops_the_watch_promptly_and_the_next_submit_watches_the_same_workflow(
    argo: FakeArgo, client_of: Client
) -> None:
    argo.playbook = lambda doc: running()
    cancel = threading.Event()
    client = client_of(argo, poll=30, max_poll=30, cancel=cancel)  # a watch that ends soon was cut short
    errors: list[BaseException] = []

    def work() -> None:
        try:
            submit_task(make_task(2), client)
        except BaseException as err:
            errors.append(err)

    worker = threading.Thread(target=work)
    worker.start()
    deadline = time.monotonic() + 5
    while "t1-run-1" not in argo.workflows or argo.gets("t1-run-1") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    cancel.set()
    worker.join(timeout=5)
    assert not worker.is_alive()
    (err,) = errors
    assert isinstance(err, WatchCancelledError) and err.workflow == "t1-run-1"
    assert err.exit_code == ExitCode.INTERRUPTED
    assert not argo.calls("DELETE")  # the task keeps running

    argo.workflows["t1-run-1"].statuses = task_statuses("t1", [1, 2])
    argo.workflows["t1-run-1"].index = 0
    submission, final = submit_task(make_task(2), client_of(argo))
    assert submission.workflow == "t1-run-1" and not submission.created
    assert final is not None and final.run.phase == "Succeeded"
    assert len(task_creates(argo)) == 1


def test_submitted_documents_carry_no_credential_value(argo: FakeArgo, client_of: Client) -> None:
    submit_task(make_task(2), client_of(argo), parameters={"store": "http://minio.edgefed:9000"})
    bodies = [json.dumps(r.body) for r in argo.requests if r.body is not None]
    assert bodies and all(TOKEN not in body for body in bodies)
    templates = [r.body["template"] for r in argo.calls("POST", r"/workflow-templates/argo$")]
    assert [t["metadata"]["name"] for t in templates] == ["t1-round", "t1-task"]
    for doc in templates:
        for template in doc["spec"].get("templates", []):
            for env in (template.get("container") or {}).get("env", []):
                if env["name"] in (Env.ACCESS_KEY, Env.SECRET_KEY):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"]


# -- CLI ------------------------------------------------------------------------------------
@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """edgefed."""

    register(app)
    return app


def submit_args(argo: FakeArgo, task_file: Path, *more: str) -> list[str]:
    return ["submit", str(task_file), "--argo-server", argo.url, "--namespace", NS, "--poll", "0.1", *more]


def test_cli_submits_watches_and_prints_every_round_and_the_outputs(
    argo: FakeArgo, cli: typer.Typer, tmp_path: Path
) -> None:
    argo.playbook = lambda doc: task_statuses("t1", [1, 2])
    task_file = write_task(tmp_path / "task.yaml", task_doc("t1", ("a", "b"), rounds=2))
    result = CliRunner().invoke(
        cli, submit_args(argo, task_file, "-p", "store=http://s3:9000"), env={"ARGO_TOKEN": TOKEN}
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "task t1: created task Workflow t1-run-1 (namespace argo)" in out
    assert "round   1  accuracy 0.6000  loss 1.0000  edges 2  5.0s  t1-r00001-a1" in out
    assert "round   2  accuracy 0.7000" in out
    assert "task t1: Succeeded (workflow t1-run-1): stopped after round 2: all 2 rounds done" in out
    assert "  model-version: v2" in out and "  rounds-run: 2" in out
    assert TOKEN not in out
    assert parameters_of(argo.created()[0])["store"] == "http://s3:9000"


def test_cli_exit_codes_refused_token_rejected_submission_failed_task(
    argo: FakeArgo, cli: typer.Typer, tmp_path: Path
) -> None:
    task_file = write_task(tmp_path / "task.yaml", task_doc("t1", ("a", "b"), rounds=2))
    result = CliRunner().invoke(cli, submit_args(argo, task_file), env={"ARGO_TOKEN": "nope"})
    assert result.exit_code == ExitCode.FAILED
    assert "refused the token (401)" in result.output and "nope" not in result.output

    argo.template_lag = 100
    result = CliRunner().invoke(
        cli, submit_args(argo, task_file, "--retries", "0"), env={"ARGO_TOKEN": TOKEN}
    )
    assert result.exit_code == ExitCode.INVALID, result.output
    assert 'workflowtemplate.argoproj.io "t1-task" not found' in " ".join(result.output.split())

    argo.template_lag = 0
    argo.templates.clear()  # created again, seen at once
    argo.playbook = lambda doc: task_statuses("t1", [1, 2], fail_round=1)
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    result = CliRunner().invoke(
        cli,
        submit_args(argo, task_file, "--token-file", str(token_file), "--insecure-skip-verify"),
        env={"ARGO_TOKEN": ""},
    )
    assert result.exit_code == ExitCode.FAILED, result.output
    assert "round   1  Failed  t1-r00001-a1" in result.output
    assert "task t1 failed (workflow t1-run-1): round 1 (workflow t1-r00001-a1) failed" in " ".join(
        result.output.split()
    )


def test_cli_detach_creates_and_says_how_to_watch(argo: FakeArgo, cli: typer.Typer, tmp_path: Path) -> None:
    task_file = write_task(tmp_path / "task.yaml", task_doc("t1", ("a", "b"), rounds=2))
    result = CliRunner().invoke(cli, submit_args(argo, task_file, "--detach"), env={"ARGO_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "created task Workflow t1-run-1" in out
    assert "`edgefed status t1`" in out and "`argo watch t1-run-1 -n argo`" in out
    assert argo.gets("t1-run-1") == 0  # not watched


def test_cli_ctrl_c_leaves_the_task_running_says_how_to_watch_again_and_exits_130(
    argo: FakeArgo, cli: typer.Typer, tmp_path: Path
) -> None:
    argo.playbook = lambda doc: running()
    task_file = write_task(tmp_path / "task.yaml", task_doc("t1", ("a", "b"), rounds=2))
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        result = CliRunner().invoke(cli, submit_args(argo, task_file), env={"ARGO_TOKEN": TOKEN})
    finally:
        timer.cancel()
        timer.join()
    out = " ".join(result.output.split())
    assert result.exit_code == ExitCode.INTERRUPTED, result.output
    assert "workflow t1-run-1 keeps running on the cluster (namespace argo)" in out
    assert f"watch it again with `edgefed submit {task_file}`" in out
    assert not argo.calls("DELETE")


def test_the_display_has_a_bar_per_running_round_and_prints_each_finished_round_once() -> None:
    out = io.StringIO()
    display = RoundsDisplay("t1", 3, Console(file=out, force_terminal=True, width=120))
    run = TaskRun(workflow="t1-run-1", uid="u1", phase="Running", title="t1: round 2 of 3")

    def row(round_: int, phase: str, progress: str, **more: Any) -> RoundRow:
        name = f"t1-r{round_:05d}-a1"
        return RoundRow(
            round=round_, attempt=1, workflow=name, phase=phase, source="workflow", progress=progress, **more
        )

    done = row(1, "Succeeded", "5/5", accuracy=0.7, contributors=2, seconds=3.2)
    with display:
        display.update(Snapshot(task="t1", run=run, rounds=[row(1, "Running", "2/5")]))
        (bar,) = display.progress.tasks[1:]
        assert (bar.description, bar.completed, bar.total) == ("round 1", 2, 5)
        for _ in range(2):
            display.update(Snapshot(task="t1", run=run, rounds=[done, row(2, "Pending", "")]))
        assert list(display.bars) == ["t1-r00002-a1"]
        assert display.progress.tasks[0].completed == 1  # the task's bar: rounds done of 3
    assert out.getvalue().count("round   1  accuracy 0.7000  loss -  edges 2  3.2s  t1-r00001-a1") == 1
