"""What Argo shows of a task: its task Workflows (:class:`TaskRun`) and its rounds (:class:`RoundRow`).

A round is read, best source first, from

1. its child Workflow (``edgefed.io/kind=round``): phase, outputs, duration, progress;
2. else the node of the task Workflow's ``round`` step that created it: the step's outputs are the
   child's, copied by ``valueFrom.jsonPath`` while it lived, so they outlive the child's ``ttlStrategy``;
3. else, for a round below the highest one known, the row says ``collected``: Argo deleted both,
   and the model registry (``edgefed models list``) is where the round's record is kept.

This is for showing progress only: what is committed (and where a resubmitted task resumes) is the
model registry's to say, never Argo's.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from edgefed.workflows.build.names import (
    DESCRIPTION,
    KIND_ROUND,
    KIND_TASK,
    LABEL_KIND,
    LABEL_ROUND,
    LABEL_TASK,
    ROUND_TEMPLATE,
    TITLE,
    TaskOutputs,
    WorkflowOutputs,
)
from edgefed.workflows.cluster.client import (
    ArgoClient,
    created_order,
    failure_message,
    parameter_map,
    phase_of,
    seconds_between,
)
from edgefed.workflows.phases import Phase

if TYPE_CHECKING:
    from hera.workflows.models import Workflow as WorkflowModel

__all__ = [
    "COLLECTED",
    "RoundRow",
    "TaskRun",
    "TaskView",
    "merge_rounds",
    "node_rounds",
    "read_task",
    "round_selector",
    "task_selector",
]

#: The phase shown for a round Argo no longer keeps.
COLLECTED = "collected"

_ATTEMPT = re.compile(r"-r(\d+)-a(\d+)$")


def task_selector(task: str) -> str:
    """Label selector of ``task``'s task Workflows."""
    return f"{LABEL_TASK}={task},{LABEL_KIND}={KIND_TASK}"


def round_selector(task: str) -> str:
    """Label selector of ``task``'s child round Workflows."""
    return f"{LABEL_TASK}={task},{LABEL_KIND}={KIND_ROUND}"


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _missing(value: str | None) -> list[str]:
    with contextlib.suppress(ValueError, TypeError):
        items = json.loads(value or "[]")
        if isinstance(items, list):
            return [item if isinstance(item, str) else str(item.get("edge", item)) for item in items]
    return []


def _message(workflow: WorkflowModel) -> str:
    """Why it failed (with its failed nodes when they were read), else its status message."""
    status = workflow.status
    if status is None:
        return ""
    return failure_message(workflow) if Phase.is_failure(status.phase) else (status.message or "")


def _iso(value: Any) -> str | None:
    root = getattr(value, "root", value)
    return root.isoformat() if hasattr(root, "isoformat") else None


@dataclass(frozen=True, kw_only=True)
class RoundRow:
    """One attempt at a round, as Argo shows it. ``source``: ``workflow``, ``node`` or ``collected``."""

    round: int
    attempt: int | None
    workflow: str
    phase: str
    source: str
    accuracy: float | None = None
    loss: float | None = None
    contributors: int | None = None
    missing: list[str] = field(default_factory=list)
    seconds: float | None = None
    #: Argo's ``status.progress`` of the child (``done/total`` pods), while it lives.
    progress: str | None = None
    model_version: str | None = None
    message: str = ""
    #: uid of the task Workflow that created it (its ownerReference), if known.
    owner: str | None = None

    @property
    def done(self) -> bool:
        return self.source == COLLECTED or Phase.is_terminal(self.phase)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_outputs(cls, outputs: dict[str, str], **fields: Any) -> RoundRow:
        return cls(
            accuracy=_float(outputs.get(WorkflowOutputs.ACCURACY)),
            loss=_float(outputs.get(WorkflowOutputs.LOSS)),
            contributors=_int(outputs.get(WorkflowOutputs.CONTRIBUTORS)),
            missing=_missing(outputs.get(WorkflowOutputs.MISSING_EDGES)),
            model_version=outputs.get(WorkflowOutputs.MODEL_VERSION) or None,
            **fields,
        )

    @classmethod
    def from_workflow(cls, workflow: WorkflowModel) -> RoundRow | None:
        """The row of a child round Workflow; None when it names no round."""
        meta, status = workflow.metadata, workflow.status
        name = meta.name or ""
        found = _ATTEMPT.search(name)
        round_ = _int((meta.labels or {}).get(LABEL_ROUND)) or (int(found.group(1)) if found else None)
        if round_ is None:
            return None
        phase = phase_of(workflow)
        owners = [o.uid for o in meta.owner_references or [] if o.kind == "Workflow"]
        return cls.from_outputs(
            parameter_map(status.outputs.parameters if status and status.outputs else None),
            round=round_,
            attempt=int(found.group(2)) if found else None,
            workflow=name,
            phase=phase,
            source="workflow",
            seconds=seconds_between(status.started_at, status.finished_at) if status else None,
            progress=status.progress if status else None,
            message=_message(workflow),
            owner=owners[0] if owners else None,
        )


