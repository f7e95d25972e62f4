"""``edgefed submit``: run a FederatedTask's rounds on a Kubernetes cluster through the Argo server.

The round loop is :class:`~edgefed.workflows.driver.TaskDriver`'s; this module supplies the two
things it needs to talk to Argo instead of the embedded engine:

* :class:`ArgoExecutor`, a :class:`~edgefed.workflows.driver.RoundExecutor`: sets a round
  document's ``spec.arguments.parameters``, creates it with Hera's ``WorkflowsService`` (the
  server assigns the name from ``generateName``), polls ``get_workflow`` with a growing but bounded
  interval under an overall timeout, and returns the workflow's ``status.outputs.parameters`` (the
  ``globalName`` outputs) or, on failure, ``status.message`` with the failed nodes' messages.
  :meth:`ArgoExecutor.ensure_template` creates or updates a WorkflowTemplate (409 on create → get
  + update with the server's ``resourceVersion``).
* :class:`ArgoHistory`, the registry-shaped view of the task's Succeeded round workflows
  (labels ``edgefed.io/task`` / ``edgefed.io/round``), so ``submit`` resumes after the last
  succeeded round without store credentials.

Transport rules: 5xx (but 501) and connection errors are retried with exponential backoff up to
``retries`` times; other 4xx are not (409 only where create-or-update handles it); 401/403 raise
:class:`ArgoAuthError`. A workflow create that may have reached the server (5xx, lost response)
is never blindly repeated: each create carries a one-off ``edgefed.io/submission`` label, and a
retry first looks that label up. The token goes only into the ``Authorization`` header; it is
scrubbed from every error message this module raises or logs.

A watch stops promptly on ``executor.cancel.set()`` or Ctrl-C, raising
:class:`WatchCancelledError` with the workflow's name: the workflow keeps running on the cluster,
and the next ``submit`` of the task watches it instead of submitting its round again.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import requests
import typer
from hera.exceptions import HeraException

from edgefed.workflows.errors import EdgefedError, ExitCode

# Hera's models and service, the driver and the builder load on first use: importing this module
# (the CLI does, to register the command) stays as cheap as typer and requests.
if TYPE_CHECKING:
    from hera.workflows.models import Workflow as WorkflowModel

    from edgefed.workflows.driver import RoundOutcome, RoundReport, TaskResult
    from edgefed.workflows.spec import FederatedTask

__all__ = [
    "DEFAULT_TOKEN_ENV",
    "LABEL_SUBMISSION",
    "PHASE_LABEL",
    "ArgoAuthError",
    "ArgoConflictError",
    "ArgoError",
    "ArgoExecutor",
    "ArgoHistory",
    "ArgoRequestError",
    "ArgoUnavailableError",
    "WatchCancelledError",
    "WatchTimeoutError",
    "apply_parameters",
    "failure_message",
    "normalize_server",
    "read_token",
    "register",
    "submit",
    "submit_task",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Environment variable the token is read from (the same one the ``argo`` CLI reads).
DEFAULT_TOKEN_ENV = "ARGO_TOKEN"
#: One-off label on every created workflow: makes a retried create idempotent.
LABEL_SUBMISSION = "edgefed.io/submission"
#: Label Argo's controller keeps in step with a workflow's phase.
PHASE_LABEL = "workflows.argoproj.io/phase"
SUCCEEDED = "Succeeded"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Error"})
_MAX_BACKOFF = 30.0
_MAX_POLL = 30.0
_LIST_PAGE = "200"
_FAILED_NODES_SHOWN = 5
_CONTAINER_NODES = frozenset({"DAG", "Steps", "StepGroup", "TaskGroup", "Retry"})


# -- errors ---------------------------------------------------------------------------------
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


# -- helpers --------------------------------------------------------------------------------
def normalize_server(url: str) -> str:
    """``https://host[:port][/prefix]`` with a trailing slash, so Hera's ``urljoin`` keeps the prefix."""
    url = url.strip()
    if "://" not in url:
        url = f"https://{url}"
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the Argo server URL must be http:// or https://, got {url!r}")
    return url if url.endswith("/") else f"{url}/"


