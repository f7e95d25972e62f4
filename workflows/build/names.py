"""Names the generated manifests share with the clusters and tools that read them.

Labels and annotations (what the Argo UI and ``kubectl`` filter and show), the edge nodes' pinning
label, the workflow-level output names (``globalName``s the driver and the Argo UI read) and the
names of generated objects. Standard library only.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DESCRIPTION",
    "LABEL_ROUND",
    "LABEL_TASK",
    "NODE_LABEL",
    "TITLE",
    "WorkflowOutputs",
    "round_name_prefix",
    "template_name",
]

#: Edge nodes carry this label with the edge's name: ``kubectl label node N edgefed.io/edge=<edge>``.
NODE_LABEL = "edgefed.io/edge"
LABEL_TASK = "edgefed.io/task"
LABEL_ROUND = "edgefed.io/round"
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


def template_name(task_name: str) -> str:
    """The task's round WorkflowTemplate (``<task>-round``)."""
    return f"{task_name}-round"


def round_name_prefix(task_name: str, round_: int) -> str:
    """``generateName`` of round ``round_``'s Workflow (``<task>-r00007-``; round 0: the init)."""
    return f"{task_name}-r{round_:05d}-"
