"""The ``edgefed`` command: every command registered on one Typer app.

Thin commands, one per file (``run``, ``demo``, ``data_seed``, ``data_check``, ``models_list``,
``generate``, ``submit``, ``status``, ``engine_run``, and ``store`` with its three small ones): each parses
options, defers heavy imports until it runs, and maps errors to the exit codes in
:class:`~edgefed.workflows.errors.ExitCode`.
"""

from __future__ import annotations

import sys

import typer

from edgefed.workflows.cli import (
    cluster_setup,
    data_check,
    data_seed,
    data_user,
    demo,
    deploy,
    engine_run,
    generate,
    incremental,
    models_list,
    models_manage,
    report,
    run,
    serve,
    status,
    store,
    submit,
)
from edgefed.workflows.errors import ExitCode

__all__ = ["app", "main"]

app = typer.Typer(
    name="edgefed",
    help="Federated learning at the edge, orchestrated as Argo Workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Datasets in the edges' stores.", no_args_is_help=True)
models_app = typer.Typer(help="Versioned global models.", no_args_is_help=True)
edges_app = typer.Typer(help="The edges of a task, as each sees itself.", no_args_is_help=True)

app.command("run")(run.run)
app.command("demo")(demo.demo)
app.command("generate")(generate.generate)
app.command("report")(report.report)
submit.register(app)
status.register(app)
cluster_setup.register(app)
data_app.command("seed")(data_seed.data_seed)
data_app.command("check")(data_check.data_check)
data_app.command("put")(data_user.data_put)
data_app.command("put-test")(data_user.data_put_test)
data_app.command("ls")(data_user.data_ls)
contract_app = typer.Typer(help="Data contracts.", no_args_is_help=True)
contract_app.command("draft")(data_user.contract_draft)
models_app.command("list")(models_list.models_list)
models_app.command("show")(models_manage.models_show)
models_app.command("get")(models_manage.models_get)
models_app.command("export")(models_manage.models_export)
models_app.command("deploy")(deploy.models_deploy)
models_app.command("promote")(models_manage.models_promote)
models_app.command("rollback")(models_manage.models_rollback)
app.add_typer(data_app, name="data")
app.add_typer(contract_app, name="contract")
app.add_typer(models_app, name="models")
edges_app.command("status")(deploy.edges_status)
app.add_typer(edges_app, name="edges")
app.add_typer(store.app, name="store")
app.add_typer(incremental.app, name="incremental")
app.add_typer(serve.app, name="serve")
app.add_typer(engine_run.app, name="engine", help="Run an Argo Workflow YAML file on this machine.")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
