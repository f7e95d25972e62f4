"""``edgefed demo`` (``make demo``): seed the heart data across 4 hospitals and train on the embedded default."""

from __future__ import annotations

from typing import Annotated

import typer

from edgefed.workflows.cli.common import HomeOption, ParallelismOption, console, fail
from edgefed.workflows.errors import EdgefedError

__all__ = ["demo"]


def demo(
    home: HomeOption = None,
    parallelism: ParallelismOption = None,
    dp_epsilon: Annotated[
        float | None,
        typer.Option(
            "--dp-epsilon", min=0.01, help="train under central differential privacy with this ε budget"
        ),
    ] = None,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="then promote, let new rows arrive at two hospitals, and run the incremental learning job",
        ),
    ] = False,
) -> None:
    """Seed the heart data across 4 hospitals and train a federated model on the embedded default."""
    from edgefed.workflows.cli.run import run_task
    from edgefed.workflows.embedded import demo as demo_mod

    try:
        demo_mod.main(
            home=home,
            parallelism=parallelism,
            console=console,
            run_task=run_task,
            dp_epsilon=dp_epsilon,
            incremental=incremental,
        )
    except EdgefedError as err:
        raise fail(err) from None
