"""``edgefed run``: the task Workflow that ``argo submit`` would run, executed by the embedded engine.

The very document :func:`~edgefed.workflows.build.task_workflow` generates runs here: its plan steps
read the registry, its ``round`` resource steps create the round Workflows from the task's round
WorkflowTemplate (installed in the runtime like ``argo template create``), and each finished round
is reported through ``on_round`` as its resource node completes.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import Any

from edgefed.steps.interface import Outputs, Step
from edgefed.workflows.build import (
    TaskOutputs,
    WorkflowOutputs,
    round_template,
    task_submission,
    task_template,
    task_workflow,
    to_document,
)
from edgefed.workflows.build.names import LABEL_TASK, ROUND_TEMPLATE
from edgefed.workflows.build.settings import DEFAULT_SETTINGS, ClusterSettings
from edgefed.workflows.driver import RoundReport, TaskResult
from edgefed.workflows.embedded.engine import Engine, WorkflowResult
from edgefed.workflows.embedded.runtime import EmbeddedRuntime, deciding_failures, failure_message
from edgefed.workflows.errors import RoundFailedError
from edgefed.workflows.phases import Phase
from edgefed.workflows.spec import FederatedTask

__all__ = ["local_task", "run_document", "run_task"]


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class _Rounds:
    """Collects each round's report from the engine's node events (the task's and its children's)."""

    def __init__(self, chained: Callable[[Any], None] | None):
        self.chained = chained
        self.reports: list[RoundReport] = []
        #: Reports for the caller's thread (on_round runs there, not in the engine's loop).
        self.queue: queue.SimpleQueue[RoundReport] = queue.SimpleQueue()
        self.train_seconds: dict[str, dict[str, float]] = {}
        #: Failed pods by workflow name, and the last round whose Workflow failed: (round, its name).
        self.failed_pods: dict[str, list[Any]] = {}
        self.failed_round: tuple[int, str] | None = None
        self._last_end: Any = None

    def _cycle(self, node: Any) -> float | None:
        """Seconds from the previous round's end (the first round: its own start) to ``node``'s end."""
        end = node.finished_at
        if end is None:
            return None
        start = self._last_end or node.started_at
        self._last_end = end
        return (end - start).total_seconds() if start is not None else None

    def __call__(self, node: Any) -> None:
        if self.chained is not None:
            self.chained(node)
        if not node.phase.fulfilled:
            return
        parameters = node.outputs.get("parameters") or {}
        if Phase.is_failure(node.phase):
            if node.template_name == ROUND_TEMPLATE:
                self.failed_round = (int(node.inputs.get("round", 0)), node.inputs.get("name", ""))
            elif node.pod_name:
                self.failed_pods.setdefault(node.name.split(".", 1)[0], []).append(node)
        if node.template_name == Step.TRAIN and node.phase == Phase.SUCCEEDED:
            workflow = node.name.split(".", 1)[0]
            value = parameters.get(Outputs.TRAIN_SECONDS)
            if value:
                edge = node.inputs.get("edge", node.display_name)
                self.train_seconds.setdefault(workflow, {})[edge] = float(value)
        elif node.template_name == ROUND_TEMPLATE and node.phase == Phase.SUCCEEDED:
            name = node.inputs.get("name", "")
            missing = parameters.get(WorkflowOutputs.MISSING_EDGES) or "[]"
            report = RoundReport(
                round=int(node.inputs.get("round", 0)),
                workflow=name,
                accuracy=_float(parameters.get(WorkflowOutputs.ACCURACY)),
                loss=_float(parameters.get(WorkflowOutputs.LOSS)),
                contributors=int(parameters.get(WorkflowOutputs.CONTRIBUTORS) or 0),
                missing=[str(e) for e in json.loads(missing)],
                seconds=node.duration or 0.0,
                train_seconds=self.train_seconds.pop(name, {}),
                cycle_seconds=self._cycle(node),
            )
            self.reports.append(report)
            self.queue.put(report)


def _run_interruptibly(
    engine: Engine,
    document: dict[str, Any],
    parameters: dict[str, str],
    rounds: _Rounds,
    on_round: Callable[[RoundReport], None] | None,
) -> WorkflowResult:
    """Run the engine in a thread of its own; report rounds from this one. Ctrl-C here (or a
    KeyboardInterrupt from ``on_round``) terminates the run, as ``argo terminate`` would, waits for
    it to wind down and re-raises: committed rounds stay committed, the next run resumes after them."""
    outcome: list[WorkflowResult] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(engine.run(document, parameters=parameters))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="edgefed-task", daemon=True)
    thread.start()
    try:
        while thread.is_alive() or not rounds.queue.empty():
            try:
                report = rounds.queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if on_round is not None:
                on_round(report)
    except KeyboardInterrupt:
        engine.terminate()
        thread.join(timeout=60)
        raise
    thread.join()
    if errors:
        raise errors[0]
    return outcome[0]


def _failure(result: Any, rounds: _Rounds, last: int) -> RoundFailedError:
    """Why the task Workflow failed: the round Workflow that failed and the steps that decided it,
    else the task Workflow's own failed steps."""
    if rounds.failed_round is not None:
        round_, name = rounds.failed_round
        reasons = deciding_failures(rounds.failed_pods.get(name, []))
        return RoundFailedError(round_, name, reasons or "its Workflow failed")
    return RoundFailedError(last + 1, result.name, failure_message(result))


