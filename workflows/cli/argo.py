"""What ``edgefed submit`` and ``edgefed status`` share: the Argo server options and the client they open."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgefed.workflows.cli.common import err_console, fail, fail_with
from edgefed.workflows.cluster.errors import DEFAULT_TOKEN_ENV
from edgefed.workflows.errors import EdgefedError, ExitCode

if TYPE_CHECKING:
    from edgefed.workflows.cluster.client import ArgoClient

__all__ = [
    "ArgoServerOption",
    "InsecureOption",
    "NamespaceOption",
    "RetriesOption",
    "TokenFileOption",
    "invalid_input",
    "open_client",
]

ArgoServerOption = Annotated[
    str,
    typer.Option(
        "--argo-server", envvar="ARGO_SERVER", help="Argo server URL, e.g. https://argo.example.com:2746"
    ),
]
NamespaceOption = Annotated[
    str, typer.Option("--namespace", "-n", envvar="ARGO_NAMESPACE", help="namespace the workflows run in")
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option("--token-file", help=f"file holding the bearer token (default: ${DEFAULT_TOKEN_ENV})"),
]
InsecureOption = Annotated[
    bool, typer.Option("--insecure-skip-verify", help="do not verify the server's TLS certificate")
]
RetriesOption = Annotated[int, typer.Option("--retries", min=0, help="retries of 5xx and connection errors")]


@contextmanager
def invalid_input() -> Iterator[None]:
    """Errors reading a command's input (files, options) exit "invalid input"; a control-plane error
    with the exit code of its own."""
    try:
        yield
    except OSError as err:
        raise fail_with(f"cannot read {err.filename}: {err.strerror}", ExitCode.INVALID) from None
    except ValueError as err:
        raise fail_with(str(err), ExitCode.INVALID) from None
    except EdgefedError as err:
        raise fail(err) from None


def open_client(
    argo_server: str,
    namespace: str,
    *,
    token_file: Path | None,
    insecure_skip_verify: bool,
    retries: int,
    poll: float = 2.0,
    timeout: float = 24 * 3600,
) -> ArgoClient:
    """An :class:`ArgoClient` of the options; bad options exit with "invalid input".

    The token is read from ``$ARGO_TOKEN`` or ``--token-file``, never from the command line. TLS is
    verified (``REQUESTS_CA_BUNDLE`` names a private CA) unless ``--insecure-skip-verify``.
    """
    from edgefed.workflows.cluster.client import ArgoClient, ArgoOptions
    from edgefed.workflows.cluster.transport import normalize_server, read_token

    with invalid_input():
        token = read_token(token_file)
        server = normalize_server(argo_server)
    if insecure_skip_verify:
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        err_console.print("warning: TLS certificate verification is off (--insecure-skip-verify)")
    if token is None:
        err_console.print(f"note: no token (${DEFAULT_TOKEN_ENV} unset, no --token-file): sending none")
    options = ArgoOptions(verify_ssl=not insecure_skip_verify, poll=poll, timeout=timeout, retries=retries)
    return ArgoClient(server, namespace, token=token, options=options)
