"""Nodes: what a run is made of, the one record that creates them and changes their phase, the result.

Node naming (as Argo)
    The root node is named after the workflow; a DAG task is ``<dag node>.<task>``; fan-out children are
    ``<task>(<i>:<item>)`` (see :mod:`.fanout`); a step group is ``<steps node>[<i>]`` and its steps
    ``<steps node>[<i>].<step>``; retry attempts are ``<node>(<n>)``; the exit handler is
    ``<workflow>.onExit``. The display name is the last component (``train(0:cleveland)``, ``[0]``,
    ``train(0:x)(1)``). A node's id is the workflow name for the root, else ``<workflow>-<fnv32a(name)>``.
    Node ``children`` lists contained nodes (DAG -> tasks, TaskGroup -> items, Retry -> attempts, Steps ->
    step groups -> steps), which is how ``argo get`` draws the tree (Argo's own ``children`` encode
    dependency edges instead).

Phases are :class:`~edgefed.workflows.phases.Phase` members (a ``StrEnum``: they compare equal to
Argo's strings). Every change goes through :meth:`NodeRecord.set_phase`, which stamps the times and calls
the ``on_node`` callback; the scheduler runs on one event-loop thread, so the callback is serialized.
"""

from __future__ import annotations

import copy
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from edgefed.workflows.phases import Phase

__all__ = ["Node", "NodeCallback", "NodeRecord", "NodeType", "WorkflowResult", "fnv32a", "timestamp"]


class NodeType(StrEnum):
    """A node's type, spelled as in Argo's ``status.nodes[*].type``."""

    DAG = "DAG"
    STEPS = "Steps"
    STEP_GROUP = "StepGroup"
    TASK_GROUP = "TaskGroup"
    POD = "Pod"
    RETRY = "Retry"
    SKIPPED = "Skipped"  # a task/step that did not run: Skipped, Omitted, or Error before it started


def timestamp(t: datetime | None) -> str | None:
    """RFC 3339 at second precision, as Argo writes ``startedAt``/``finishedAt``."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def fnv32a(text: str) -> int:
    """32-bit FNV-1a, the hash Argo names node ids and pods with."""
    h = 0x811C9DC5
    for b in text.encode():
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


@dataclass
class Node:
    """One node of the run, as in Argo's ``status.nodes``."""

    id: str
    name: str
    display_name: str
    type: NodeType
    template_name: str | None
    phase: Phase = Phase.PENDING
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    parent_id: str | None = None
    children: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # parameters: {name: value}, result, exitCode
    log_path: Path | None = None
    pod_name: str | None = None
    #: The workflow the node belongs to (a child Workflow's nodes reach ``on_node`` too).
    workflow_name: str = ""
    #: ``time.monotonic()`` when the node was created (Argo's node ``startedAt``: ``pendingTimeout``
    #: counts from it; ``started_at`` is when the node turned Running).
    created: float = field(default_factory=time.monotonic, repr=False, compare=False)

    @property
    def fulfilled(self) -> bool:
        return self.phase.fulfilled

    @property
    def completed(self) -> bool:
        return self.phase.completed

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (timestamps as RFC 3339, paths as strings)."""
        return {
            "id": self.id,
            "name": self.name,
            "displayName": self.display_name,
            "type": str(self.type),
            "templateName": self.template_name,
            "phase": str(self.phase),
            "message": self.message,
            "startedAt": timestamp(self.started_at),
            "finishedAt": timestamp(self.finished_at),
            "children": list(self.children),
            "inputs": dict(self.inputs),
            "outputs": copy.deepcopy(self.outputs),
            "logPath": str(self.log_path) if self.log_path else None,
            "podName": self.pod_name,
            "workflowName": self.workflow_name,
        }


NodeCallback = Callable[[Node], None]


class NodeRecord:
    """Every node of one run by id, in creation order; nodes are created and change phase only here."""

    def __init__(self, *, workflow_name: str, on_node: NodeCallback | None) -> None:
        self.workflow_name = workflow_name
        self.nodes: dict[str, Node] = {}
        self._on_node = on_node

    def node_id(self, name: str) -> str:
        if name == self.workflow_name:
            return self.workflow_name
        return f"{self.workflow_name}-{fnv32a(name)}"

    def new(
        self, name: str, display: str, type_: NodeType, template: str | None, parent: Node | None
    ) -> Node:
        """A Pending node, appended to ``parent``'s children."""
        node = Node(
            id=self.node_id(name),
            name=name,
            display_name=display,
            type=type_,
            template_name=template,
            parent_id=parent.id if parent else None,
            workflow_name=self.workflow_name,
        )
        self.nodes[node.id] = node
        if parent is not None:
            parent.children.append(node.id)
        self._notify(node)
        return node

    def set_phase(self, node: Node, phase: Phase, message: str | None = None) -> None:
        node.phase = phase
        if message is not None:
            node.message = message
        now = datetime.now(UTC)
        if phase == Phase.RUNNING and node.started_at is None:
            node.started_at = now
        if phase.fulfilled:
            if node.started_at is None:
                node.started_at = now
            node.finished_at = now
        self._notify(node)

    def skip(
        self, name: str, display: str, template: str | None, parent: Node, phase: Phase, message: str
    ) -> Node:
        """A task/step that did not run (Skipped, Omitted, or Error before its template started)."""
        node = self.new(name, display, NodeType.SKIPPED, template, parent)
        self.set_phase(node, phase, message)
        return node

    def children(self, node: Node) -> list[Node]:
        return [self.nodes[c] for c in node.children]

    def failures(self) -> list[dict[str, Any]]:
        """``{{workflow.failures}}``: the failed and errored pods."""
        return [
            {
                "displayName": n.display_name,
                "message": n.message,
                "templateName": n.template_name,
                "phase": str(n.phase),
                "podName": n.pod_name or "",
                "finishedAt": timestamp(n.finished_at),
            }
            for n in self.nodes.values()
            if n.type == NodeType.POD and Phase.is_failure(n.phase)
        ]

    def _notify(self, node: Node) -> None:
        if self._on_node is None:
            return
        try:
            self._on_node(node)
        except Exception:  # a broken progress callback must not break the run
            traceback.print_exc()


@dataclass
class WorkflowResult:
    """The outcome of :meth:`Engine.run`."""

    name: str
    phase: Phase  # Succeeded, Failed or Error
    message: str
    nodes: dict[str, Node]
    root_id: str
    exit_handler_id: str | None
    outputs: dict[str, str]  # workflow.outputs.parameters
    run_dir: Path
    started_at: datetime
    finished_at: datetime
    #: The Workflow object's metadata when the run ended (labels/annotations after any patch of it).
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The child Workflows this run's resource templates created and ran, by name.
    children: dict[str, WorkflowResult] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.phase == Phase.SUCCEEDED

    def node_by_name(self, name: str) -> Node:
        """The node with the full name ``name`` (e.g. ``wf.train(0:a)``); KeyError if none."""
        for node in self.nodes.values():
            if node.name == name:
                return node
        raise KeyError(name)

    def find(self, display_name: str) -> list[Node]:
        """Every node whose display name is ``display_name``."""
        return [n for n in self.nodes.values() if n.display_name == display_name]

    def pods(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.type == NodeType.POD]