def run_task(
    runtime: EmbeddedRuntime,
    task: FederatedTask,
    *,
    parameters: dict[str, str] | None = None,
    on_round: Callable[[RoundReport], None] | None = None,
    settings: ClusterSettings = DEFAULT_SETTINGS,
    from_template: bool = False,
) -> TaskResult:
    """Run ``task``'s task Workflow to its end on ``runtime``; raises :class:`RoundFailedError` when it fails.

    ``parameters``: ``-p`` overrides on top of what the runtime sets (the local store).
    ``from_template``: install the task's WorkflowTemplate and run a Workflow referencing it (what the
    CronWorkflow and ``edgefed submit`` create) instead of the self-contained task Workflow.
    """
    overrides = {**runtime.prepare(task), **(parameters or {})}
    task = local_task(task)
    runtime.install_template(to_document(round_template(task, settings=settings)))
    if from_template:
        runtime.install_template(to_document(task_template(task, settings=settings)))
        document = to_document(task_submission(task, settings=settings))
    else:
        document = to_document(task_workflow(task, settings=settings))
    return run_document(runtime, document, parameters=overrides, on_round=on_round, task=task.name)


def local_task(task: FederatedTask) -> FederatedTask:
    """``task`` as this machine runs it: the stores are the embedded one over loopback HTTP, so the
    certificate trust a cluster needs (``spec.store.caConfigMap``, a ConfigMap volume in every pod)
    names nothing here; everything else is the cluster's document."""
    if task.spec.store.ca_config_map is None:
        return task
    store = task.spec.store.model_copy(update={"ca_config_map": None})
    return task.model_copy(update={"spec": task.spec.model_copy(update={"store": store})})


def run_document(
    runtime: EmbeddedRuntime,
    document: dict[str, Any],
    *,
    parameters: dict[str, str],
    on_round: Callable[[RoundReport], None] | None = None,
    task: str | None = None,
) -> TaskResult:
    """Run a task Workflow document (generated, or as read from ``task.yaml``) on ``runtime``, whose
    templates must hold the round WorkflowTemplate it references."""
    rounds = _Rounds(runtime.on_node)
    engine = runtime.engine(on_node=rounds)
    result = _run_interruptibly(engine, document, parameters, rounds, on_round)
    outputs = dict(result.outputs)
    last = int(outputs.get(TaskOutputs.LAST_ROUND) or 0)
    if not result.succeeded:
        raise _failure(result, rounds, last)
    run = int(outputs.get(TaskOutputs.ROUNDS_RUN) or 0)
    labels = (document.get("metadata") or {}).get("labels") or {}
    return TaskResult(
        task=task or labels.get(LABEL_TASK, result.name),
        rounds=rounds.reports,
        resumed_from=last - run,
        last_round=last,
        stop_reason=outputs.get(TaskOutputs.STOP_REASON, ""),
    )
