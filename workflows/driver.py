"""The task driver: round after round, one Workflow each, until a stop condition holds.

The driver owns the loop written once: build the round's Workflow (``edgefed.workflows.build``), hand it to a
:class:`RoundExecutor` (the embedded engine here; an Argo server for ``edgefed submit``), read the
round's outputs, check the stop conditions. State lives only in the model bucket: the last
committed round is found there, so a rerun after an interruption resumes after it, and no
committed round is ever redone (the aggregate step also refuses to overwrite one).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from edgefed.steps.planning import StopState, min_delta, stop_reason
from edgefed.workflows.build import WorkflowOutputs, init_workflow, round_workflow, step_config, to_document
from edgefed.workflows.errors import RoundFailedError
from edgefed.workflows.spec import FederatedTask


@dataclass(frozen=True)
class RoundOutcome:
    """What a round's workflow run returned."""

    workflow: str
    succeeded: bool
    message: str = ""
    outputs: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    train_seconds: Mapping[str, float] = field(default_factory=dict)


class RoundHistory(Protocol):
    """Where the driver learns what is committed: the model registry, or an Argo server's history."""

    def last_round(self, task: str) -> int | None: ...

    def evaluation(self, task: str, round_: int) -> dict[str, Any] | None: ...


class RoundExecutor(Protocol):
    """Runs one workflow document to completion with the given parameter overrides."""

    def execute(self, document: dict[str, Any], parameters: dict[str, str]) -> RoundOutcome: ...


@dataclass
class RoundReport:
    round: int
    workflow: str
    accuracy: float | None
    loss: float | None
    contributors: int
    missing: list[str]
    seconds: float
    train_seconds: Mapping[str, float]
    #: from the end of the previous round (or the start of the first) to the end of this one: the round
    #: as the task lives it, with the plan between rounds; None when only the round itself was timed
    cycle_seconds: float | None = None

    @property
    def overhead(self) -> float:
        """The round's time beyond its slowest edge's training compute: what orchestration, the store,
        the contract checks, the aggregate and the evaluation cost (issue 13: <= 0.1 s at 10 edges)."""
        wall = self.cycle_seconds if self.cycle_seconds is not None else self.seconds
        return wall - max(self.train_seconds.values(), default=0.0)


@dataclass
class TaskResult:
    task: str
    rounds: list[RoundReport]
    resumed_from: int
    last_round: int
    stop_reason: str


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class TaskDriver:
    """Drives one FederatedTask through an executor against its model registry."""

    def __init__(
        self,
        task: FederatedTask,
        *,
        executor: RoundExecutor,
        registry: RoundHistory,
        parameters: Mapping[str, str] | None = None,
        on_round: Callable[[RoundReport], None] | None = None,
        build_round: Callable[[FederatedTask, int], dict[str, Any]] | None = None,
    ) -> None:
        """``build_round(task, round)``: the document of a round; by default the self-contained
        round Workflow (``edgefed submit`` passes small submissions of the task's WorkflowTemplate)."""
        self.build_round = build_round or (lambda t, r: to_document(round_workflow(t, r)))
        self.task = task
        self.executor = executor
        self.registry = registry
        self.parameters = dict(parameters or {})
        self.on_round = on_round
        self.plan = step_config(task)["plan"]

    def _state(self, last: int) -> StopState:
        state = StopState()
        for round_ in range(1, last + 1):
            evaluation = self.registry.evaluation(self.task.name, round_)
            if evaluation is not None:
                state.observe(round_, float(evaluation["accuracy"]), min_delta(self.plan))
        return state

    def ensure_initial_model(self) -> None:
        if self.registry.last_round(self.task.name) is not None:
            return
        outcome = self.executor.execute(to_document(init_workflow(self.task)), self.parameters)
        if not outcome.succeeded:
            raise RoundFailedError(0, outcome.workflow, outcome.message)

    def run(self) -> TaskResult:
        task = self.task
        self.ensure_initial_model()
        last = self.registry.last_round(task.name) or 0
        resumed_from = last
        state = self._state(last)
        reports: list[RoundReport] = []
        reason = stop_reason(self.plan, last, state) if last > 0 else None
        round_ = last
        while reason is None:
            round_ += 1
            document = self.build_round(task, round_)
            outcome = self.executor.execute(document, self.parameters)
            if not outcome.succeeded:
                raise RoundFailedError(round_, outcome.workflow, outcome.message)
            accuracy = _float(outcome.outputs.get(WorkflowOutputs.ACCURACY))
            missing = outcome.outputs.get(WorkflowOutputs.MISSING_EDGES) or "[]"
            report = RoundReport(
                round=round_,
                workflow=outcome.workflow,
                accuracy=accuracy,
                loss=_float(outcome.outputs.get(WorkflowOutputs.LOSS)),
                contributors=int(outcome.outputs.get(WorkflowOutputs.CONTRIBUTORS) or 0),
                missing=[str(e) for e in json.loads(missing)],
                seconds=outcome.seconds,
                train_seconds=outcome.train_seconds,
            )
            reports.append(report)
            if accuracy is not None:
                state.observe(round_, accuracy, min_delta(self.plan))
            if self.on_round:
                self.on_round(report)
            reason = stop_reason(self.plan, round_, state)
        return TaskResult(task.name, reports, resumed_from, round_, reason)


__all__ = [
    "RoundExecutor",
    "RoundHistory",
    "RoundOutcome",
    "RoundReport",
    "TaskDriver",
    "TaskResult",
]
