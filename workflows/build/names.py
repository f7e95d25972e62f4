"""Names the generated manifests share with the clusters and tools that read them.

Labels and annotations (what the Argo UI and ``kubectl`` filter and show), the edge nodes' pinning
label, the workflow-level output names (``globalName``s the driver and the Argo UI read) and the
names of generated objects. Standard library only.
"""

from __future__ import annotations

from typing import Final

from edgefed.steps.interface import round_workflow_name

__all__ = [
    "DESCRIPTION",
    "KIND_ROUND",
    "KIND_TASK",
    "LABEL_KIND",
    "LABEL_ROUND",
    "LABEL_TASK",
    "NODE_LABEL",
    "ROUND_TEMPLATE",
    "TITLE",
    "TaskOutputs",
    "WorkflowOutputs",
    "mutex_name",
    "round_name_prefix",
    "round_workflow_name",
    "task_name_prefix",
    "task_template_name",
    "template_name",
]

#: Edge nodes carry this label with the edge's name (``kubectl label node N <NODE_LABEL>=<edge>``).
#: Its ``node-restriction.kubernetes.io/`` prefix is one the NodeRestriction admission plugin never lets a
#: kubelet set on its own Node: a compromised node cannot label itself another edge and attract that
#: edge's pods (and, with them, the right to read its Secrets).
NODE_LABEL = "node-restriction.kubernetes.io/edgefed-edge"
LABEL_TASK = "edgefed.io/task"
LABEL_ROUND = "edgefed.io/round"
#: What a Workflow is to edgefed: the task Workflow, or one round of it (``edgefed status`` lists them).
LABEL_KIND = "edgefed.io/kind"
KIND_TASK = "task"
KIND_ROUND = "round"
#: Argo UI's title and description annotations.
TITLE = "workflows.argoproj.io/title"
DESCRIPTION = "workflows.argoproj.io/description"


class WorkflowOutputs:
    """A round Workflow's outputs (``status.outputs.parameters``), set through ``globalName``."""

    MODEL_VERSION: Final = "model-version"
    CONTRIBUTORS: Final = "contributors"
    MISSING_EDGES: Final = "missing-edges"
    ACCURACY: Final = "accuracy"
    LOSS: Final = "loss"


#: The task Workflow's resource template that creates and waits for one round's Workflow (its step is
#: ``round``; the round Workflow's own entrypoint is the ``round`` DAG, a template of another Workflow).
ROUND_TEMPLATE = "round-workflow"


class TaskOutputs:
    """The task Workflow's outputs (``status.outputs.parameters``), set by its last plan step."""

    MODEL_VERSION: Final = "model-version"
    ACCURACY: Final = "accuracy"
    LAST_ROUND: Final = "last-round"
    ROUNDS_RUN: Final = "rounds-run"
    STOP_REASON: Final = "stop-reason"


def task_template_name(task_name: str) -> str:
    """The task's task-Workflow WorkflowTemplate (``<task>-task``)."""
    return f"{task_name}-task"


def task_name_prefix(task_name: str) -> str:
    """``generateName`` of the task Workflow."""
    return f"{task_name}-"


def mutex_name(task_name: str) -> str:
    """The ``synchronization`` mutex one task's Workflows share: one runs at a time."""
    return f"edgefed-task-{task_name}"


def template_name(task_name: str) -> str:
    """The task's round WorkflowTemplate (``<task>-round``)."""
    return f"{task_name}-round"


def round_name_prefix(task_name: str, round_: int) -> str:
    """``generateName`` of round ``round_``'s Workflow (``<task>-r00007-``; round 0: the init)."""
    return f"{task_name}-r{round_:05d}-"
