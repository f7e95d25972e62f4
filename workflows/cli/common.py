"""What every ``edgefed`` command shares: the consoles, common options, error-to-exit-code mapping."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from edgefed.workflows.errors import EdgefedError, ExitCode

if TYPE_CHECKING:
    from edgefed.workflows.build.settings import ClusterSettings
    from edgefed.workflows.spec import FederatedTask

__all__ = [
    "HomeOption",
    "ParallelismOption",
    "ValuesOption",
    "console",
    "err_console",
    "fail",
    "fail_with",
    "late_text",
    "load",
    "load_for_cluster",
    "parse_parameters",
    "privacy_text",
    "progress",
]

console = Console()
err_console = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", envvar="EDGEFED_HOME", help="state directory (store data, runs, credentials)"),
]
ParallelismOption = Annotated[
    int | None,
    typer.Option("--parallelism", "-j", min=1, help="edges trained at once (default: cores, max 4)"),
]


def fail_with(message: str, code: ExitCode) -> typer.Exit:
    """Print ``error: message`` on stderr; the :class:`typer.Exit` to raise with ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    return typer.Exit(int(code))


def fail(err: EdgefedError) -> typer.Exit:
    """:func:`fail_with` for an error of the control plane, with its own exit code."""
    return fail_with(str(err), err.exit_code)


def load(path: Path) -> FederatedTask:
    """The task in ``path`` (:class:`~edgefed.workflows.errors.SpecError` when it is invalid)."""
    from edgefed.workflows.spec import load_task

    return load_task(path)


ValuesOption = Annotated[
    Path | None,
    typer.Option(
        "--values",
        "-f",
        help="the edgefed chart's values file of the installation (helm install -f FILE): image, stores, "
        "Secrets, ServiceAccounts and resources come from it, so the manifests agree with the chart",
    ),
]


def load_for_cluster(path: Path, values: Path | None) -> tuple[FederatedTask, ClusterSettings]:
    """The task in ``path`` and the cluster settings, both as the chart's ``values`` file says
    (:class:`~edgefed.workflows.errors.EdgefedError` when either is invalid or they disagree)."""
    from edgefed.workflows.build import DEFAULT_SETTINGS
    from edgefed.workflows.build.values import load_values, settings_from_values, task_from_values

    task = load(path)
    if values is None:
        return task, DEFAULT_SETTINGS
    chart_values = load_values(values)
    return task_from_values(task, chart_values), settings_from_values(chart_values)


def parse_parameters(values: list[str] | None, *, option: str = "--parameter") -> dict[str, str]:
    """``NAME=VALUE`` options (``-p``) as a mapping; :class:`typer.BadParameter` names a bad one."""
    out: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint=option)
        out[name] = value
    return out


def privacy_text(privacy: dict | None) -> str:
    """``  ε 1.23 (δ 1e-05)`` for a round under differential privacy, else nothing."""
    if not privacy:
        return ""
    epsilon = privacy.get("epsilon")
    spent = "∞" if epsilon is None else f"{float(epsilon):.3g}"  # None: a round without noise, no guarantee
    return f"  ε {spent} (δ {float(privacy['delta']):.0e})"


def late_text(late: list[dict] | None) -> str:
    """``  late: b from round 2 (used)`` for a round that received updates edges kept while offline."""
    if not late:
        return ""
    return "  late: " + ", ".join(
        f"{u['edge']} from round {u['trainedRound']} ({'used' if u.get('used') else 'dropped'})" for u in late
    )


@contextmanager
def progress(total: int, what: str) -> Iterator[Callable[[], None]]:
    """Progress of ``total`` items of long work on stderr; yields ``advance()``, called once per item.

    A bar on a terminal (rich); otherwise (a log, CI) a line at every tenth of the work, so a long
    seeding or export shows it is moving without one line per item."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.monotonic()
    if err_console.is_terminal:
        with Progress(
            TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console
        ) as bar:
            job = bar.add_task(what, total=total)
            yield lambda: bar.advance(job)
        return
    done = 0
    step = max(1, total // 10)

    def advance() -> None:
        nonlocal done
        done += 1
        if done % step == 0 or done == total:
            err_console.print(
                f"{what}: {done}/{total} ({100 * done // total}%), {time.monotonic() - started:.1f} s",
                highlight=False,
            )

    yield advance
