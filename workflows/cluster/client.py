"""The Argo server's workflow API as edgefed uses it: :class:`ArgoClient`.

It creates or updates WorkflowTemplates (409 on create → get + update with the server's
``resourceVersion``), creates Workflows idempotently, gets and lists them (page by page, without
``status.nodes`` unless asked). Every call goes through :class:`~.transport.ArgoConnection`'s retry
policy; the token never shows.

A workflow create that may have reached the server (5xx, lost response) is never blindly repeated:
each create carries a one-off ``edgefed.io/submission`` label, and before a retry the workflow is
looked up -- by name when the document has one (a GET sees a just-created object at once), else by
that label. A create the server refuses as invalid (400, or 404 for a WorkflowTemplate it does not
know) raises :class:`~.errors.ArgoRejectedError`, exit code "invalid input".
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edgefed.workflows.cluster.errors import (
    DEFAULT_TOKEN_ENV,
    ArgoConflictError,
    ArgoError,
    ArgoRejectedError,
    ArgoRequestError,
)
from edgefed.workflows.cluster.transport import ArgoConnection
from edgefed.workflows.phases import Phase

# Hera's models load on first use: importing this module stays cheap.
if TYPE_CHECKING:
    from hera.workflows.models import Workflow as WorkflowModel

__all__ = [
    "COMPLETED_LABEL",
    "LABEL_SUBMISSION",
    "PHASE_LABEL",
    "ArgoClient",
    "ArgoOptions",
    "apply_parameters",
    "created_order",
    "failure_message",
    "parameter_map",
    "phase_of",
    "seconds_between",
    "server_message",
]

log = logging.getLogger(__name__)

#: One-off label on every created workflow: makes a retried create idempotent.
LABEL_SUBMISSION = "edgefed.io/submission"
#: Labels Argo's controller keeps in step with a workflow's phase.
PHASE_LABEL = "workflows.argoproj.io/phase"
COMPLETED_LABEL = "workflows.argoproj.io/completed"
_MAX_POLL = 30.0
_LIST_PAGE = "200"
_FAILED_NODES_SHOWN = 5
_CONTAINER_NODES = frozenset({"DAG", "Steps", "StepGroup", "TaskGroup", "Retry"})


@dataclass(frozen=True, kw_only=True)
class ArgoOptions:
    """How :class:`ArgoClient` talks to the server and watches workflows.

    ``verify_ssl``: TLS certificate verification, on unless turned off explicitly.
    ``poll``: first interval between polls of a watched workflow; it grows ×1.5 up to ``max_poll``
    (default ``min(8 × poll, 30 s)``) while nothing changes, and drops back when something does.
    ``timeout``: how long a workflow is watched, at most. ``retries``/``backoff``: retries of 5xx
    and connection errors, waiting ``backoff × 2^n`` s. ``request_timeout``: seconds one HTTP
    request may take. ``token_env``: named in the hint of a refused token.
    """

    verify_ssl: bool = True
    poll: float = 2.0
    timeout: float = 24 * 3600
    retries: int = 3
    backoff: float = 1.0
    max_poll: float | None = None
    request_timeout: float = 30.0
    token_env: str = DEFAULT_TOKEN_ENV

    def __post_init__(self) -> None:
        if self.poll <= 0 or self.timeout <= 0 or self.retries < 0 or self.backoff < 0:
            raise ValueError(
                f"expected poll and timeout > 0, retries and backoff >= 0; found poll={self.poll}, "
                f"timeout={self.timeout}, retries={self.retries}, backoff={self.backoff}"
            )

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
            by_name[name].pop("valueFrom", None)
        else:
            params.append({"name": name, "value": str(value)})
    return doc


def parameter_map(params: Any) -> dict[str, str]:
    """``{name: value}`` of Hera parameter models (a missing value is ``""``)."""
    return {p.name: (p.value if p.value is not None else "") for p in params or [] if p.name}


def server_message(detail: str) -> str:
    """The server's own message in the text of Hera's exception (``... with message: `...```)."""
    found = re.search(r"with message: `(.*)`\s*$", detail, re.DOTALL)
    return found.group(1) if found else detail


def _int_or_zero(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def phase_of(workflow: WorkflowModel) -> str:
    """The workflow's phase; ``Pending`` before the controller gave it one."""
    return (workflow.status.phase if workflow.status else None) or Phase.PENDING


def _time(value: Any) -> datetime | None:
    root = getattr(value, "root", value)
    return root if isinstance(root, datetime) else None


def seconds_between(start: Any, end: Any) -> float | None:
    """Seconds from ``start`` to ``end`` (Argo time models or datetimes); None if either is unset."""
    begin, finish = _time(start), _time(end)
    return (finish - begin).total_seconds() if begin and finish else None


def _stamp(value: Any) -> float:
    stamp = _time(value)
    return stamp.timestamp() if stamp else 0.0


def created_order(workflow: WorkflowModel) -> tuple[float, str]:
    """Sort key of workflows by creation (then name)."""
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


