"""Errors talking to an Argo server: one base, every message naming the workflow or action concerned."""

from __future__ import annotations

from edgefed.workflows.errors import EdgefedError, ExitCode

__all__ = [
    "DEFAULT_TOKEN_ENV",
    "ArgoAuthError",
    "ArgoConflictError",
    "ArgoError",
    "ArgoRequestError",
    "ArgoUnavailableError",
    "WatchCancelledError",
    "WatchTimeoutError",
]

#: Environment variable the token is read from (the same one the ``argo`` CLI reads).
DEFAULT_TOKEN_ENV = "ARGO_TOKEN"


class ArgoError(EdgefedError):
    """Base of every error talking to the Argo server. ``workflow`` names the one concerned."""

    workflow: str | None = None


class ArgoAuthError(ArgoError):
    """The Argo server refused the token (401) or the token may not do what was asked (403)."""

    def __init__(self, status: int, action: str, namespace: str, token_env: str = DEFAULT_TOKEN_ENV) -> None:
        self.status = status
        if status == 401:
            hint = f"set {token_env} (or --token-file) to a valid token, e.g. the output of `argo auth token`"
        else:
            hint = f"the token's service account may not {action} in namespace {namespace!r}"
        super().__init__(f"the Argo server refused the token ({status}): {hint}")


class ArgoRequestError(ArgoError):
    """The Argo server answered a request with an error that retrying does not fix."""

    def __init__(self, action: str, status: int | None, detail: str) -> None:
        self.status = status
        self.action = action
        super().__init__(f"cannot {action}: {detail}")


class ArgoConflictError(ArgoRequestError):
    """409: the object exists already, or was modified since it was read."""


class ArgoUnavailableError(ArgoError):
    """The Argo server could not be reached, or kept failing (5xx), after every retry."""


class WatchTimeoutError(ArgoError):
    """A workflow did not finish within the watch timeout; it keeps running on the cluster."""

    def __init__(self, workflow: str, phase: str, timeout: float) -> None:
        self.workflow = workflow
        super().__init__(
            f"workflow {workflow} is still {phase or 'Pending'} after {timeout:g}s; it keeps running "
            "on the cluster, and submitting the task again watches it instead of resubmitting"
        )


class WatchCancelledError(ArgoError):
    """Watching was cancelled (Ctrl-C or the executor's ``cancel`` event)."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, workflow: str | None, namespace: str) -> None:
        self.workflow = workflow
        self.namespace = namespace
        where = (
            f"workflow {workflow} keeps running on the cluster (namespace {namespace})"
            if workflow
            else "no workflow was being watched"
        )
        super().__init__(f"stopped watching: {where}")