def node_rounds(task_workflow: WorkflowModel) -> list[RoundRow]:
    """The rounds the task Workflow's ``round`` steps created, from its node status (the nodes of
    its round template, :data:`~edgefed.workflows.build.task.ROUND_TEMPLATE`)."""
    status = task_workflow.status
    rows: list[RoundRow] = []
    for node in (status.nodes or {}).values() if status else ():
        if node.template_name != ROUND_TEMPLATE or node.type in ("Steps", "StepGroup", "DAG", "Retry"):
            continue
        if node.phase in (Phase.SKIPPED, Phase.OMITTED):  # the plan said stop: no round
            continue
        inputs = parameter_map(node.inputs.parameters if node.inputs else None)
        name = inputs.get("name", "")
        found = _ATTEMPT.search(name)
        round_ = _int(inputs.get("round")) or (int(found.group(1)) if found else None)
        if round_ is None:
            continue
        rows.append(
            RoundRow.from_outputs(
                parameter_map(node.outputs.parameters if node.outputs else None),
                round=round_,
                attempt=_int(inputs.get("attempt")) or (int(found.group(2)) if found else None),
                workflow=name,
                phase=node.phase or Phase.PENDING,
                source="node",
                seconds=seconds_between(node.started_at, node.finished_at),
                message=(node.message or "") if Phase.is_failure(node.phase) else "",
                owner=task_workflow.metadata.uid,
            )
        )
    return rows


def merge_rounds(
    children: Iterable[RoundRow], nodes: Iterable[RoundRow], *, last_round: int | None = None
) -> list[RoundRow]:
    """One row per round attempt, by round then attempt: the child's row when it lives, else its
    node's. With ``last_round``, each round up to it that neither shows is a ``collected`` row."""
    rows: dict[str, RoundRow] = {}
    for row in nodes:
        rows.setdefault(row.workflow or f"round {row.round}", row)
    for row in children:
        rows[row.workflow] = row
    known = {row.round for row in rows.values()}
    for round_ in range(1, (last_round or 0) + 1):
        if round_ not in known:
            rows[f"round {round_}"] = RoundRow(
                round=round_, attempt=None, workflow="", phase=COLLECTED, source=COLLECTED
            )
    return sorted(rows.values(), key=lambda r: (r.round, r.attempt or 0, r.workflow))


@dataclass(frozen=True, kw_only=True)
class TaskRun:
    """One task Workflow: phase, the Argo UI title/description, outputs and times."""

    workflow: str
    uid: str
    phase: str
    title: str = ""
    description: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    message: str = ""
    created: str | None = None
    started: str | None = None
    finished: str | None = None
    seconds: float | None = None
    progress: str | None = None

    @property
    def done(self) -> bool:
        return Phase.is_terminal(self.phase)

    @property
    def last_round(self) -> int | None:
        return _int(self.outputs.get(TaskOutputs.LAST_ROUND))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_workflow(cls, workflow: WorkflowModel) -> TaskRun:
        meta, status = workflow.metadata, workflow.status
        annotations = meta.annotations or {}
        phase = phase_of(workflow)
        return cls(
            workflow=meta.name or "",
            uid=meta.uid or "",
            phase=phase,
            title=annotations.get(TITLE, ""),
            description=annotations.get(DESCRIPTION, ""),
            outputs=parameter_map(status.outputs.parameters if status and status.outputs else None),
            message=_message(workflow),
            created=_iso(meta.creation_timestamp),
            started=_iso(status.started_at) if status else None,
            finished=_iso(status.finished_at) if status else None,
            seconds=seconds_between(status.started_at, status.finished_at) if status else None,
            progress=status.progress if status else None,
        )


@dataclass(frozen=True, kw_only=True)
class TaskView:
    """A task on Argo: its task Workflows (newest first) and its round attempts (by round)."""

    task: str
    runs: list[TaskRun]
    rounds: list[RoundRow]

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "workflows": [run.to_json() for run in self.runs],
            "rounds": [row.to_json() for row in self.rounds],
        }


def read_task(client: ArgoClient, task: str) -> TaskView:
    """``task`` as Argo shows it now: its task Workflows (each read with its nodes) and rounds."""
    listed = sorted(client.list_workflows(task_selector(task)), key=created_order, reverse=True)
    runs: list[TaskRun] = []
    nodes: list[RoundRow] = []
    for item in listed:
        workflow = client.get_workflow(item.metadata.name or "") or item  # list leaves the nodes out
        runs.append(TaskRun.from_workflow(workflow))
        nodes.extend(node_rounds(workflow))
    children = [
        row
        for w in client.list_workflows(round_selector(task))
        if (row := RoundRow.from_workflow(w)) is not None
    ]
    known = [r.round for r in (*children, *nodes)] + [r.last_round or 0 for r in runs]
    return TaskView(
        task=task, runs=runs, rounds=merge_rounds(children, nodes, last_round=max(known, default=0))
    )
