"""``edgefed run FILE``: a task on the embedded engine, with a progress bar per round.

``FILE`` is a FederatedTask (its task Workflow is generated and run) or a task Workflow that
``edgefed generate`` wrote (``out/task.yaml``: that very document runs, with the WorkflowTemplates
beside it installed first, as ``kubectl apply -f out/ && argo submit out/task.yaml`` would).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgefed.workflows.cli.common import (
    HomeOption,
    ParallelismOption,
    console,
    err_console,
    fail,
    fail_with,
    late_text,
    load,
    privacy_text,
)
from edgefed.workflows.errors import EdgefedError, ExitCode

if TYPE_CHECKING:
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.driver import RoundReport, TaskResult
    from edgefed.workflows.spec import FederatedTask

__all__ = ["run", "run_task"]


def _read_kind(path: Path) -> tuple[str | None, Any]:
    """The document's ``kind`` and the document (:class:`SpecError` naming the file when it cannot be one)."""
    from edgefed.workflows.inputs import read_task_document

    document = read_task_document(path)
    return (document.get("kind") if isinstance(document, dict) else None), document


def run(
    task_file: Annotated[
        Path, typer.Argument(help="FederatedTask YAML, or a generated task Workflow (task.yaml)")
    ],
    home: HomeOption = None,
    parallelism: ParallelismOption = None,
) -> None:
    """Run a task's task Workflow on the embedded engine: init, every round as a child Workflow, the
    stop; resumes after the last committed round."""
    from edgefed.workflows.embedded.engine.pool import abandon_fork_server, start_fork_server
    from edgefed.workflows.embedded.warm import WARM_PRELOAD

    try:
        # a file that cannot be a task (missing, a directory, too large, not UTF-8, empty, not YAML) is
        # refused before anything starts (a bounded read and libyaml: milliseconds)
        kind, document = _read_kind(task_file)
    except EdgefedError as err:
        raise fail(err) from None
    # the steps' heavy imports (TensorFlow) begin now, beside validating the task and reaching the store;
    # one long job in this process: the server is let go once the workers are up (its memory with it)
    start_fork_server(WARM_PRELOAD, release=True)
    try:
        if kind == "Workflow":
            result = run_workflow_file(task_file, document, home=home, parallelism=parallelism)
        else:
            result = run_task(load(task_file), home=home, parallelism=parallelism)
    except EdgefedError as err:
        abandon_fork_server()  # refused (or failed) before the workers needed it: not left importing
        raise fail(err) from None
    except KeyboardInterrupt:
        abandon_fork_server()
        err_console.print("interrupted: committed rounds are kept; run the same command again to resume")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    console.print(f"task {result.task}: stopped after round {result.last_round}: {result.stop_reason}")


@contextmanager
def _progress(
    name: str, total: int, done: int, registry: ModelRegistry, *, quiet: bool
) -> Iterator[Callable[[RoundReport], None]]:
    """A progress bar of the task's rounds; yields the ``on_round`` callback that advances it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if done:
        console.print(f"task {name}: resuming after committed round {done}")
    with Progress(
        TextColumn("[bold]{task.fields[name]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("round {task.completed}  acc {task.fields[acc]}  loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    ) as progress:
        bar = progress.add_task("rounds", total=total, completed=done, name=name, acc="-", loss="-")

        def on_round(report: RoundReport) -> None:
            acc = f"{report.accuracy:.4f}" if report.accuracy is not None else "-"
            loss = f"{report.loss:.4f}" if report.loss is not None else "-"
            progress.update(bar, completed=report.round, acc=acc, loss=loss)
            missing = f"  (sat out: {', '.join(report.missing)})" if report.missing else ""
            manifest = registry.manifest(name, report.round)
            privacy = privacy_text(manifest.get("privacy")) + late_text(manifest.get("lateUpdates"))
            progress.console.print(
                f"round {report.round:>3}  accuracy {acc}  loss {loss}  edges {report.contributors}"
                f"{privacy}  {report.cycle_seconds or report.seconds:.2f}s (overhead {report.overhead:.2f}s)"
                f"  {report.workflow}{missing}",
                highlight=False,
                soft_wrap=True,  # one line per round, however narrow (or absent) the terminal
            )

        yield on_round


def run_task(
    task: FederatedTask, *, home: Path | None, parallelism: int | None, quiet: bool = False
) -> TaskResult:
    """Run ``task``'s task Workflow on the embedded runtime, printing a progress bar and one line per round."""
    from edgefed.steps.layout import CLOUD_IDENTITY
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime
    from edgefed.workflows.embedded.task import run_task as run_task_workflow

    with EmbeddedRuntime(home, parallelism=parallelism or task.spec.parallelism) as runtime:
        runtime.prepare(task)
        registry = ModelRegistry(runtime.store.client(CLOUD_IDENTITY))
        done = registry.last_committed(task.name) or 0
        try:
            with _progress(task.name, task.spec.last_round, done, registry, quiet=quiet) as on_round:
                return run_task_workflow(runtime, task, on_round=on_round)
        finally:  # the rounds committed so far, in TensorBoard (interrupted or failed runs too)
            _mirror_events(runtime, task.name)


def _mirror_events(runtime: Any, task: str) -> None:
    """The task's TensorBoard event files into the state directory (best effort: a store gone by now
    must not hide why the run ended)."""
    from edgefed.workflows.cli.report import mirror_events

    try:
        mirror_events(runtime, task)
    except Exception as err:
        err_console.print(f"(TensorBoard files not copied: {err})", highlight=False)


def run_workflow_file(
    path: Path, document: dict[str, Any], *, home: Path | None, parallelism: int | None
) -> TaskResult:
    """Run a generated task Workflow, the WorkflowTemplates in its directory installed first."""
    from edgefed.steps.layout import CLOUD_IDENTITY
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.build import LABEL_TASK
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime
    from edgefed.workflows.embedded.task import run_document

    labels = (document.get("metadata") or {}).get("labels") or {}
    name = labels.get(LABEL_TASK)
    if name is None:
        raise fail_with(
            f"{path}: a Workflow without the {LABEL_TASK} label is not an edgefed task", ExitCode.INVALID
        )
    parameters = {
        p["name"]: p.get("value") for p in document["spec"].get("arguments", {}).get("parameters", [])
    }
    last_round = int(json.loads(parameters.get("config") or "{}").get("plan", {}).get("lastRound", 0))
    with EmbeddedRuntime(home, parallelism=parallelism) as runtime:
        for other in sorted(path.parent.glob("*.yaml")):
            kind, template = _read_kind(other)
            if kind == "WorkflowTemplate":
                runtime.install_template(template)
        try:
            overrides = runtime.prepare_document(document)
        except ValueError as err:
            raise fail_with(f"{path}: {err}", ExitCode.INVALID) from None
        registry = ModelRegistry(runtime.store.client(CLOUD_IDENTITY))
        done = registry.last_committed(name) or 0
        with _progress(name, last_round, done, registry, quiet=False) as on_round:
            return run_document(runtime, document, parameters=overrides, on_round=on_round, task=name)