def read_token(token_file: Path | None = None, env: str = DEFAULT_TOKEN_ENV) -> str | None:
    """The bearer token from ``token_file`` or else environment variable ``env``; None when neither."""
    if token_file is not None:
        token = token_file.read_text().strip()
        if not token:
            raise ArgoError(f"token file {token_file} is empty")
        return token
    token = os.environ.get(env, "").strip()
    return token or None


def apply_parameters(document: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``document`` with ``spec.arguments.parameters`` values set (appended when new),
    as ``argo submit -p`` does."""
    doc = copy.deepcopy(dict(document))
    params = doc.setdefault("spec", {}).setdefault("arguments", {}).setdefault("parameters", [])
    by_name = {p.get("name"): p for p in params}
    for name, value in parameters.items():
        if name in by_name:
            by_name[name]["value"] = str(value)
        else:
            params.append({"name": name, "value": str(value)})
    return doc


def _parameter_map(params: Any) -> dict[str, str]:
    return {p.name: (p.value if p.value is not None else "") for p in params or [] if p.name}


def _time(value: Any) -> datetime | None:
    root = getattr(value, "root", value)
    return root if isinstance(root, datetime) else None


def _stamp(value: Any) -> float:
    stamp = _time(value)
    return stamp.timestamp() if stamp else 0.0


def _node_label(node: Any) -> str:
    inputs = _parameter_map(node.inputs.parameters if node.inputs else None)
    if "edge" in inputs and node.template_name:
        return f"{node.template_name} (edge {inputs['edge']})"
    return node.display_name or node.name


def failure_message(workflow: WorkflowModel) -> str:
    """``status.message`` plus the failed leaf nodes (latest first) with their messages."""
    status = workflow.status
    if status is None:
        return "the workflow has no status"
    nodes = status.nodes or {}
    failed = {node_id for node_id, n in nodes.items() if n.phase in ("Failed", "Error")}
    leaves = [
        n
        for node_id, n in nodes.items()
        if node_id in failed
        and n.type not in _CONTAINER_NODES
        and not any(child in failed for child in n.children or [])
    ]
    leaves.sort(key=lambda n: _stamp(n.finished_at), reverse=True)
    lines: list[str] = []
    for node in leaves:
        line = f"{_node_label(node)}: {node.message or node.phase}"
        if line not in lines:
            lines.append(line)
    head = status.message or f"workflow {status.phase or 'failed'}"
    if not lines:
        return head
    more = f" (and {len(lines) - _FAILED_NODES_SHOWN} more)" if len(lines) > _FAILED_NODES_SHOWN else ""
    return f"{head}; failed: {'; '.join(lines[:_FAILED_NODES_SHOWN])}{more}"


def _outcome(workflow: WorkflowModel, started: float) -> RoundOutcome:
    from edgefed.workflows.driver import RoundOutcome

    status = workflow.status
    phase = status.phase if status else None
    outputs = _parameter_map(status.outputs.parameters if status and status.outputs else None)
    begin, end = (_time(status.started_at), _time(status.finished_at)) if status else (None, None)
    seconds = (end - begin).total_seconds() if begin and end else time.monotonic() - started
    train_seconds: dict[str, float] = {}
    for node in (status.nodes or {}).values() if status else ():
        if node.template_name == "train" and node.type == "Pod" and node.phase == SUCCEEDED:
            inputs = _parameter_map(node.inputs.parameters if node.inputs else None)
            outs = _parameter_map(node.outputs.parameters if node.outputs else None)
            with contextlib.suppress(KeyError, ValueError):
                train_seconds[inputs["edge"]] = float(outs["train-seconds"])
    succeeded = phase == SUCCEEDED
    return RoundOutcome(
        workflow=workflow.metadata.name or "",
        succeeded=succeeded,
        message="" if succeeded else failure_message(workflow),
        outputs=outputs,
        seconds=seconds,
        train_seconds=train_seconds,
    )


class _Session(requests.Session):
    """A session with a default request timeout that remembers each thread's last HTTP status
    (Hera raises a bare ``HeraException`` for statuses it has no class for, such as 503)."""

    def __init__(self, timeout: float | tuple[float, float]) -> None:
        super().__init__()
        self.default_timeout = timeout
        self._local = threading.local()

    @property
    def last_status(self) -> int | None:
        return getattr(self._local, "status", None)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self._local.status = None
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        response = super().request(method, url, *args, **kwargs)
        self._local.status = response.status_code
        return response


# -- the executor ---------------------------------------------------------------------------
class ArgoExecutor:
    """Runs round workflows on an Argo server (a :class:`~edgefed.workflows.driver.RoundExecutor`).

    ``token``: the bearer token (``None``: Hera's global config token, if any, else none).
    ``verify_ssl``: TLS certificate verification, on unless turned off explicitly.
    ``poll``: first interval between ``get_workflow`` polls; it grows ×1.5 up to ``max_poll``
    (default ``min(8 × poll, 30 s)``). ``timeout``: how long one workflow is watched, at most.
    ``retries``/``backoff``: retries of 5xx and connection errors, waiting ``backoff × 2^n`` s.
    ``adopt``: before creating a round's workflow, watch one of the same task and round that is
    still Pending/Running instead (one left behind by an interrupted ``submit``).
    """

    def __init__(
        self,
        server: str,
        namespace: str,
        *,
        token: str | None,
        verify_ssl: bool = True,
        poll: float = 2.0,
        timeout: float = 3600,
        retries: int = 3,
        backoff: float = 1.0,
        max_poll: float | None = None,
        request_timeout: float = 30.0,
        adopt: bool = True,
        cancel: threading.Event | None = None,
        on_phase: Callable[[str, str], None] | None = None,
        token_env: str = DEFAULT_TOKEN_ENV,
    ) -> None:
        if poll <= 0 or timeout <= 0 or retries < 0 or backoff < 0:
            raise ValueError("poll and timeout must be > 0, retries and backoff >= 0")
        self.server = normalize_server(server)
        self.namespace = namespace
        self.poll = poll
        self.max_poll = max(poll, max_poll if max_poll is not None else min(8 * poll, _MAX_POLL))
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.adopt = adopt
        self.cancel = cancel if cancel is not None else threading.Event()
        self.on_phase = on_phase
        self.token_env = token_env
        self.active: str | None = None  # the workflow being watched, if any
        self._secret = token.strip() if token else None
        self._session = _Session((min(10.0, request_timeout), request_timeout))
        from hera.workflows import WorkflowsService

        # The token goes to the service (per instance), not to Hera's process-wide global_config.
        self.service = WorkflowsService(
            host=self.server,
            verify_ssl=verify_ssl,
            token=self._secret,
            namespace=namespace,
            session=self._session,
        )

    @property
    def verify_ssl(self) -> bool:
        return bool(self.service.verify_ssl)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ArgoExecutor:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows the token
        return f"ArgoExecutor(server={self.server!r}, namespace={self.namespace!r}, verify_ssl={self.verify_ssl})"

    # -- transport ---------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, returning early (with :class:`WatchCancelledError`) on cancel."""
        if self.cancel.wait(max(0.0, seconds)):
            raise WatchCancelledError(self.active, self.namespace)

    def _call(self, action: str, fn: Callable[[], T], *, recover: Callable[[], T | None] | None = None) -> T:
        """``fn()`` with the retry policy; ``recover()`` runs before each retry and may return
        the result instead (for creates whose first attempt may have taken effect)."""
        attempt = 0
        while True:
            if self.cancel.is_set():
                raise WatchCancelledError(self.active, self.namespace)
            try:
                return fn()
            except HeraException as err:
                status = self._session.last_status or getattr(err, "status_code", None)
                detail = self._scrub(str(err))
                if status in (401, 403):
                    raise ArgoAuthError(status, action, self.namespace, self.token_env) from None
                if status == 409:
                    raise ArgoConflictError(action, status, detail) from None
                if status is None or status < 500 or status == 501:
                    raise ArgoRequestError(action, status, detail) from None
                reason = f"HTTP {status}"
                if attempt >= self.retries:
                    raise ArgoUnavailableError(
                        f"cannot {action}: the Argo server kept failing ({detail}) after {attempt + 1} attempt(s)"
                    ) from None
            except requests.exceptions.SSLError as err:
                raise ArgoUnavailableError(
                    f"cannot {action}: TLS verification of {self.server} failed ({self._scrub(str(err))}); "
                    "point REQUESTS_CA_BUNDLE at the server's CA, or pass --insecure-skip-verify"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as err:
                reason = type(err).__name__
                if attempt >= self.retries:
                    raise ArgoUnavailableError(
                        f"cannot {action}: cannot reach the Argo server at {self.server} "
                        f"({self._scrub(str(err))}) after {attempt + 1} attempt(s)"
                    ) from None
            except (requests.RequestException, ValueError) as err:  # incl. pydantic's ValidationError
                raise ArgoRequestError(
                    action,
                    self._session.last_status,
                    f"unexpected response from {self.server} (is it the Argo server's URL?): "
                    f"{self._scrub(str(err))[:300]}",
                ) from None
            delay = min(self.backoff * 2**attempt, _MAX_BACKOFF)
            attempt += 1
            log.warning("%s: %s; retry %d/%d in %.2fs", action, reason, attempt, self.retries, delay)
            self._wait(delay)
            if recover is not None:
                found = recover()
                if found is not None:
                    return found

    # -- workflow templates ------------------------------------------------------------------
    def ensure_template(self, template_doc: Mapping[str, Any]) -> dict[str, Any]:
        """Create WorkflowTemplate ``template_doc`` or, if it exists (409), update it with the
        server's ``resourceVersion``; returns the server's template document."""
        from hera.workflows.models import (
            WorkflowTemplate,
            WorkflowTemplateCreateRequest,
            WorkflowTemplateUpdateRequest,
        )

        doc = copy.deepcopy(dict(template_doc))
        meta = doc.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise ArgoError("a WorkflowTemplate needs metadata.name (generateName is not allowed)")
        meta["namespace"] = self.namespace
        meta.pop("resourceVersion", None)
        doc.setdefault("apiVersion", "argoproj.io/v1alpha1")
        doc["kind"] = "WorkflowTemplate"
        try:
            created = self._call(
                f"create workflow template {name}",
                lambda: self.service.create_workflow_template(
                    WorkflowTemplateCreateRequest(
                        namespace=self.namespace, template=WorkflowTemplate.model_validate(doc)
                    )
                ),
            )
            log.info("created workflow template %s", name)
            return _dump(created)
        except ArgoConflictError:
            pass
        for attempt in range(self.retries + 1):
            current = self._call(
                f"get workflow template {name}", lambda: self.service.get_workflow_template(name)
            )
            meta["resourceVersion"] = current.metadata.resource_version
            try:
                updated = self._call(
                    f"update workflow template {name}",
                    lambda: self.service.update_workflow_template(
                        name,
                        WorkflowTemplateUpdateRequest(
                            name=name, namespace=self.namespace, template=WorkflowTemplate.model_validate(doc)
                        ),
                    ),
                )
            except ArgoConflictError:  # modified between our get and update: read it again
                if attempt >= self.retries:
                    raise
                continue
            log.info("updated workflow template %s (resourceVersion %s)", name, meta["resourceVersion"])
            return _dump(updated)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- workflows ---------------------------------------------------------------------------
    def list_workflows(self, selector: str) -> Iterator[WorkflowModel]:
        """Workflows matching label ``selector``, page by page, without ``status.nodes``."""
        token: str | None = None
        while True:
            page = self._call(
                f"list workflows ({selector})",
                lambda token=token: self.service.list_workflows(  # type: ignore[misc]
                    label_selector=selector, fields="-items.status.nodes", limit=_LIST_PAGE, continue_=token
                ),
            )
            yield from page.items or []
            token = page.metadata.continue_ if page.metadata else None
            if not token:
                return

    def round_workflows(self, task: str, phase: str | None = SUCCEEDED) -> dict[int, WorkflowModel]:
        """The task's round workflows in ``phase`` by round (round 0: the initial model); when a
        round has several, the latest created wins."""
        from edgefed.workflows.builder import LABEL_ROUND, LABEL_TASK

        selector = f"{LABEL_TASK}={task}" + (f",{PHASE_LABEL}={phase}" if phase else "")
        rounds: dict[int, WorkflowModel] = {}
        for workflow in self.list_workflows(selector):
            labels = workflow.metadata.labels or {}
            wf_phase = workflow.status.phase if workflow.status else None
            if phase is not None and wf_phase != phase:
                continue
            try:
                round_ = int(labels[LABEL_ROUND])
            except (KeyError, ValueError):
                continue
            previous = rounds.get(round_)
            if previous is None or _created(workflow) >= _created(previous):
                rounds[round_] = workflow
        return rounds

    def last_succeeded_round(self, task: str) -> int | None:
        """The highest round of ``task`` whose workflow Succeeded (0: only the initial model)."""
        rounds = self.round_workflows(task)
        return max(rounds) if rounds else None

    def _live(self, labels: Mapping[str, str]) -> WorkflowModel | None:
        from edgefed.workflows.builder import LABEL_ROUND, LABEL_TASK

        task, round_ = labels.get(LABEL_TASK), labels.get(LABEL_ROUND)
        if not task or round_ is None:
            return None
        live = [
            w
            for w in self.list_workflows(f"{LABEL_TASK}={task},{LABEL_ROUND}={round_}")
            if (w.status.phase if w.status else None) not in TERMINAL_PHASES
        ]
        return max(live, key=_created) if live else None

    def _create(self, document: dict[str, Any]) -> WorkflowModel:
        from hera.workflows.models import Workflow, WorkflowCreateRequest

        key = uuid.uuid4().hex
        document.setdefault("metadata", {}).setdefault("labels", {})[LABEL_SUBMISSION] = key
        request = WorkflowCreateRequest(namespace=self.namespace, workflow=Workflow.model_validate(document))
        what = document["metadata"].get("name") or document["metadata"].get("generateName") or "workflow"

        def recover() -> WorkflowModel | None:
            # The failed attempt may have created the workflow: never create it twice.
            return next(iter(self.list_workflows(f"{LABEL_SUBMISSION}={key}")), None)

        return self._call(
            f"create workflow {what}", lambda: self.service.create_workflow(request), recover=recover
        )

    def watch(self, name: str) -> WorkflowModel:
        """Poll workflow ``name`` until it is Succeeded, Failed or Error (bounded by ``timeout``)."""
        deadline = time.monotonic() + self.timeout
        interval = self.poll
        last_phase: str | None = None
        self.active = name
        try:
            while True:
                workflow = self._call(f"get workflow {name}", lambda: self.service.get_workflow(name))
                phase = (workflow.status.phase if workflow.status else None) or ""
                if phase != last_phase:
                    log.info("workflow %s: %s", name, phase or "Pending")
                    if self.on_phase is not None:
                        self.on_phase(name, phase or "Pending")
                    last_phase = phase
                if phase in TERMINAL_PHASES:
                    return workflow
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WatchTimeoutError(name, phase, self.timeout)
                self._wait(min(interval, remaining))
                interval = min(interval * 1.5, self.max_poll)
        except KeyboardInterrupt:
            raise WatchCancelledError(name, self.namespace) from None
        except ArgoUnavailableError as err:
            lost = ArgoUnavailableError(f"{err}; workflow {name} keeps running on the cluster")
            lost.workflow = name
            raise lost from None
        finally:
            self.active = None

    def execute(self, document: dict[str, Any], parameters: dict[str, str]) -> RoundOutcome:
        """Create ``document`` with ``parameters`` set and watch it to the end."""
        started = time.monotonic()
        doc = apply_parameters(document, parameters)
        labels = doc.get("metadata", {}).get("labels") or {}
        existing = self._live(labels) if self.adopt else None
        if existing is not None:
            name = existing.metadata.name or ""
            log.warning("watching %s, left running by an earlier submit, instead of creating it again", name)
        else:
            name = self._create(doc).metadata.name or ""
            log.info("created workflow %s in namespace %s", name, self.namespace)
        if self.on_phase is not None:
            self.on_phase(name, "Adopted" if existing is not None else "Submitted")
        return _outcome(self.watch(name), started)


def _created(workflow: WorkflowModel) -> tuple[float, str]:
    return (_stamp(workflow.metadata.creation_timestamp), workflow.metadata.name or "")


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


# -- resume from Argo -----------------------------------------------------------------------
class ArgoHistory:
    """The task's history as Argo keeps it, shaped like the part of
    :class:`~edgefed.steps.registry.ModelRegistry` the driver reads.

    A round counts as committed when its workflow Succeeded (its aggregate step committed the
    model first). Evaluations are the Succeeded workflows' ``accuracy``/``loss`` outputs. Argo
    only knows the workflows it still keeps (live or archived): when they are garbage-collected
    (``ttlStrategy``), the model registry is the source of truth.
    """

    def __init__(self, executor: ArgoExecutor) -> None:
        self.executor = executor
        self._rounds: dict[str, dict[int, WorkflowModel]] = {}

    def refresh(self, task: str) -> dict[int, WorkflowModel]:
        self._rounds[task] = self.executor.round_workflows(task)
        return self._rounds[task]

    def committed_rounds(self, task: str) -> list[int]:
        return sorted(self.refresh(task))

    def last_round(self, task: str) -> int | None:
        rounds = self.refresh(task)
        return max(rounds) if rounds else None

    def evaluation(self, task: str, round_: int) -> dict[str, Any] | None:
        rounds = self._rounds.get(task)
        if rounds is None:
            rounds = self.refresh(task)
        workflow = rounds.get(round_)
        if workflow is None or workflow.status is None or workflow.status.outputs is None:
            return None
        outputs = _parameter_map(workflow.status.outputs.parameters)
        try:
            accuracy = float(outputs.get("accuracy") or "")
        except ValueError:
            return None
        evaluation: dict[str, Any] = {"accuracy": accuracy, "workflow": workflow.metadata.name}
        try:
            evaluation["loss"] = float(outputs.get("loss") or "")
        except ValueError:
            evaluation["loss"] = None
        return evaluation


def submit_task(
    task: FederatedTask,
    executor: ArgoExecutor,
    *,
    parameters: Mapping[str, str] | None = None,
    on_round: Callable[[RoundReport], None] | None = None,
) -> TaskResult:
    """Run ``task``'s rounds through ``executor``, resuming after its last Succeeded round.

    The task's round WorkflowTemplate is created (or updated) first; each round is then a small
    Workflow referencing it, labelled with task and round.
    """
    from edgefed.workflows.builder import round_submission, round_template, to_document
    from edgefed.workflows.driver import TaskDriver

    executor.ensure_template(to_document(round_template(task)))
    driver = TaskDriver(
        task,
        executor=executor,
        registry=ArgoHistory(executor),  # see ArgoHistory
        parameters=parameters,
        on_round=on_round,
        build_round=lambda t, r: to_document(round_submission(t, r)),
    )
    return driver.run()


# -- CLI ------------------------------------------------------------------------------------
def _parse_parameters(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--parameter takes NAME=VALUE, got {item!r}")
        out[name] = value
    return out


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
    from rich.console import Console
    from rich.markup import escape

    from edgefed.workflows.spec import load_task

    console, err_console = Console(), Console(stderr=True)

    def fail(message: str, code: ExitCode) -> typer.Exit:
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
        return typer.Exit(int(code))

    try:
        task = load_task(task_file)
        token = read_token(token_file)
        parameters = _parse_parameters(parameter)
        server = normalize_server(argo_server)
    except OSError as err:
        raise fail(f"cannot read {err.filename}: {err.strerror}", ExitCode.INVALID) from None
    except ValueError as err:
        raise fail(str(err), ExitCode.INVALID) from None
    except EdgefedError as err:
        raise fail(str(err), err.exit_code) from None
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

    executor = ArgoExecutor(
        server,
        namespace,
        token=token,
        verify_ssl=not insecure_skip_verify,
        poll=poll,
        timeout=timeout,
        retries=retries,
        on_phase=on_phase,
    )
    try:
        done = executor.last_succeeded_round(task.name)
        if done:
            console.print(f"task {task.name}: resuming after succeeded round {done} (from Argo)")
        result = submit_task(task, executor, parameters=parameters, on_round=on_round)
    except WatchCancelledError as err:
        raise fail(f"{err}; run the same command again to resume watching", ExitCode.INTERRUPTED) from None
    except KeyboardInterrupt:
        where = (
            f"workflow {executor.active} keeps running on the cluster" if executor.active else "interrupted"
        )
        raise fail(
            f"{where}; committed rounds are kept, run the same command again to resume", ExitCode.INTERRUPTED
        ) from None
    except EdgefedError as err:
        raise fail(str(err), err.exit_code) from None
    finally:
        executor.close()
    console.print(f"task {result.task}: stopped after round {result.last_round}: {result.stop_reason}")


def register(app: typer.Typer) -> None:
    """Add the ``submit`` command to ``app``."""
    app.command("submit")(submit)
