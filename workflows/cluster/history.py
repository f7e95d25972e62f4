"""Resume from Argo: the task's Succeeded round workflows, seen as the driver's :class:`RoundHistory`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgefed.workflows.build.names import WorkflowOutputs
from edgefed.workflows.cluster.executor import ArgoExecutor, parameter_map

if TYPE_CHECKING:
    from hera.workflows.models import Workflow as WorkflowModel

__all__ = ["ArgoHistory"]


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
        outputs = parameter_map(workflow.status.outputs.parameters)
        try:
            accuracy = float(outputs.get(WorkflowOutputs.ACCURACY) or "")
        except ValueError:
            return None
        evaluation: dict[str, Any] = {"accuracy": accuracy, "workflow": workflow.metadata.name}
        try:
            evaluation["loss"] = float(outputs.get(WorkflowOutputs.LOSS) or "")
        except ValueError:
            evaluation["loss"] = None
        return evaluation
