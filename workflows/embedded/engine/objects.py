"""Workflow objects: what an API server would hold for the workflows a run creates, reads and patches.

A ``resource`` template of the engine (see :mod:`.resource`) works on Workflow objects the way ``kubectl``
works on the API server: it creates a child Workflow, reads it back to evaluate its success/failure
condition and its ``jsonPath`` outputs, and patches a Workflow's labels and annotations by name. Those
objects live in a :class:`WorkflowObjects` store, passed as ``EngineOptions.workflows``; the default keeps
them in memory, per :class:`~.executor.Engine`. Every run of the engine registers its own Workflow there
(so a patch of ``{{workflow.name}}`` finds the running workflow) and keeps its ``status`` up to date while
it runs: ``Pending`` with Argo's "Waiting for ... lock" message while it waits for a mutex, then
``Running``, then its final phase.

An object has Argo's shape (``pkg/apis/workflow/v1alpha1/workflow_types.go``)::

    {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
     "metadata": {"name", "namespace", "uid", "creationTimestamp", "labels", "annotations", "ownerReferences"},
     "spec": {...as submitted...},
     "status": {"phase", "message", "startedAt", "finishedAt", "progress",
                "outputs": {"parameters": [{"name", "value"}]}}}

``status.outputs.parameters`` are the workflow's global outputs (``globalName``), as in Argo; ``progress``
is Argo's ``"<succeeded pods>/<pods>"`` (``workflow/progress/updater.go``).

To plug in another store (e.g. a test double of argo-server, so children appear in its list), subclass
:class:`WorkflowObjects` and override its four methods; they are called from the engine's event-loop
thread, one at a time per run (runs in different threads may share a store: the default one locks).
Names are unique per store, as on an API server (``create`` raises :class:`WorkflowExistsError`, the
409 AlreadyExists); the engine itself also refuses a child whose run directory already exists, so names
stay unique across processes that share a ``run_dir`` (see :mod:`.resource`).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from edgefed.workflows.phases import Phase

from .errors import EngineError, WorkflowInvalidError
from .nodes import Node, NodeType, timestamp

__all__ = [
    "API_VERSION",
    "KIND",
    "StatusPublisher",
    "WorkflowExistsError",
    "WorkflowNotFoundError",
    "WorkflowObjects",
    "merge_patch",
]

API_VERSION = "argoproj.io/v1alpha1"
KIND = "Workflow"


class WorkflowExistsError(WorkflowInvalidError):
    """A Workflow of that name exists already: the API server's 409 AlreadyExists."""

    def __init__(self, name: str, detail: str = "") -> None:
        self.name = name
        super().__init__(
            f'workflows.argoproj.io "{name}" already exists' + (f" ({detail})" if detail else "")
        )


class WorkflowNotFoundError(EngineError):
    """No Workflow of that name: the API server's 404 NotFound."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f'workflows.argoproj.io "{name}" not found')


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``kubectl patch --type merge``): ``null`` removes a key; returns a copy."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = copy.deepcopy(dict(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class WorkflowObjects:
    """The default store: Workflow objects in memory, by name (one namespace's worth, like a list call).

    Every method takes and returns copies, so a caller never changes a stored object by accident.
    """

    def __init__(self) -> None:
        self._objects: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store a new object (its ``metadata.name`` set); raise :class:`WorkflowExistsError` if taken."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        if not name:
            raise WorkflowInvalidError("metadata.name: required to create a Workflow (or generateName)")
        with self._lock:
            if name in self._objects:
                raise WorkflowExistsError(name)
            self._objects[name] = copy.deepcopy(dict(obj))
            return copy.deepcopy(self._objects[name])

    def get(self, name: str) -> dict[str, Any] | None:
        """The object named ``name``, or None."""
        with self._lock:
            obj = self._objects.get(name)
            return copy.deepcopy(obj) if obj is not None else None

    def patch(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch; the patched object. :class:`WorkflowNotFoundError` if none."""
        with self._lock:
            if name not in self._objects:
                raise WorkflowNotFoundError(name)
            self._objects[name] = merge_patch(self._objects[name], patch)
            return copy.deepcopy(self._objects[name])

    def update_status(self, name: str, status: Mapping[str, Any]) -> None:
        """Replace the object's ``status`` (the engine calls it as the workflow progresses)."""
        with self._lock:
            if name in self._objects:
                self._objects[name]["status"] = copy.deepcopy(dict(status))


class StatusPublisher:
    """Keeps one run's object's ``status`` in the store current, and tells waiters it changed.

    Published when the run starts waiting for a mutex, starts running, each time a pod finishes (the
    progress changes) and when the run ends, never per node event, so a run of many pods costs one small
    status per pod.
    """

    def __init__(
        self,
        *,
        store: WorkflowObjects,
        name: str,
        outputs: Callable[[], Mapping[str, str]],
        changed: Callable[[str], None],
    ) -> None:
        self.store = store
        self.name = name
        self._outputs = outputs
        self._changed = changed
        self.phase = Phase.PENDING
        self.message = ""
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self._pods: dict[str, bool] = {}  # pod node id -> succeeded
        self._succeeded = 0

    @property
    def progress(self) -> str:
        """Argo's ``"<succeeded pods>/<pods>"``."""
        return f"{self._succeeded}/{len(self._pods)}"

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"phase": str(self.phase), "progress": self.progress}
        if self.message:
            status["message"] = self.message
        if self.started_at is not None:
            status["startedAt"] = timestamp(self.started_at)
        if self.finished_at is not None:
            status["finishedAt"] = timestamp(self.finished_at)
        outputs = self._outputs()
        if outputs:
            status["outputs"] = {"parameters": [{"name": k, "value": v} for k, v in outputs.items()]}
        return status

    def publish(self) -> None:
        self.store.update_status(self.name, self.status())
        self._changed(self.name)

    def waiting(self, message: str) -> None:
        self.message = message
        self.publish()

    def running(self, started: datetime) -> None:
        self.phase, self.message, self.started_at = Phase.RUNNING, "", started
        self.publish()

    def finished(self, phase: Phase, message: str, finished: datetime) -> None:
        self.phase, self.message, self.finished_at = phase, message, finished
        self.publish()

    def on_node(self, node: Node) -> None:
        """A node was created or changed phase: count pods, publish when one finished."""
        if node.type != NodeType.POD:
            return
        done = self._pods.setdefault(node.id, False)
        if node.phase == Phase.SUCCEEDED and not done:
            self._pods[node.id] = True
            self._succeeded += 1
        if node.phase.fulfilled:
            self.publish()
