"""``edgefed generate TASK -o DIR``: everything a cluster needs for the task, as files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgefed.workflows.cli.common import ValuesOption, console, fail, load_for_cluster
from edgefed.workflows.errors import EdgefedError

__all__ = ["generate"]


def generate(
    task_file: Annotated[Path, typer.Argument(help="FederatedTask YAML")],
    out: Annotated[Path, typer.Option("--output-dir", "-o", help="directory to write the manifests to")],
    cron: Annotated[bool, typer.Option(help="also write a CronWorkflow for scheduled retraining")] = True,
    values: ValuesOption = None,
) -> None:
    """Write everything a cluster needs for the task: task.yaml (the whole task: `argo submit` it), the
    task and round WorkflowTemplates, init and single-round Workflows, a CronWorkflow, and the kubectl
    commands that label the edge nodes."""
    from edgefed.workflows.build import write_manifests

    try:
        task, settings = load_for_cluster(task_file, values)
    except EdgefedError as err:
        raise fail(err) from None
    for path in write_manifests(task, out, cron=cron, settings=settings):
        console.print(f"wrote {path}")
