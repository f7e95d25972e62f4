"""``edgefed report TASK``: a self-contained HTML report of the task's training, and its TensorBoard files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from edgefed.workflows.cli.common import HomeOption, console, fail_with
from edgefed.workflows.errors import ExitCode

if TYPE_CHECKING:
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

__all__ = ["mirror_events", "report", "show_paths", "write_report"]


def mirror_events(runtime: EmbeddedRuntime, task: str) -> Path:
    """The task's TensorBoard event files, copied into ``<home>/tensorboard/<task>/`` (returned)."""
    from edgefed.steps.layout import CLOUD_IDENTITY
    from edgefed.workflows.report import sync_events

    events = runtime.home / "tensorboard" / task
    sync_events(runtime.store.client(CLOUD_IDENTITY), task, events)
    return events


def write_report(runtime: EmbeddedRuntime, task: str, out: Path | None = None) -> tuple[Path, Path]:
    """Write ``task``'s report (default ``<home>/reports/<task>.html``) and mirror its TensorBoard event
    files (:func:`mirror_events`); returns both paths."""
    from edgefed.steps.layout import CLOUD_IDENTITY
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.report import render_report

    events = mirror_events(runtime, task)
    page = render_report(ModelRegistry(runtime.store.client(CLOUD_IDENTITY)), task)
    target = out or runtime.home / "reports" / f"{task}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target, events


def show_paths(out: Console, target: Path, events: Path) -> None:
    """Where to look: the report, and the ``tensorboard`` command for the event files."""
    out.print(f"report: {target.resolve()} (open it in a browser)", highlight=False, soft_wrap=True)
    out.print(f"TensorBoard: tensorboard --logdir {events.resolve()}", highlight=False, soft_wrap=True)


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
    show_paths(console, target, events)
