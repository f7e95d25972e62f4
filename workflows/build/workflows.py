"""The Argo objects of a task, built with Hera: pure functions of the task and :class:`ClusterSettings`.

* :func:`round_workflow`: a self-contained round Workflow (``argo submit`` it; the embedded engine runs it);
* :func:`round_template` + :func:`round_submission`: the same round as a WorkflowTemplate, and the small
  Workflow that runs one round of it (what ``edgefed submit`` creates for each round);
* :func:`init_workflow`: commits the task's initial model (round 0);
* :func:`task_workflow` (and :func:`task_template`, :func:`task_submission`): the whole task as one
  Workflow whose rounds are child Workflows of the round template (:mod:`.task`);
* :func:`cron_workflow`: scheduled retraining, which runs the task's WorkflowTemplate;
* :func:`manifests`: all of them by file name.

No globals, no I/O, deterministic output.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hera.workflows import CronWorkflow, Parameter, Workflow, WorkflowTemplate
from hera.workflows import models as m

from edgefed.workflows.build import argo41
from edgefed.workflows.build.names import (
    DESCRIPTION,
    KIND_ROUND,
    KIND_TASK,
    LABEL_KIND,
    LABEL_ROUND,
    LABEL_TASK,
    TITLE,
    mutex_name,
    round_name_prefix,
    task_name_prefix,
    task_template_name,
    template_name,
)
from edgefed.workflows.build.pods import workflow_security
from edgefed.workflows.build.settings import DEFAULT_SETTINGS, ClusterSettings, Resources
from edgefed.workflows.build.task import add_task_templates, task_parameters
from edgefed.workflows.build.templates import (
    add_init_template,
    add_task_round_templates,
    dataset_key_parameter,
    gauge,
    round_parameters,
)
from edgefed.workflows.spec import FederatedTask

__all__ = [
    "TASK_FILE",
    "cron_workflow",
    "init_workflow",
    "manifests",
    "round_submission",
    "round_template",
    "round_workflow",
    "task_submission",
    "task_template",
    "task_workflow",
    "to_document",
]


def for_task(task: FederatedTask, settings: ClusterSettings) -> ClusterSettings:
    """``settings`` with what the task's spec says of them: per-role resources, the stores' CA."""
    resources = task.spec.resources

    def role(spec: Any, default: Resources) -> Resources:
        return default if spec is None else Resources(requests=dict(spec.requests), limits=dict(spec.limits))

    return replace(
        settings,
        edge_resources=role(resources.edge, settings.edge_resources),
        cloud_resources=role(resources.cloud, settings.cloud_resources),
        ca_config_map=task.spec.store.ca_config_map or settings.ca_config_map,
    )


def _spec_settings(settings: ClusterSettings, *, service_account: str) -> dict[str, Any]:
    """Cluster housekeeping shared by every generated workflow; ``service_account``: the workflow's
    (each pod-making template names its role's own)."""
    return {
        "service_account_name": service_account,
        "pod_gc": m.PodGC(strategy=settings.pod_gc),
        "ttl_strategy": m.TTLStrategy(
            seconds_after_success=settings.ttl_after_success_seconds,
            seconds_after_failure=settings.ttl_after_failure_seconds,
        ),
        "artifact_repository_ref": (
            m.ArtifactRepositoryRef(
                config_map=settings.artifact_repository[0], key=settings.artifact_repository[1]
            )
            if settings.artifact_repository
            else None
        ),
        **workflow_security(settings),
    }


def _round_spec(settings: ClusterSettings, *, arguments: list[Parameter]) -> dict[str, Any]:
    """What every round-running Workflow or WorkflowTemplate has: its entrypoint, parameters,
    deadline, duration metric and the housekeeping."""
    return {
        "entrypoint": "round",
        "arguments": arguments,
        "active_deadline_seconds": settings.round_deadline_seconds,
        "metrics": m.Metrics(
            prometheus=[
                gauge("edgefed_round_duration_seconds", "wall time of the round", "{{workflow.duration}}")
            ]
        ),
        **_spec_settings(settings, service_account=settings.service_accounts.cloud),
    }


def _describe(task: FederatedTask, round_: int) -> dict[str, str]:
    names = [e.name for e in task.spec.edges]
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return {
        TITLE: f"{task.name}: round {round_}",
        DESCRIPTION: (
            f"Federated round {round_} of task {task.name}: {len(names)} edges ({shown}); "
            f"{task.spec.aggregation.algorithm}, quorum {task.spec.quorum}"
        ),
    }


def _labels(task: FederatedTask, round_: int, settings: ClusterSettings) -> dict[str, str]:
    return {LABEL_TASK: task.name, LABEL_ROUND: str(round_), **settings.extra_labels}


def _evaluate_due(task: FederatedTask, round_: int) -> bool:
    return round_ % task.spec.evaluation.every_rounds == 0 or round_ == task.spec.last_round


def round_workflow(
    task: FederatedTask,
    round_: int,
    *,
    evaluate: bool | None = None,
    settings: ClusterSettings = DEFAULT_SETTINGS,
) -> Workflow:
    """The self-contained Workflow of round ``round_`` (>= 1) of ``task``."""
    if round_ < 1:
        raise ValueError(f"rounds are numbered from 1, got {round_}")
    settings = for_task(task, settings)
    due = _evaluate_due(task, round_) if evaluate is None else evaluate
    with Workflow(
        generate_name=round_name_prefix(task.name, round_),
        labels=_labels(task, round_, settings),
        annotations=_describe(task, round_),
        parallelism=task.spec.parallelism,
        **_round_spec(
            settings,
            arguments=round_parameters(task, round_=round_, evaluate=due) + dataset_key_parameter(task),
        ),
    ) as workflow:
        add_task_round_templates(task, settings)
    return workflow


def round_template(task: FederatedTask, *, settings: ClusterSettings = DEFAULT_SETTINGS) -> WorkflowTemplate:
    """The task's round as a WorkflowTemplate (``<task>-round``): task values baked in, round per submission."""
    settings = for_task(task, settings)
    with WorkflowTemplate(
        name=template_name(task.name),
        labels={LABEL_TASK: task.name, **settings.extra_labels},
        annotations={
            TITLE: f"{task.name}: one federated round",
            DESCRIPTION: _describe(task, 0)[DESCRIPTION],
        },
        parallelism=task.spec.parallelism,
        # Workflows submitted from a template do not inherit its labels: these put task and round on them.
        workflow_metadata=m.WorkflowMetadata(
            labels={LABEL_TASK: task.name, LABEL_KIND: KIND_ROUND},
            labels_from={LABEL_ROUND: m.LabelValueFrom(expression="workflow.parameters.round")},
        ),
        **_round_spec(
            settings,
            arguments=round_parameters(task, round_=None, evaluate=None) + dataset_key_parameter(task),
        ),
    ) as template:
        add_task_round_templates(task, settings)
    return template


def round_submission(
    task: FederatedTask,
    round_: int,
    *,
    evaluate: bool | None = None,
    settings: ClusterSettings = DEFAULT_SETTINGS,
) -> Workflow:
    """The Workflow that runs round ``round_`` from the task's round WorkflowTemplate."""
    due = _evaluate_due(task, round_) if evaluate is None else evaluate
    return Workflow(
        generate_name=round_name_prefix(task.name, round_),
        labels=_labels(task, round_, settings),
        annotations=_describe(task, round_),
        workflow_template_ref=m.WorkflowTemplateRef(name=template_name(task.name)),
        arguments=[
            Parameter(name="round", value=str(round_)),
            Parameter(name="evaluate", value="true" if due else "false"),
        ],
    )


def init_workflow(task: FederatedTask, *, settings: ClusterSettings = DEFAULT_SETTINGS) -> Workflow:
    """The Workflow that commits the task's initial model as round 0 (once per task)."""
    settings = for_task(task, settings)
    with Workflow(
        generate_name=round_name_prefix(task.name, 0),
        labels=_labels(task, 0, settings),
        annotations={TITLE: f"{task.name}: initial model", DESCRIPTION: f"Commits round 0 of {task.name}"},
        entrypoint="init",
        arguments=round_parameters(task, round_=0, evaluate=False),
        active_deadline_seconds=settings.aggregate_deadline_seconds,
        **_spec_settings(settings, service_account=settings.service_accounts.cloud),
    ) as workflow:
        add_init_template(task, settings)
    return workflow


def _task_spec(task: FederatedTask, settings: ClusterSettings) -> dict[str, Any]:
    parameters = round_parameters(task, round_=None, evaluate=None) + dataset_key_parameter(task)
    return {
        "entrypoint": "task",
        "arguments": task_parameters(parameters),
        # One task Workflow of a task at a time: a second one waits for the first (Argo queues it).
        "synchronization": m.Synchronization(mutexes=[m.Mutex(name=mutex_name(task.name))]),
        **_spec_settings(settings, service_account=settings.service_accounts.driver),
    }


def _task_annotations(task: FederatedTask) -> dict[str, str]:
    return {
        TITLE: f"{task.name}: federated task, {task.spec.last_round} rounds",
        DESCRIPTION: _describe(task, 0)[DESCRIPTION].replace("Federated round 0 of task", "Federated task"),
    }


def task_workflow(task: FederatedTask, *, settings: ClusterSettings = DEFAULT_SETTINGS) -> Workflow:
    """The task Workflow: init, every round as a child Workflow, the stop (``argo submit`` it)."""
    settings = for_task(task, settings)
    with Workflow(
        generate_name=task_name_prefix(task.name),
        labels={LABEL_TASK: task.name, LABEL_KIND: KIND_TASK, **settings.extra_labels},
        annotations=_task_annotations(task),
        **_task_spec(task, settings),
    ) as workflow:
        add_task_templates(task, settings)
    return workflow


def task_template(task: FederatedTask, *, settings: ClusterSettings = DEFAULT_SETTINGS) -> WorkflowTemplate:
    """The task Workflow as a WorkflowTemplate (``<task>-task``): what the CronWorkflow and
    ``edgefed submit`` run."""
    settings = for_task(task, settings)
    with WorkflowTemplate(
        name=task_template_name(task.name),
        labels={LABEL_TASK: task.name, **settings.extra_labels},
        annotations=_task_annotations(task),
        workflow_metadata=m.WorkflowMetadata(labels={LABEL_TASK: task.name, LABEL_KIND: KIND_TASK}),
        **_task_spec(task, settings),
    ) as template:
        add_task_templates(task, settings)
    return template


def task_submission(task: FederatedTask, *, settings: ClusterSettings = DEFAULT_SETTINGS) -> Workflow:
    """A task Workflow that runs the task's WorkflowTemplate."""
    return Workflow(
        generate_name=task_name_prefix(task.name),
        labels={LABEL_TASK: task.name, LABEL_KIND: KIND_TASK, **settings.extra_labels},
        annotations=_task_annotations(task),
        workflow_template_ref=m.WorkflowTemplateRef(name=task_template_name(task.name)),
    )


def cron_workflow(task: FederatedTask, *, settings: ClusterSettings = DEFAULT_SETTINGS) -> CronWorkflow:
    """Scheduled retraining: a CronWorkflow that runs the task's WorkflowTemplate.

    A scheduled run continues the task after its last committed round (the plan reads the registry),
    runs new rounds when the task allows more, and stops at once when it does not. Nothing in it
    talks to argo-server: the controller creates the Workflow.
    """
    return CronWorkflow(
        name=f"{task.name}-retrain",
        labels={LABEL_TASK: task.name, **settings.extra_labels},
        annotations={
            TITLE: f"{task.name}: scheduled retraining",
            DESCRIPTION: "Runs the task Workflow: continues after the last committed round",
        },
        schedules=[settings.cron_schedule],
        # The task's mutex queues a run that overlaps another; Forbid does not even start one.
        concurrency_policy="Forbid",
        starting_deadline_seconds=600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        workflow_metadata=m.WorkflowMetadata(labels={LABEL_TASK: task.name, LABEL_KIND: KIND_TASK}),
        workflow_template_ref=m.WorkflowTemplateRef(name=task_template_name(task.name)),
    )


def to_document(workflow: Workflow | WorkflowTemplate | CronWorkflow) -> dict[str, Any]:
    """The Argo document (plain dict, as ``argo submit`` would read from YAML)."""
    return argo41.dump(workflow)


#: The file ``argo submit`` runs: the whole task.
TASK_FILE = "task.yaml"


def manifests(
    task: FederatedTask, *, cron: bool = False, settings: ClusterSettings = DEFAULT_SETTINGS
) -> dict[str, dict[str, Any]]:
    """Everything a cluster needs for ``task``, by file name."""
    out = {
        TASK_FILE: to_document(task_workflow(task, settings=settings)),
        f"{task.name}-task-template.yaml": to_document(task_template(task, settings=settings)),
        f"{task.name}-round-template.yaml": to_document(round_template(task, settings=settings)),
        f"{task.name}-init.yaml": to_document(init_workflow(task, settings=settings)),
        f"{task.name}-round-00001.yaml": to_document(round_workflow(task, 1, settings=settings)),
        f"{task.name}-round-00001-from-template.yaml": to_document(
            round_submission(task, 1, settings=settings)
        ),
    }
    if cron:
        out[f"{task.name}-retrain-cron.yaml"] = to_document(cron_workflow(task, settings=settings))
    return out
