"""``edgefed report TASK``: a self-contained HTML report of the task's training, and its TensorBoard files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgefed.workflows.cli.common import HomeOption, console, fail_with
from edgefed.workflows.errors import ExitCode

__all__ = ["report", "write_report"]


def write_report(runtime: object, task: str, out: Path | None = None) -> tuple[Path, Path]:
    """Write ``task``'s report (default ``<home>/reports/<task>.html``) and mirror its TensorBoard event
    files into ``<home>/tensorboard/<task>/``; returns both paths."""
    from edgefed.steps.layout import CLOUD_IDENTITY
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.report import render_report, sync_events

    client = runtime.store.client(CLOUD_IDENTITY)  # type: ignore[attr-defined]
    events = runtime.home / "tensorboard" / task  # type: ignore[attr-defined]
    sync_events(client, task, events)
    page = render_report(ModelRegistry(client), task)
    target = out or runtime.home / "reports" / f"{task}.html"  # type: ignore[attr-defined]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target, events


def report(
    task_name: Annotated[str, typer.Argument(help="task name (metadata.name)")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="HTML file to write (default <home>/reports/<task>.html)"),
    ] = None,
    home: HomeOption = None,
) -> None:
    """An HTML report (accuracy and loss, each edge's contributions, edges that sat out and why, the
    lineage; plots inline) and the task's TensorBoard event files under the state directory."""
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    with EmbeddedRuntime(home) as runtime:
        try:
            target, events = write_report(runtime, task_name, out)
        except ValueError as err:
            raise fail_with(str(err), ExitCode.INVALID) from None
    console.print(f"report: {target.resolve()} (open it in a browser)", highlight=False, soft_wrap=True)
    console.print(f"TensorBoard: tensorboard --logdir {events.resolve()}", highlight=False, soft_wrap=True)
