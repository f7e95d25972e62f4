"""Errors talking to an Argo server: one base, every message naming the workflow or action concerned."""

from __future__ import annotations

from edgefed.workflows.errors import EdgefedError, ExitCode

__all__ = [
    "DEFAULT_TOKEN_ENV",
    "ArgoAuthError",
    "ArgoConflictError",
    "ArgoError",
    "ArgoRejectedError",
    "ArgoRequestError",
    "ArgoUnavailableError",
    "TaskFailedError",
    "WatchCancelledError",
    "WatchTimeoutError",
    "WorkflowGoneError",
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
        self.detail = detail
        super().__init__(f"cannot {action}: {detail}")


class ArgoConflictError(ArgoRequestError):
    """409: the object exists already, or was modified since it was read."""


class ArgoRejectedError(ArgoError):
    """The Argo server refused to create a workflow as invalid (400; 404: a WorkflowTemplate it does
    not know). Nothing was created."""

    exit_code = ExitCode.INVALID

    def __init__(self, workflow: str, status: int, detail: str) -> None:
        self.workflow = workflow
        self.status = status
        self.detail = detail
        super().__init__(f"the Argo server rejected workflow {workflow} ({status}): {detail}")


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


class TaskFailedError(ArgoError):
    """The task Workflow ended Failed or Error. ``message`` names the failed round and its failed nodes."""

    def __init__(self, task: str, workflow: str, phase: str, message: str) -> None:
        self.task = task
        self.workflow = workflow
        self.phase = phase
        super().__init__(f"task {task} {phase.lower()} (workflow {workflow}): {message}")


class WorkflowGoneError(ArgoError):
    """The watched workflow was deleted (``argo delete``, ``kubectl delete``) before it ended."""

    def __init__(self, workflow: str, namespace: str, hint: str = "") -> None:
        self.workflow = workflow
        super().__init__(
            f"workflow {workflow} was deleted from namespace {namespace} before it ended"
            + (f"; {hint}" if hint else "")
        )
