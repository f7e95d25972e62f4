"""``edgefed submit TASK --argo-server URL``: a task's rounds on a cluster, through the Argo server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgefed.workflows.cli.common import console, err_console, fail, fail_with, load, parse_parameters
from edgefed.workflows.cluster.errors import DEFAULT_TOKEN_ENV, WatchCancelledError
from edgefed.workflows.cluster.executor import ArgoExecutor, ArgoOptions
from edgefed.workflows.cluster.submit import submit_task
from edgefed.workflows.cluster.transport import normalize_server, read_token
from edgefed.workflows.errors import EdgefedError, ExitCode

if TYPE_CHECKING:
    from edgefed.workflows.driver import RoundReport

__all__ = ["register", "submit"]


def submit(
    task_file: Annotated[Path, typer.Argument(help="FederatedTask YAML")],
    argo_server: Annotated[
        str,
        typer.Option(
            "--argo-server", envvar="ARGO_SERVER", help="Argo server URL, e.g. https://argo.example.com:2746"
        ),
    ],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", envvar="ARGO_NAMESPACE", help="namespace the workflows run in")
    ] = "argo",
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help=f"file holding the bearer token (default: ${DEFAULT_TOKEN_ENV})"),
    ] = None,
    insecure_skip_verify: Annotated[
        bool, typer.Option("--insecure-skip-verify", help="do not verify the server's TLS certificate")
    ] = False,
    parameter: Annotated[
        list[str] | None,
        typer.Option("--parameter", "-p", help="workflow parameter override NAME=VALUE (repeatable)"),
    ] = None,
    poll: Annotated[
        float, typer.Option("--poll", min=0.1, help="first seconds between status polls (grows to 8x)")
    ] = 2.0,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="seconds to watch one round's workflow at most")
    ] = 3600,
    retries: Annotated[
        int, typer.Option("--retries", min=0, help="retries of 5xx and connection errors")
    ] = 3,
) -> None:
    """Run a task's rounds on a cluster through the Argo server; resumes after the last succeeded round.

    The token is read from $ARGO_TOKEN or --token-file, never from the command line. TLS is
    verified (REQUESTS_CA_BUNDLE names a private CA) unless --insecure-skip-verify is given.
    """
    try:
        task = load(task_file)
        token = read_token(token_file)
        parameters = parse_parameters(parameter)
        server = normalize_server(argo_server)
    except OSError as err:
        raise fail_with(f"cannot read {err.filename}: {err.strerror}", ExitCode.INVALID) from None
    except ValueError as err:
        raise fail_with(str(err), ExitCode.INVALID) from None
    except EdgefedError as err:
        raise fail(err) from None
    if insecure_skip_verify:
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        err_console.print("warning: TLS certificate verification is off (--insecure-skip-verify)")
    if token is None:
        err_console.print(f"note: no token (${DEFAULT_TOKEN_ENV} unset, no --token-file): sending none")

    def on_phase(name: str, phase: str) -> None:
        console.print(f"  {name}: {phase}", style="dim", highlight=False)

    def on_round(report: RoundReport) -> None:
        acc = f"{report.accuracy:.4f}" if report.accuracy is not None else "-"
        loss = f"{report.loss:.4f}" if report.loss is not None else "-"
        missing = f"  (sat out: {', '.join(report.missing)})" if report.missing else ""
        console.print(
            f"round {report.round:>3}  accuracy {acc}  loss {loss}  edges {report.contributors}"
            f"  {report.seconds:.2f}s  {report.workflow}{missing}",
            highlight=False,
        )

    options = ArgoOptions(verify_ssl=not insecure_skip_verify, poll=poll, timeout=timeout, retries=retries)
    executor = ArgoExecutor(server, namespace, token=token, options=options, on_phase=on_phase)
    try:
        done = executor.last_succeeded_round(task.name)
        if done:
            console.print(f"task {task.name}: resuming after succeeded round {done} (from Argo)")
        result = submit_task(task, executor, parameters=parameters, on_round=on_round)
    except WatchCancelledError as err:
        raise fail_with(
            f"{err}; run the same command again to resume watching", ExitCode.INTERRUPTED
        ) from None
    except KeyboardInterrupt:
        where = (
            f"workflow {executor.active} keeps running on the cluster" if executor.active else "interrupted"
        )
        raise fail_with(
            f"{where}; committed rounds are kept, run the same command again to resume", ExitCode.INTERRUPTED
        ) from None
    except EdgefedError as err:
        raise fail(err) from None
    finally:
        executor.close()
    console.print(f"task {result.task}: stopped after round {result.last_round}: {result.stop_reason}")


def register(app: typer.Typer) -> None:
    """Add the ``submit`` command to ``app``."""
    app.command("submit")(submit)
