"""An incremental learning job's check, run on the embedded engine: the very Workflow a CronWorkflow starts.

The task's WorkflowTemplates (round and task) are installed first, as on a cluster, so the check's ``retrain``
step creates the task Workflow from ``<task>-task`` and it runs its rounds as child Workflows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edgefed.workflows.build.incremental import check_workflow
from edgefed.workflows.build.settings import (
    DEFAULT_SETTINGS,
    ClusterSettings,
)
from edgefed.workflows.build.workflows import round_template, task_template, to_document
from edgefed.workflows.embedded.runtime import EmbeddedRuntime
from edgefed.workflows.embedded.task import local_task
from edgefed.workflows.spec import FederatedTask
from edgefed.workflows.spec.incremental import IncrementalLearningJob

__all__ = ["CheckResult", "run_check"]


@dataclass(frozen=True)
class CheckResult:
    workflow: str
    succeeded: bool
    message: str
    decision: dict[str, Any] | None  # <task>/incremental/<workflow>.json: fired or not, why, the outcome


def run_check(
    runtime: EmbeddedRuntime,
    job: IncrementalLearningJob,
    task: FederatedTask,
    *,
    trigger: str = "check",
    settings: ClusterSettings = DEFAULT_SETTINGS,
) -> CheckResult:
    """Run the job's check Workflow once; the decision it recorded (None if it recorded none)."""
    from edgefed.steps import layout
    from edgefed.steps.store import DataUnavailableError, get_bytes

    overrides = runtime.prepare(task)
    task = local_task(task)
    runtime.install_template(to_document(round_template(task, settings=settings)))
    runtime.install_template(to_document(task_template(task, settings=settings)))
    document = to_document(check_workflow(job, task, trigger=trigger, settings=settings))
    outcome = runtime.execute(document, overrides)
    cloud = runtime.store.client(layout.CLOUD_IDENTITY)
    try:
        decision = json.loads(
            get_bytes(cloud, layout.MODELS_BUCKET, layout.incremental_key(task.name, outcome.workflow))
        )
    except DataUnavailableError:
        decision = None
    return CheckResult(outcome.workflow, outcome.succeeded, outcome.message, decision)
