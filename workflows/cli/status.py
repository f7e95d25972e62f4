"""``edgefed status TASK --argo-server URL``: a task's task Workflows and rounds, as Argo shows them."""

from __future__ import annotations

import json
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
from edgefed.workflows.cli.common import console, fail, load
from edgefed.workflows.errors import EdgefedError

if TYPE_CHECKING:
    from rich.table import Table

    from edgefed.workflows.cluster.view import TaskView

__all__ = ["register", "render", "status"]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{value:.1f}s"


def _rounds_table(view: TaskView) -> Table:
    from rich.table import Table

    from edgefed.workflows.cluster.view import COLLECTED

    table = Table(title=f"rounds of {view.task}", title_justify="left")
    for column in ("round", "workflow", "phase", "accuracy", "contributors", "missing edges", "duration"):
        table.add_column(
            column, justify="right" if column in ("round", "accuracy", "contributors") else "left"
        )
    for row in view.rounds:
        if row.source == COLLECTED:
            table.add_row(str(row.round), "-", "collected (see `edgefed models list`)", "", "", "", "")
            continue
        phase = row.phase + (" (from the task Workflow)" if row.source == "node" else "")
        if row.progress and not row.done:
            phase += f" {row.progress}"
        table.add_row(
            str(row.round),
            row.workflow,
            phase,
            f"{row.accuracy:.4f}" if row.accuracy is not None else "-",
            str(row.contributors) if row.contributors is not None else "-",
            ", ".join(row.missing) or "-",
            _seconds(row.seconds),
        )
    return table


def render(view: TaskView, namespace: str) -> None:
    """Print ``view``: each task Workflow (phase, title/description, outputs), then the rounds table."""
    if not view.runs and not view.rounds:
        console.print(
            f"task {view.task}: Argo shows no workflow of it in namespace {namespace}", highlight=False
        )
        return
    for run in view.runs:
        console.print(f"task Workflow {run.workflow}: {run.phase}", highlight=False, style="bold")
        for text in (run.title, run.description, run.message):
            if text:
                console.print(f"  {text}", highlight=False)
        for name, value in run.outputs.items():
            console.print(f"  {name}: {value}", highlight=False)
    if view.rounds:
        console.print(_rounds_table(view))


def status(
    task: Annotated[str, typer.Argument(help="task name (or its FederatedTask YAML)")],
    argo_server: ArgoServerOption,
    namespace: NamespaceOption = "argo",
    token_file: TokenFileOption = None,
    insecure_skip_verify: InsecureOption = False,
    retries: RetriesOption = 3,
    as_json: Annotated[bool, typer.Option("--json", help="print the status as JSON")] = False,
) -> None:
    """Show a task's task Workflows and a table of its rounds from their child Workflows.

    A round whose Workflow Argo deleted (``ttlStrategy``) is shown from the task Workflow's node
    status while that lives, else as "collected": the model registry keeps every committed round.
    """
    name = task
    with invalid_input():
        if Path(task).is_file():
            name = load(Path(task)).name
    from edgefed.workflows.cluster.view import read_task

    client = open_client(
        argo_server,
        namespace,
        token_file=token_file,
        insecure_skip_verify=insecure_skip_verify,
        retries=retries,
    )
    try:
        view = read_task(client, name)
    except EdgefedError as err:
        raise fail(err) from None
    finally:
        client.close()
    if as_json:
        typer.echo(json.dumps({"namespace": namespace, **view.to_json()}, indent=2))
    else:
        render(view, namespace)


def register(app: typer.Typer) -> None:
    """Add the ``status`` command to ``app``."""
    app.command("status")(status)
