"""``submit_task``: a FederatedTask's rounds on a cluster, through the Argo server (the API behind
``edgefed submit``).

The round loop is :class:`~edgefed.workflows.driver.TaskDriver`'s; the executor is an
:class:`~edgefed.workflows.cluster.executor.ArgoExecutor` and the history an
:class:`~edgefed.workflows.cluster.history.ArgoHistory`, so ``submit`` resumes after the last
succeeded round without store credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from edgefed.workflows.cluster.executor import ArgoExecutor
from edgefed.workflows.cluster.history import ArgoHistory

if TYPE_CHECKING:
    from edgefed.workflows.driver import RoundReport, TaskResult
    from edgefed.workflows.spec import FederatedTask

__all__ = ["submit_task"]


def submit_task(
    task: FederatedTask,
    executor: ArgoExecutor,
    *,
    parameters: Mapping[str, str] | None = None,
    on_round: Callable[[RoundReport], None] | None = None,
) -> TaskResult:
    """Run ``task``'s rounds through ``executor``, resuming after its last Succeeded round.

    The task's round WorkflowTemplate is created (or updated) first; each round is then a small
    Workflow referencing it, labelled with task and round.
    """
    from edgefed.workflows.build import round_submission, round_template, to_document
    from edgefed.workflows.driver import TaskDriver

    executor.ensure_template(to_document(round_template(task)))
    driver = TaskDriver(
        task,
        executor=executor,
        registry=ArgoHistory(executor),  # see ArgoHistory
        parameters=parameters,
        on_round=on_round,
        build_round=lambda t, r: to_document(round_submission(t, r)),
    )
    return driver.run()
