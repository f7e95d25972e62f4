"""Executing mode of :class:`~tests.workflows.cluster.fake_argo.FakeArgo`: created workflows run for real.

:class:`EngineRunner` runs each workflow created through the fake's API on the embedded engine (an
:class:`~edgefed.workflows.embedded.runtime.EmbeddedRuntime`'s store, warm workers and secrets), in a
thread of its own, as Argo's controller would pick it up. The engine's Workflow objects
(``EngineOptions.workflows``) are the fake's own (:class:`FakeWorkflows`): the child round Workflows the
task's ``resource`` steps create show in the fake's list and GET with their labels, owner, phase and
outputs, are validated as the server validates a create, lag in its list and fall to its TTL, and
the ``progress`` step's patch of the task Workflow's title shows on the fake's copy.

What the fake does when a workflow is deleted while its run goes on (a cluster would stop it): the
run is not cancelled, but everything it then asks of the API server fails as it would for a deleted
object (its patches, its children's creates: their owner is gone), so it ends soon, and its status
updates are dropped.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from edgefed.workflows.embedded.engine import Engine, Node
from edgefed.workflows.embedded.engine.errors import WorkflowInvalidError
from edgefed.workflows.embedded.engine.objects import (
    WorkflowExistsError,
    WorkflowNotFoundError,
    WorkflowObjects,
)
from tests.workflows.cluster.fake_argo import FakeArgo, FakeError

if TYPE_CHECKING:
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

__all__ = ["EngineRunner", "FakeWorkflows"]


class FakeWorkflows(WorkflowObjects):
    """The engine's Workflow store, backed by the fake server: what the engine creates, reads,
    patches and updates is what the fake serves. ``top``: the workflow this run was started for
    (already created through the API: its own registration adopts it)."""

    def __init__(self, argo: FakeArgo, top: str) -> None:
        super().__init__()
        self.argo = argo
        self.top = top
        self._nodes: dict[str, dict[str, dict[str, Any]]] = {}  # workflow -> node id -> Argo node status

    def on_node(self, node: Node) -> None:
        """Keep ``status.nodes`` of the node's workflow as Argo would (the engine publishes no nodes)."""
        nodes = self._nodes.setdefault(node.workflow_name, {})
        view = node.to_dict()
        for key in ("logPath", "podName", "workflowName"):
            view.pop(key, None)
        view["inputs"] = {"parameters": [{"name": k, "value": v} for k, v in node.inputs.items()]}
        parameters = (node.outputs or {}).get("parameters") or {}
        view["outputs"] = {"parameters": [{"name": k, "value": str(v)} for k, v in parameters.items()]}
        nodes[node.id] = {k: v for k, v in view.items() if v not in (None, "", [])}
        self.argo.set_nodes(node.workflow_name, nodes)

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = dict(obj.get("metadata") or {})
        name = str(meta.get("name") or "")
        if name == self.top:
            try:
                return self.argo.get(name)
            except FakeError as err:
                raise WorkflowNotFoundError(name) from err
        document = copy.deepcopy(dict(obj))
        document.pop("status", None)
        references = document.get("metadata", {}).pop("ownerReferences", None) or []
        owners = [r.get("name") for r in references if r.get("kind") == "Workflow" and r.get("name")]
        try:
            return self.argo.create(document, owner=owners[0] if owners else None, run=False)
        except FakeError as err:
            if err.status == 409:
                raise WorkflowExistsError(name) from None
            raise WorkflowInvalidError(
                f"the Argo server refused {name or 'the workflow'}: {err.message}"
            ) from None

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.argo.get(name)
        except FakeError:
            return None

    def patch(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return self.argo.patch_metadata(name, patch.get("metadata") or {})
        except FakeError:
            raise WorkflowNotFoundError(name) from None

    def update_status(self, name: str, status: Mapping[str, Any]) -> None:
        self.argo.set_status(name, {**status, "nodes": dict(self._nodes.get(name, {}))})


class EngineRunner:
    """Runs each created workflow on ``runtime``'s engine; ``parameters``: ``-p`` overrides every
    run gets (the runtime's store endpoint, say), after the document's own."""

    def __init__(self, runtime: EmbeddedRuntime, *, parameters: Mapping[str, str] | None = None) -> None:
        self.runtime = runtime
        self.parameters = dict(parameters or {})
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, argo: FakeArgo, name: str) -> None:
        thread = threading.Thread(
            target=self._run, args=(argo, name), name=f"fake-argo-run-{name}", daemon=True
        )
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _run(self, argo: FakeArgo, name: str) -> None:
        try:
            document = argo.get(name)
            document.pop("status", None)
            templates = tuple(t for t in (argo.template(n) for n in list(argo.templates)) if t)
            workflows = FakeWorkflows(argo, name)
            options = dataclasses.replace(
                self.runtime.engine(on_node=workflows.on_node).options,
                workflows=workflows,
                templates=templates,
                workflow_name=name,
                namespace=argo.namespace,
            )
            Engine(options).run(document, parameters=self.parameters)
        except BaseException as err:  # the controller would mark it Error
            self.errors.append(err)
            argo.set_status(name, {"phase": "Error", "message": f"{type(err).__name__}: {err}"})

    def wait(self, timeout: float = 300) -> None:
        """Until every run started so far has ended."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"run {thread.name} still going after {timeout}s")

    def close(self) -> None:
        self.wait()
