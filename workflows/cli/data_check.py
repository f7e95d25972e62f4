"""``edgefed data check TASK``: the data contracts at every edge, without training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgefed.workflows.cli.common import HomeOption, console, fail, load
from edgefed.workflows.errors import EdgefedError, ExitCode

__all__ = ["data_check"]


def data_check(
    task_file: Annotated[Path, typer.Argument(help="FederatedTask YAML")],
    edge: Annotated[str | None, typer.Option("--edge", help="check only this edge")] = None,
    contract: Annotated[str | None, typer.Option(help="contract name or file (default: the task's)")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    home: HomeOption = None,
) -> None:
    """Run the data contracts at every edge without training; exit 1 if any edge fails.

    Each edge's data is checked with that edge's own credentials; only verdicts are shown."""
    from edgefed.steps.layout import site_identity
    from edgefed.workflows.data.check import check_task, render_table
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    try:
        task = load(task_file)
        with EmbeddedRuntime(home) as runtime:
            runtime.prepare(task)
            verdicts = check_task(
                task,
                clients_for_edge=lambda e: runtime.store.client(site_identity(e)),
                edge=edge,
                contract=contract,
            )
    except EdgefedError as err:
        raise fail(err) from None
    if output == "json":
        print(json.dumps({name: json.loads(v.to_json()) for name, v in verdicts.items()}, indent=2))
    else:
        console.print(render_table(verdicts))
    if not all(v.passed for v in verdicts.values()):
        raise typer.Exit(int(ExitCode.FAILED))
