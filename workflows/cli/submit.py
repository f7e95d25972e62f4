"""``edgefed submit TASK --argo-server URL``: the task as one task Workflow on a cluster, watched round by round."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgefed.workflows.cli.argo import (
    ArgoServerOption,
    InsecureOption,
    NamespaceOption,
    RetriesOption,
    TokenFileOption,
    invalid_input,
    open_client,
)
from edgefed.workflows.cli.common import (
    ValuesOption,
    console,
    fail,
    fail_with,
    load_for_cluster,
    parse_parameters,
)
from edgefed.workflows.cluster.errors import WatchCancelledError
from edgefed.workflows.errors import EdgefedError, ExitCode

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from edgefed.workflows.cluster.submit import Submission
    from edgefed.workflows.cluster.view import RoundRow
    from edgefed.workflows.cluster.watch import Snapshot

__all__ = ["RoundsDisplay", "register", "round_line", "submit"]


def round_line(row: RoundRow) -> str:
    """One finished round: accuracy, loss, contributors, edges that sat out, duration, workflow."""
    from edgefed.workflows.phases import Phase

    if row.phase != Phase.SUCCEEDED:
        return f"round {row.round:>3}  {row.phase}  {row.workflow}: {row.message or 'no message'}"
    acc = f"{row.accuracy:.4f}" if row.accuracy is not None else "-"
    loss = f"{row.loss:.4f}" if row.loss is not None else "-"
    seconds = f"  {row.seconds:.1f}s" if row.seconds is not None else ""
    missing = f"  (sat out: {', '.join(row.missing)})" if row.missing else ""
    return (
        f"round {row.round:>3}  accuracy {acc}  loss {loss}  edges {row.contributors if row.contributors is not None else '-'}"
        f"{seconds}  {row.workflow}{missing}"
    )


def _fraction(progress: str | None) -> tuple[int, int | None]:
    done, _, total = (progress or "").partition("/")
    try:
        return int(done), int(total) or None
    except ValueError:
        return 0, None


class RoundsDisplay:
    """A progress bar per running round (Argo's ``done/total`` pods of its Workflow) and one for the
    task, each finished round printed once. Bars show on a terminal only; the lines always."""

    def __init__(self, task: str, rounds: int, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = console
        self.progress: Progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[phase]}"),
            console=console,
            disable=not console.is_terminal,
        )
        self.overall: TaskID = self.progress.add_task(f"task {task}", total=rounds, phase="")
        self.bars: dict[str, TaskID] = {}
        self.printed: set[str] = set()

    def __enter__(self) -> RoundsDisplay:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def update(self, snap: Snapshot) -> None:
        from edgefed.workflows.phases import Phase

        for row in snap.rounds:
            key = row.workflow or f"round {row.round}"
            if row.done:
                if key not in self.printed:
                    self.printed.add(key)
                    self.progress.console.print(round_line(row), highlight=False)
                if key in self.bars:
                    self.progress.remove_task(self.bars.pop(key))
                continue
            done, total = _fraction(row.progress)
            if key not in self.bars:
                self.bars[key] = self.progress.add_task(f"round {row.round}", total=total, phase=row.phase)
            self.progress.update(self.bars[key], completed=done, total=total, phase=row.phase)
        succeeded = [r.round for r in snap.rounds if r.phase == Phase.SUCCEEDED]
        self.progress.update(
            self.overall,
            completed=max(succeeded, default=0),
            phase=snap.run.title or snap.run.phase,
        )


def _watch_hint(submission: Submission, task_file: Path) -> str:
    return (
        f"watch it again with `edgefed submit {task_file}` (it watches a running task instead of "
        f"starting another), `edgefed status {submission.task}`, or `argo watch {submission.workflow} "
        f"-n {submission.namespace}`"
    )


def submit(
    task_file: Annotated[Path, typer.Argument(help="FederatedTask YAML")],
    argo_server: ArgoServerOption,
    namespace: NamespaceOption = "argo",
    token_file: TokenFileOption = None,
    insecure_skip_verify: InsecureOption = False,
    parameter: Annotated[
        list[str] | None,
        typer.Option("--parameter", "-p", help="task Workflow parameter override NAME=VALUE (repeatable)"),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="create the task Workflow (or find it running) and return")
    ] = False,
    poll: Annotated[
        float, typer.Option("--poll", min=0.1, help="first seconds between status polls (grows to 8x)")
    ] = 2.0,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="seconds to watch the task Workflow at most")
    ] = 24 * 3600,
    retries: RetriesOption = 3,
    values: ValuesOption = None,
) -> None:
    """Run a task on a cluster as one task Workflow, through the Argo server, and watch its rounds.

    Creates or updates the task's round and task WorkflowTemplates, then creates the task Workflow,
    unless one of the task is already Pending or Running: that one is watched instead. The task
    resumes after the last round committed in its model registry. Ctrl-C stops watching only.
    """
    with invalid_input():
        task, settings = load_for_cluster(task_file, values)
        parameters = parse_parameters(parameter)
    from edgefed.workflows.cluster.submit import submit_task

    client = open_client(
        argo_server,
        namespace,
        token_file=token_file,
        insecure_skip_verify=insecure_skip_verify,
        retries=retries,
        poll=poll,
        timeout=timeout,
    )
    submitted: list[Submission] = []

    def on_submitted(submission: Submission) -> None:
        submitted.append(submission)
        how = "created" if submission.created else "already running:"
        console.print(
            f"task {task.name}: {how} task Workflow {submission.workflow} (namespace {submission.namespace})",
            highlight=False,
        )
        if detach:
            console.print(_watch_hint(submission, task_file), highlight=False)

    display = RoundsDisplay(task.name, task.spec.last_round, console)
    try:
        with display:
            _, final = submit_task(
                task,
                client,
                parameters=parameters,
                settings=settings,
                detach=detach,
                on_submitted=on_submitted,
                on_update=display.update,
            )
    except (WatchCancelledError, KeyboardInterrupt) as err:
        if not submitted:
            raise fail_with("interrupted before a task Workflow was created", ExitCode.INTERRUPTED) from None
        what = str(err) if isinstance(err, WatchCancelledError) else "stopped watching"
        raise fail_with(
            f"{what}; the task keeps running on the cluster; {_watch_hint(submitted[0], task_file)}",
            ExitCode.INTERRUPTED,
        ) from None
    except EdgefedError as err:
        raise fail(err) from None
    finally:
        client.close()
    if final is None:
        return
    from edgefed.workflows.build.names import TaskOutputs

    outputs = final.run.outputs
    console.print(
        f"task {task.name}: {final.run.phase} (workflow {final.run.workflow}): stopped after round "
        f"{outputs.get(TaskOutputs.LAST_ROUND, '?')}: {outputs.get(TaskOutputs.STOP_REASON) or 'no stop reason given'}",
        highlight=False,
    )
    for name, value in outputs.items():
        console.print(f"  {name}: {value}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``submit`` command to ``app``."""
    app.command("submit")(submit)
