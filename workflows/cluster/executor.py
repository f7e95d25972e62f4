"""Round workflows on an Argo server: :class:`ArgoExecutor`, a :class:`~edgefed.workflows.driver.RoundExecutor`.

It sets a round document's ``spec.arguments.parameters``, creates it with Hera's ``WorkflowsService``
(the server assigns the name from ``generateName``), polls ``get_workflow`` with a growing but
bounded interval under an overall timeout, and returns the workflow's ``status.outputs.parameters``
(the ``globalName`` outputs) or, on failure, ``status.message`` with the failed nodes' messages.
:meth:`ArgoExecutor.ensure_template` creates or updates a WorkflowTemplate (409 on create → get +
update with the server's ``resourceVersion``).

A workflow create that may have reached the server (5xx, lost response) is never blindly repeated:
each create carries a one-off ``edgefed.io/submission`` label, and a retry first looks that label up.
A watch stops promptly on ``executor.cancel.set()`` or Ctrl-C, raising :class:`WatchCancelledError`
with the workflow's name: the workflow keeps running on the cluster, and the next ``submit`` of the
task watches it instead of submitting its round again.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edgefed.workflows.build.names import LABEL_ROUND, LABEL_TASK
from edgefed.workflows.cluster.errors import (
    DEFAULT_TOKEN_ENV,
    ArgoConflictError,
    ArgoError,
    ArgoUnavailableError,
    WatchCancelledError,
    WatchTimeoutError,
)
from edgefed.workflows.cluster.transport import ArgoConnection
from edgefed.workflows.phases import Phase

# Hera's models and the driver load on first use: importing this module stays cheap.
if TYPE_CHECKING:
    from hera.workflows.models import Workflow as WorkflowModel

    from edgefed.workflows.driver import RoundOutcome

__all__ = [
    "LABEL_SUBMISSION",
    "PHASE_LABEL",
    "ArgoExecutor",
    "ArgoOptions",
    "apply_parameters",
    "failure_message",
    "parameter_map",
]

log = logging.getLogger(__name__)

#: One-off label on every created workflow: makes a retried create idempotent.
LABEL_SUBMISSION = "edgefed.io/submission"
#: Label Argo's controller keeps in step with a workflow's phase.
PHASE_LABEL = "workflows.argoproj.io/phase"
_MAX_POLL = 30.0
_LIST_PAGE = "200"
_FAILED_NODES_SHOWN = 5
_CONTAINER_NODES = frozenset({"DAG", "Steps", "StepGroup", "TaskGroup", "Retry"})


@dataclass(frozen=True, kw_only=True)
class ArgoOptions:
    """How :class:`ArgoExecutor` talks to the server and watches workflows.

    ``verify_ssl``: TLS certificate verification, on unless turned off explicitly.
    ``poll``: first interval between ``get_workflow`` polls; it grows ×1.5 up to ``max_poll``
    (default ``min(8 × poll, 30 s)``). ``timeout``: how long one workflow is watched, at most.
    ``retries``/``backoff``: retries of 5xx and connection errors, waiting ``backoff × 2^n`` s.
    ``request_timeout``: seconds one HTTP request may take. ``adopt``: before creating a round's
    workflow, watch one of the same task and round that is still Pending/Running instead (one left
    behind by an interrupted ``submit``). ``token_env``: named in the hint of a refused token.
    """

    verify_ssl: bool = True
    poll: float = 2.0
    timeout: float = 3600
    retries: int = 3
    backoff: float = 1.0
    max_poll: float | None = None
    request_timeout: float = 30.0
    adopt: bool = True
    token_env: str = DEFAULT_TOKEN_ENV

    def __post_init__(self) -> None:
        if self.poll <= 0 or self.timeout <= 0 or self.retries < 0 or self.backoff < 0:
            raise ValueError("poll and timeout must be > 0, retries and backoff >= 0")

    @property
    def poll_cap(self) -> float:
        """The longest interval between two polls."""
        cap = self.max_poll if self.max_poll is not None else min(8 * self.poll, _MAX_POLL)
        return max(self.poll, cap)


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


def parameter_map(params: Any) -> dict[str, str]:
    """``{name: value}`` of Hera parameter models (a missing value is ``""``)."""
    return {p.name: (p.value if p.value is not None else "") for p in params or [] if p.name}


def _time(value: Any) -> datetime | None:
    root = getattr(value, "root", value)
    return root if isinstance(root, datetime) else None


def _stamp(value: Any) -> float:
    stamp = _time(value)
    return stamp.timestamp() if stamp else 0.0


def _created(workflow: WorkflowModel) -> tuple[float, str]:
    return (_stamp(workflow.metadata.creation_timestamp), workflow.metadata.name or "")


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _node_label(node: Any) -> str:
    inputs = parameter_map(node.inputs.parameters if node.inputs else None)
    if "edge" in inputs and node.template_name:
        return f"{node.template_name} (edge {inputs['edge']})"
    return node.display_name or node.name


def failure_message(workflow: WorkflowModel) -> str:
    """``status.message`` plus the failed leaf nodes (latest first) with their messages."""
    status = workflow.status
    if status is None:
        return "the workflow has no status"
    nodes = status.nodes or {}
    failed = {node_id for node_id, n in nodes.items() if Phase.is_failure(n.phase)}
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
    from edgefed.steps.interface import Outputs, Step
    from edgefed.workflows.driver import RoundOutcome

    status = workflow.status
    phase = status.phase if status else None
    outputs = parameter_map(status.outputs.parameters if status and status.outputs else None)
    begin, end = (_time(status.started_at), _time(status.finished_at)) if status else (None, None)
    seconds = (end - begin).total_seconds() if begin and end else time.monotonic() - started
    train_seconds: dict[str, float] = {}
    for node in (status.nodes or {}).values() if status else ():
        if node.template_name == Step.TRAIN and node.type == "Pod" and node.phase == Phase.SUCCEEDED:
            inputs = parameter_map(node.inputs.parameters if node.inputs else None)
            outs = parameter_map(node.outputs.parameters if node.outputs else None)
            with contextlib.suppress(KeyError, ValueError):
                train_seconds[inputs["edge"]] = float(outs[Outputs.TRAIN_SECONDS])
    succeeded = phase == Phase.SUCCEEDED
    return RoundOutcome(
        workflow=workflow.metadata.name or "",
        succeeded=succeeded,
        message="" if succeeded else failure_message(workflow),
        outputs=outputs,
        seconds=seconds,
        train_seconds=train_seconds,
    )


class ArgoExecutor:
    """Runs round workflows on an Argo server (a :class:`~edgefed.workflows.driver.RoundExecutor`).

    ``token``: the bearer token (``None``: Hera's global config token, if any, else none).
    ``options``: polling, timeouts, retries, TLS (:class:`ArgoOptions`). ``cancel``: set it to stop
    a watch. ``on_phase(workflow, phase)``: called when a watched workflow changes phase.
    """

    def __init__(
        self,
        server: str,
        namespace: str,
        *,
        token: str | None,
        options: ArgoOptions | None = None,
        cancel: threading.Event | None = None,
        on_phase: Callable[[str, str], None] | None = None,
    ) -> None:
        self.options = options or ArgoOptions()
        self.on_phase = on_phase
        self.connection = ArgoConnection(
            server,
            namespace,
            token=token,
            verify_ssl=self.options.verify_ssl,
            retries=self.options.retries,
            backoff=self.options.backoff,
            request_timeout=self.options.request_timeout,
            token_env=self.options.token_env,
            cancel=cancel,
        )
        self.service = self.connection.service

    @property
    def server(self) -> str:
        return self.connection.server

    @property
    def namespace(self) -> str:
        return self.connection.namespace

    @property
    def cancel(self) -> threading.Event:
        return self.connection.cancel

    @property
    def active(self) -> str | None:
        """The workflow being watched, if any."""
        return self.connection.active

    @property
    def verify_ssl(self) -> bool:
        return self.connection.verify_ssl

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> ArgoExecutor:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows the token
        return f"ArgoExecutor(server={self.server!r}, namespace={self.namespace!r}, verify_ssl={self.verify_ssl})"

    # -- workflow templates ------------------------------------------------------------------
    def ensure_template(self, template_doc: Mapping[str, Any]) -> dict[str, Any]:
        """Create WorkflowTemplate ``template_doc`` or, if it exists (409), update it with the
        server's ``resourceVersion``; returns the server's template document."""
        from hera.workflows.models import (
            WorkflowTemplate,
            WorkflowTemplateCreateRequest,
            WorkflowTemplateUpdateRequest,
        )

        call, namespace = self.connection.call, self.namespace
        doc = copy.deepcopy(dict(template_doc))
        meta = doc.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise ArgoError("a WorkflowTemplate needs metadata.name (generateName is not allowed)")
        meta["namespace"] = namespace
        meta.pop("resourceVersion", None)
        doc.setdefault("apiVersion", "argoproj.io/v1alpha1")
        doc["kind"] = "WorkflowTemplate"
        try:
            created = call(
                f"create workflow template {name}",
                lambda: self.service.create_workflow_template(
                    WorkflowTemplateCreateRequest(
                        namespace=namespace, template=WorkflowTemplate.model_validate(doc)
                    )
                ),
            )
            log.info("created workflow template %s", name)
            return _dump(created)
        except ArgoConflictError:
            pass
        for attempt in range(self.options.retries + 1):
            current = call(f"get workflow template {name}", lambda: self.service.get_workflow_template(name))
            meta["resourceVersion"] = current.metadata.resource_version
            try:
                updated = call(
                    f"update workflow template {name}",
                    lambda: self.service.update_workflow_template(
                        name,
                        WorkflowTemplateUpdateRequest(
                            name=name, namespace=namespace, template=WorkflowTemplate.model_validate(doc)
                        ),
                    ),
                )
            except ArgoConflictError:  # modified between our get and update: read it again
                if attempt >= self.options.retries:
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
            page = self.connection.call(
                f"list workflows ({selector})",
                lambda token=token: self.service.list_workflows(  # type: ignore[misc]
                    label_selector=selector, fields="-items.status.nodes", limit=_LIST_PAGE, continue_=token
                ),
            )
            yield from page.items or []
            token = page.metadata.continue_ if page.metadata else None
            if not token:
                return

    def round_workflows(self, task: str, phase: str | None = Phase.SUCCEEDED) -> dict[int, WorkflowModel]:
        """The task's round workflows in ``phase`` by round (round 0: the initial model); when a
        round has several, the latest created wins."""
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
        task, round_ = labels.get(LABEL_TASK), labels.get(LABEL_ROUND)
        if not task or round_ is None:
            return None
        live = [
            w
            for w in self.list_workflows(f"{LABEL_TASK}={task},{LABEL_ROUND}={round_}")
            if not Phase.is_terminal(w.status.phase if w.status else None)
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

        return self.connection.call(
            f"create workflow {what}", lambda: self.service.create_workflow(request), recover=recover
        )

    def watch(self, name: str) -> WorkflowModel:
        """Poll workflow ``name`` until it is Succeeded, Failed or Error (bounded by ``timeout``)."""
        deadline = time.monotonic() + self.options.timeout
        interval = self.options.poll
        last_phase: str | None = None
        self.connection.active = name
        try:
            while True:
                workflow = self.connection.call(
                    f"get workflow {name}", lambda: self.service.get_workflow(name)
                )
                phase = (workflow.status.phase if workflow.status else None) or ""
                if phase != last_phase:
                    log.info("workflow %s: %s", name, phase or Phase.PENDING)
                    if self.on_phase is not None:
                        self.on_phase(name, phase or Phase.PENDING)
                    last_phase = phase
                if Phase.is_terminal(phase):
                    return workflow
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WatchTimeoutError(name, phase, self.options.timeout)
                self.connection.wait(min(interval, remaining))
                interval = min(interval * 1.5, self.options.poll_cap)
        except KeyboardInterrupt:
            raise WatchCancelledError(name, self.namespace) from None
        except ArgoUnavailableError as err:
            lost = ArgoUnavailableError(f"{err}; workflow {name} keeps running on the cluster")
            lost.workflow = name
            raise lost from None
        finally:
            self.connection.active = None

    def execute(self, document: dict[str, Any], parameters: dict[str, str]) -> RoundOutcome:
        """Create ``document`` with ``parameters`` set and watch it to the end."""
        started = time.monotonic()
        doc = apply_parameters(document, parameters)
        labels = doc.get("metadata", {}).get("labels") or {}
        existing = self._live(labels) if self.options.adopt else None
        if existing is not None:
            name = existing.metadata.name or ""
            log.warning("watching %s, left running by an earlier submit, instead of creating it again", name)
        else:
            name = self._create(doc).metadata.name or ""
            log.info("created workflow %s in namespace %s", name, self.namespace)
        if self.on_phase is not None:
            self.on_phase(name, "Adopted" if existing is not None else "Submitted")
        return _outcome(self.watch(name), started)