class ArgoClient:
    """One Argo server and namespace, for edgefed's workflows and workflow templates.

    ``token``: the bearer token (``None``: Hera's global config token, if any, else none).
    ``options``: polling, timeouts, retries, TLS (:class:`ArgoOptions`). ``cancel``: set it to stop
    a watch (or a retry's wait) promptly.
    """

    def __init__(
        self,
        server: str,
        namespace: str,
        *,
        token: str | None,
        options: ArgoOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.options = options or ArgoOptions()
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
    def verify_ssl(self) -> bool:
        return self.connection.verify_ssl

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> ArgoClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows the token
        return (
            f"ArgoClient(server={self.server!r}, namespace={self.namespace!r}, verify_ssl={self.verify_ssl})"
        )

    # -- workflow templates ------------------------------------------------------------------
    def get_template(self, name: str) -> dict[str, Any] | None:
        """WorkflowTemplate ``name`` as the server has it, or None (404)."""
        try:
            found = self.connection.call(
                f"get workflow template {name}", lambda: self.service.get_workflow_template(name)
            )
        except ArgoRequestError as err:
            if err.status == 404:
                return None
            raise
        return _dump(found)

    def raise_annotation(self, template: str, key: str, value: int) -> int:
        """Set integer annotation ``key`` of WorkflowTemplate ``template`` to ``value`` unless it is
        higher already (compare-and-swap on ``resourceVersion``); the value it has now."""
        from hera.workflows.models import WorkflowTemplate, WorkflowTemplateUpdateRequest

        for attempt in range(self.options.retries + 1):
            current = self.get_template(template)
            if current is None:
                raise ArgoError(
                    f"cannot set annotation {key} of workflow template {template}: it does not exist"
                )
            annotations = current.setdefault("metadata", {}).setdefault("annotations", {})
            have = _int_or_zero(annotations.get(key))
            if have >= value:
                return have
            annotations[key] = str(value)
            request = WorkflowTemplateUpdateRequest(
                name=template, namespace=self.namespace, template=WorkflowTemplate.model_validate(current)
            )
            try:
                self.connection.call(
                    f"update workflow template {template}",
                    lambda request=request: self.service.update_workflow_template(template, request),  # type: ignore[misc]
                )
            except ArgoConflictError:  # changed since read: read it again
                if attempt >= self.options.retries:
                    raise
                continue
            return value
        raise AssertionError("unreachable")  # pragma: no cover

    def ensure_template(
        self, template_doc: Mapping[str, Any], *, keep_annotations: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Create WorkflowTemplate ``template_doc`` or, if it exists (409), update it with the
        server's ``resourceVersion``; returns the server's template document. ``keep_annotations``:
        on update, these keep the server's values (state kept on the template, not in the document)."""
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
            raise ArgoError(
                "a WorkflowTemplate needs metadata.name; found "
                + (f"generateName {meta['generateName']!r}" if meta.get("generateName") else "none")
            )
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
            kept = {k: v for k, v in (current.metadata.annotations or {}).items() if k in keep_annotations}
            if kept:
                meta.setdefault("annotations", {}).update(kept)
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
    def list_workflows(self, selector: str, *, nodes: bool = False) -> Iterator[WorkflowModel]:
        """Workflows matching label ``selector``, page by page (without ``status.nodes`` unless
        ``nodes``). The server lists from its cache: a just-created workflow may be missing."""
        token: str | None = None
        while True:
            page = self.connection.call(
                f"list workflows ({selector})",
                lambda token=token: self.service.list_workflows(  # type: ignore[misc]
                    label_selector=selector,
                    fields=None if nodes else "-items.status.nodes",
                    limit=_LIST_PAGE,
                    continue_=token,
                ),
            )
            yield from page.items or []
            token = page.metadata.continue_ if page.metadata else None
            if not token:
                return

    def get_workflow(self, name: str) -> WorkflowModel | None:
        """Workflow ``name`` with its nodes, or None when the server has no such workflow (404)."""
        try:
            return self.connection.call(f"get workflow {name}", lambda: self.service.get_workflow(name))
        except ArgoRequestError as err:
            if err.status == 404:
                return None
            raise

    def create_workflow(self, document: Mapping[str, Any]) -> WorkflowModel:
        """Create ``document`` once, whatever the retries (see the module's docstring).

        Raises :class:`ArgoConflictError` when a workflow of that ``metadata.name`` exists already
        (not one this call created), :class:`ArgoRejectedError` when the server refuses it as invalid.
        """
        from hera.workflows.models import Workflow, WorkflowCreateRequest

        doc = copy.deepcopy(dict(document))
        key = uuid.uuid4().hex
        meta = doc.setdefault("metadata", {})
        meta.setdefault("labels", {})[LABEL_SUBMISSION] = key
        name = meta.get("name")
        what = name or meta.get("generateName") or "workflow"
        request = WorkflowCreateRequest(namespace=self.namespace, workflow=Workflow.model_validate(doc))
        attempted = False

        def ours(workflow: WorkflowModel | None) -> WorkflowModel | None:
            labels = (workflow.metadata.labels or {}) if workflow is not None else {}
            return workflow if labels.get(LABEL_SUBMISSION) == key else None

        def recover() -> WorkflowModel | None:
            # The failed attempt may have created the workflow: never create it twice.
            if name:
                return ours(self.get_workflow(name))
            return next(iter(self.list_workflows(f"{LABEL_SUBMISSION}={key}")), None)

        def create() -> WorkflowModel:
            nonlocal attempted
            attempted = True
            return self.service.create_workflow(request)

        try:
            created = self.connection.call(f"create workflow {what}", create, recover=recover)
        except ArgoConflictError:
            # 409 on a retry may be our own first attempt, whose response was lost
            found = ours(self.get_workflow(name)) if name and attempted else None
            if found is None:
                raise
            created = found
        except ArgoRequestError as err:
            if err.status in (400, 404):  # validation: a bad document, a missing WorkflowTemplate
                raise ArgoRejectedError(what, err.status, server_message(err.detail)) from None
            raise
        log.info("created workflow %s in namespace %s", created.metadata.name, self.namespace)
        return created

    def delete_workflow(self, name: str) -> bool:
        """Delete workflow ``name`` (its children go with it); False when there was none."""
        try:
            self.connection.call(f"delete workflow {name}", lambda: self.service.delete_workflow(name))
        except ArgoRequestError as err:
            if err.status == 404:
                return False
            raise
        return True

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (returning early with :class:`WatchCancelledError` on cancel)."""
        self.connection.wait(seconds)
