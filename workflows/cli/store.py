"""``edgefed store start|stop|status``: the embedded store's three small commands, kept together
(commands start the store when they need it; these are rarely needed)."""

from __future__ import annotations

import typer

from edgefed.workflows.cli.common import HomeOption, console
from edgefed.workflows.errors import ExitCode

__all__ = ["app"]

app = typer.Typer(help="The embedded S3 store (SeaweedFS).", no_args_is_help=True)


def _store(home):  # -> EmbeddedStore (imported lazily)
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    return EmbeddedRuntime(home).store


@app.command("start")
def store_start(home: HomeOption = None) -> None:
    """Start the embedded store (commands start it on demand; this is rarely needed)."""
    store = _store(home)
    store.start(detach=True)
    console.print(f"store running at http://{store.endpoint} (data: {store.state_dir})")


@app.command("stop")
def store_stop(home: HomeOption = None) -> None:
    """Stop the embedded store. Its data stays and is there again at the next start."""
    _store(home).stop()
    console.print("store stopped")


@app.command("status")
def store_status(home: HomeOption = None) -> None:
    """Whether the embedded store runs, and where."""
    store = _store(home)
    if store.running:
        console.print(f"running at http://{store.endpoint} (data: {store.state_dir})")
    else:
        console.print(f"not running (data: {store.state_dir})")
        raise typer.Exit(int(ExitCode.FAILED))
