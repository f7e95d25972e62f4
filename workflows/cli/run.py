"""``edgefed run TASK``: the task Workflow (what ``argo submit task.yaml`` runs) on the embedded engine,
with a progress bar per round."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgefed.workflows.cli.common import (
    HomeOption,
    ParallelismOption,
    console,
    err_console,
    fail,
    load,
    privacy_text,
)
from edgefed.workflows.errors import EdgefedError, ExitCode

if TYPE_CHECKING:
    from edgefed.workflows.driver import TaskResult
    from edgefed.workflows.spec import FederatedTask

__all__ = ["run", "run_task"]


def run(
    task_file: Annotated[Path, typer.Argument(help="FederatedTask YAML")],
    home: HomeOption = None,
    parallelism: ParallelismOption = None,
) -> None:
    """Run a task's task Workflow on the embedded engine: init, every round as a child Workflow, the
    stop; resumes after the last committed round."""
    try:
        task = load(task_file)
        result = run_task(task, home=home, parallelism=parallelism)
    except EdgefedError as err:
        raise fail(err) from None
    except KeyboardInterrupt:
        err_console.print("interrupted: committed rounds are kept; run the same command again to resume")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    console.print(f"task {result.task}: stopped after round {result.last_round}: {result.stop_reason}")


def run_task(
    task: FederatedTask, *, home: Path | None, parallelism: int | None, quiet: bool = False
) -> TaskResult:
    """Run ``task`` on the embedded runtime, printing a progress bar and one line per round."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgefed.steps.layout import CLOUD_IDENTITY
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.driver import RoundReport
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime
    from edgefed.workflows.embedded.task import run_task as run_task_workflow

    with EmbeddedRuntime(home, parallelism=parallelism or task.spec.parallelism) as runtime:
        runtime.prepare(task)
        registry = ModelRegistry(runtime.store.client(CLOUD_IDENTITY))
        done = registry.last_round(task.name) or 0
        if done:
            console.print(f"task {task.name}: resuming after committed round {done}")
        with Progress(
            TextColumn("[bold]{task.fields[name]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("round {task.completed}  acc {task.fields[acc]}  loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
        ) as progress:
            bar = progress.add_task(
                "rounds", total=task.spec.last_round, completed=done, name=task.name, acc="-", loss="-"
            )

            def on_round(report: RoundReport) -> None:
                acc = f"{report.accuracy:.4f}" if report.accuracy is not None else "-"
                loss = f"{report.loss:.4f}" if report.loss is not None else "-"
                progress.update(bar, completed=report.round, acc=acc, loss=loss)
                missing = f"  (sat out: {', '.join(report.missing)})" if report.missing else ""
                privacy = privacy_text(registry.manifest(task.name, report.round).get("privacy"))
                progress.console.print(
                    f"round {report.round:>3}  accuracy {acc}  loss {loss}  edges {report.contributors}"
                    f"{privacy}  {report.seconds:.2f}s  {report.workflow}{missing}",
                    highlight=False,
                )

            return run_task_workflow(runtime, task, on_round=on_round)
