"""``edgefed engine run FILE``: run an Argo Workflow document with the embedded engine.

Prints one line per node phase change, then the ``argo get``-style tree (and the failing nodes' last log
lines). Exit code 0 if the workflow Succeeded, 1 if it Failed or errored, 2 if the document is invalid or
uses an unsupported feature (the message names it).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from edgefed.workflows.cli.common import parse_parameters
from edgefed.workflows.embedded.engine import (
    Engine,
    EngineOptions,
    LocalProcessRunner,
    Node,
    Runner,
    WarmPythonRunner,
    WorkerPool,
    WorkflowInvalidError,
    load_document,
    load_secret_manifests,
    node_line,
    render_report,
)
from edgefed.workflows.errors import ExitCode
from edgefed.workflows.paths import default_home

__all__ = ["app", "run"]

app = typer.Typer(help="Run Argo Workflow documents on this machine.", no_args_is_help=True)

_STYLES = {"✔": "green", "✖": "red", "⚠": "yellow", "○": "dim", "●": "cyan", "◷": "dim"}


def _styled(text: str) -> Text:
    t = Text(text)
    for symbol, style in _STYLES.items():
        t.highlight_regex(symbol, style)
    return t


def _parse_warm(specs: list[str]) -> dict[str, str]:
    """``--warm`` values: ``command=module:function`` (or ``module:function=command``)."""
    mapping: dict[str, str] = {}
    for spec in specs:
        left, sep, right = spec.partition("=")
        if not sep or not left or not right:
            raise typer.BadParameter(f"expected COMMAND=module:function, got {spec!r}", param_hint="--warm")
        if ":" in left and ":" not in right:
            left, right = right, left
        mapping[left] = right
    return mapping


@app.command()
def run(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Workflow YAML file.")],
    parameter: Annotated[
        list[str] | None, typer.Option("--parameter", "-p", help="Override a workflow parameter: NAME=VALUE.")
    ] = None,
    parallelism: Annotated[int, typer.Option("--parallelism", min=1, help="Max processes at once.")] = 4,
    secrets: Annotated[
        Path | None, typer.Option("--secrets", exists=True, dir_okay=False, help="YAML file of v1 Secrets.")
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="Where node directories and logs go (default: $EDGEFED_HOME/runs)."),
    ] = None,
    warm: Annotated[
        list[str] | None,
        typer.Option(
            "--warm", help="Run COMMAND as a Python function in warm workers: COMMAND=module:function."
        ),
    ] = None,
    warm_init: Annotated[
        str | None, typer.Option("--warm-init", help="Warm worker initializer module:function.")
    ] = None,
    warm_workers: Annotated[int, typer.Option("--warm-workers", min=1, help="Number of warm workers.")] = 2,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print phase changes.")] = False,
    template: Annotated[
        list[Path] | None,
        typer.Option(
            "--template",
            exists=True,
            dir_okay=False,
            help="WorkflowTemplate file a workflowTemplateRef may name.",
        ),
    ] = None,
) -> None:
    """Run FILE and print its node tree; exit 0 on Succeeded, 1 on Failed/Error, 2 if invalid."""
    console = Console(highlight=False, soft_wrap=True)
    params = parse_parameters(parameter, option="-p")
    try:
        document = load_document(file)
        templates = tuple(load_document(t) for t in template or [])
        Engine.check(document, templates=templates)
        resolver = load_secret_manifests(secrets) if secrets else None
        warm_map = _parse_warm(warm or [])
    except WorkflowInvalidError as exc:
        console.print(Text(f"invalid workflow {file}: {exc}", style="red"))
        raise typer.Exit(int(ExitCode.INVALID)) from exc

    def on_node(node: Node) -> None:
        if not quiet:
            console.print(_styled(node_line(node)))

    with contextlib.ExitStack() as stack:
        runner: Runner = LocalProcessRunner()
        if warm_map:
            pool = stack.enter_context(WorkerPool(size=warm_workers, initializer=warm_init))
            runner = WarmPythonRunner(pool=pool, commands=warm_map)
        options = EngineOptions(
            parallelism=parallelism,
            run_dir=run_dir or default_home() / "runs",
            templates=templates,
            secret_resolver=resolver,
            runner=runner,
            on_node=on_node,
        )
        try:
            result = Engine(options).run(document, parameters=params)
        except WorkflowInvalidError as exc:
            console.print(Text(f"invalid workflow {file}: {exc}", style="red"))
            raise typer.Exit(int(ExitCode.INVALID)) from exc
    console.print()
    console.print(_styled(render_report(result)))
    raise typer.Exit(int(ExitCode.OK if result.succeeded else ExitCode.FAILED))


@app.callback()
def _main() -> None:
    """Embedded Argo Workflow engine."""
