"""The Argo objects of an IncrementalLearningJob: its check Workflow, CronWorkflows, and an Argo Events pair.

The check (one Workflow; :mod:`edgefed.steps.incremental` has what each step does)::

    probe (fan-out, each edge's node)  ──►  decide  ──►  retrain  ──►  promote-if-better
                                                 when decide said retrain

``retrain`` is a resource step (the driver ServiceAccount) that creates the task's own task Workflow
(``<task>-task`` WorkflowTemplate, issue 7's) with the config ``decide`` wrote: the last round moved past the
served model, so the task Workflow continues from it, every round a child Workflow as usual. It waits for that
Workflow to end.

Generated (:func:`job_manifests`):

* ``<job>-check`` WorkflowTemplate, and a self-contained ``<job>-check-`` Workflow (``argo submit`` it, or
  ``edgefed incremental check`` runs it embedded);
* ``<job>-check`` CronWorkflow (``spec.checkSchedule``, trigger ``check``), and with ``triggers.schedule`` a
  ``<job>-scheduled`` CronWorkflow (trigger ``schedule``: retrains whatever the data);
* for clusters with Argo Events: an EventSource (MinIO bucket notifications on new objects under each edge's
  dataset key, in its own site store) and a Sensor that submits the check (trigger ``event``) on any of them.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import (
    DAG,
    CronWorkflow,
    Parameter,
    RawArtifact,
    Resource,
    Task,
    Workflow,
    WorkflowTemplate,
)
from hera.workflows import models as m

from edgefed.steps.interface import EDGES_FILE, Flag, Outputs, Step, flag
from edgefed.workflows.build.edges import varying_fields
from edgefed.workflows.build.names import DESCRIPTION, LABEL_KIND, LABEL_TASK, TITLE, task_template_name
from edgefed.workflows.build.settings import DEFAULT_SETTINGS, ClusterSettings
from edgefed.workflows.build.task import TASK_PARAMETERS, _block, driver_pod
from edgefed.workflows.build.templates import (
    cloud_step,
    dataset_key_parameter,
    edge_dataset_args,
    every_outcome,
    output,
    over_edges,
    round_parameters,
    task_args,
    task_edge_step,
)
from edgefed.workflows.build.workflows import _spec_settings, for_task, to_document
from edgefed.workflows.spec import FederatedTask
from edgefed.workflows.spec.incremental import IncrementalLearningJob

__all__ = [
    "ARGO_EVENTS_API",
    "KIND_CHECK",
    "LABEL_JOB",
    "check_template",
    "check_workflow",
    "cron_workflows",
    "event_source",
    "job_manifests",
    "sensor",
]

LABEL_JOB = "edgefed.io/incremental-job"
KIND_CHECK = "incremental-check"
ARGO_EVENTS_API = "argoproj.io/v1alpha1"
_DECIDE = "{{tasks." + Step.DECIDE + ".outputs.parameters.%s}}"


def _check_template_name(job: IncrementalLearningJob) -> str:
    return f"{job.name}-check"


def _parameters(job: IncrementalLearningJob, task: FederatedTask, trigger: str) -> list[Parameter]:
    import json

    task_level = [
        p
        for p in round_parameters(task, round_=None, evaluate=None) + dataset_key_parameter(task)
        if p.name in TASK_PARAMETERS
    ]
    return [
        *task_level,
        Parameter(
            name="job",
            description="the job's triggers, retraining, promotion rule (JSON)",
            value=json.dumps(job.decision_config(), sort_keys=True, separators=(",", ":")),
        ),
        Parameter(
            name="trigger",
            description="what started this check",
            enum=["check", "schedule", "event"],
            value=trigger,
        ),
    ]


def _retrain_manifest(task: FederatedTask, job: IncrementalLearningJob) -> str:
    """The task Workflow the ``retrain`` step creates from the task's WorkflowTemplate (text Argo substitutes)."""
    arguments = [
        (name, _block(f"{{{{workflow.parameters.{name}}}}}", 10))
        for name in TASK_PARAMETERS
        if name != "config"
    ]
    arguments.append(("config", _block("{{inputs.parameters.config}}", 10)))
    parameters = "".join(f"      - name: {name}\n        value: {value}\n" for name, value in arguments)
    return (
        "apiVersion: argoproj.io/v1alpha1\n"
        "kind: Workflow\n"
        "metadata:\n"
        f"  generateName: {task.name}-retrain-\n"
        "  labels:\n"
        f"    {LABEL_TASK}: {task.name}\n"
        f"    {LABEL_KIND}: task\n"
        f"    {LABEL_JOB}: {job.name}\n"
        "  annotations:\n"
        f'    {TITLE}: "{task.name}: retraining by {job.name}"\n'
        # not the reason itself: it is free text, and the manifest is YAML Argo substitutes as text
        f'    {DESCRIPTION}: "started by {{{{workflow.name}}}} (its decide step says why)"\n'
        "spec:\n"
        "  workflowTemplateRef:\n"
        f"    name: {task_template_name(task.name)}\n"
        "  arguments:\n"
        "    parameters:\n"
        f"{parameters}"
    )


def _add_check_templates(job: IncrementalLearningJob, task: FederatedTask, settings: ClusterSettings) -> None:
    fields = varying_fields(task)
    job_flag = flag(Flag.JOB, "{{workflow.parameters.job}}")
    probe = task_edge_step(
        task,
        settings,
        Step.PROBE,
        [output(Outputs.NEW_ROWS)],
        [*task_args(), job_flag, *edge_dataset_args(fields)],
    )
    decide = cloud_step(
        Step.DECIDE,
        image=task.spec.image,
        cloud_secret=task.spec.cloud_credentials_secret,
        args=[
            *task_args(),
            job_flag,
            flag(Flag.EDGES_FILE, EDGES_FILE),
            flag(Flag.TRIGGER, "{{workflow.parameters.trigger}}"),
        ],
        inputs=[RawArtifact(name="edges", path=EDGES_FILE, data="{{workflow.parameters.edges}}")],
        outputs=[
            output(Outputs.RETRAIN, global_name="retrain"),
            output(Outputs.REASON, global_name="reason"),
            output(Outputs.BASE_ROUND),
            output(Outputs.TASK_CONFIG),
        ],
        settings=settings,
        deadline_seconds=settings.aggregate_deadline_seconds,
    )
    retrain = Resource(
        name="retrain",
        action="create",
        set_owner_reference=True,
        success_condition="status.phase == Succeeded",
        failure_condition="status.phase in (Failed, Error)",
        manifest=_retrain_manifest(task, job),
        inputs=[Parameter(name="config")],  # decide's: the task config the retraining runs with
        outputs=[
            Parameter(name="phase", value_from=m.ValueFrom(json_path="{.status.phase}")),
            Parameter(name="workflow", value_from=m.ValueFrom(json_path="{.metadata.name}")),
        ],
        active_deadline_seconds=settings.round_deadline_seconds,
        **driver_pod(settings),
    )
    promote = cloud_step(
        Step.PROMOTE_IF_BETTER,
        image=task.spec.image,
        cloud_secret=task.spec.cloud_credentials_secret,
        args=[*task_args(), job_flag, flag(Flag.SINCE, "{{inputs.parameters.since}}")],
        inputs=[Parameter(name="since")],
        outputs=[
            output(Outputs.PROMOTED, global_name="promoted"),
            output(Outputs.REASON, global_name="promotion"),
        ],
        settings=settings,
        deadline_seconds=settings.evaluate_deadline_seconds,
    )
    with DAG(name="check"):
        probes = over_edges("probe", probe, fields)
        # An edge that cannot be probed (down, its data unreadable) does not stop the others' triggers.
        decided = Task(name=Step.DECIDE, template=decide, depends=every_outcome(probes.name))
        retrained = Task(
            name="retrain",
            template=retrain,
            depends=decided.name,
            when=f"{_DECIDE % Outputs.RETRAIN} == true",
            arguments={"config": _DECIDE % Outputs.TASK_CONFIG},
        )
        Task(
            name=Step.PROMOTE_IF_BETTER,
            template=promote,
            depends=f"{retrained.name}.Succeeded",  # bare "retrain" would also run when it was skipped
            arguments={"since": _DECIDE % Outputs.BASE_ROUND},
        )


def _meta(job: IncrementalLearningJob, task: FederatedTask, settings: ClusterSettings) -> dict[str, Any]:
    return {
        "labels": {
            LABEL_TASK: task.name,
            LABEL_JOB: job.name,
            LABEL_KIND: KIND_CHECK,
            **settings.extra_labels,
        },
        "annotations": {
            TITLE: f"{job.name}: incremental learning check of {task.name}",
            DESCRIPTION: "probe each edge's new data; retrain the served model when a trigger fires; "
            f"promote only if better by >= {job.spec.promotion.min_improvement:g}",
        },
    }


def _check(job: IncrementalLearningJob, task: FederatedTask) -> None:
    if job.spec.task != task.name:
        raise ValueError(f"job {job.name!r} is for task {job.spec.task!r}, not {task.name!r}")


def check_workflow(
    job: IncrementalLearningJob,
    task: FederatedTask,
    *,
    trigger: str = "check",
    settings: ClusterSettings = DEFAULT_SETTINGS,
) -> Workflow:
    """The self-contained check Workflow (``argo submit`` it; ``edgefed incremental check`` runs it)."""
    _check(job, task)
    settings = for_task(task, settings)
    with Workflow(
        generate_name=f"{job.name}-check-",
        entrypoint="check",
        arguments=_parameters(job, task, trigger),
        **_meta(job, task, settings),
        **_spec_settings(settings, service_account=settings.service_accounts.cloud),
    ) as workflow:
        _add_check_templates(job, task, settings)
    return workflow


def check_template(
    job: IncrementalLearningJob, task: FederatedTask, *, settings: ClusterSettings = DEFAULT_SETTINGS
) -> WorkflowTemplate:
    """The check as a WorkflowTemplate: what the CronWorkflows and the Sensor run."""
    _check(job, task)
    settings = for_task(task, settings)
    meta = _meta(job, task, settings)
    with WorkflowTemplate(
        name=_check_template_name(job),
        entrypoint="check",
        arguments=_parameters(job, task, "check"),
        workflow_metadata=m.WorkflowMetadata(
            labels={LABEL_TASK: task.name, LABEL_JOB: job.name, LABEL_KIND: KIND_CHECK}
        ),
        **meta,
        **_spec_settings(settings, service_account=settings.service_accounts.cloud),
    ) as template:
        _add_check_templates(job, task, settings)
    return template


def _cron(
    job: IncrementalLearningJob,
    task: FederatedTask,
    settings: ClusterSettings,
    *,
    name: str,
    schedule: str,
    trigger: str,
    what: str,
) -> CronWorkflow:
    return CronWorkflow(
        name=name,
        labels={LABEL_TASK: task.name, LABEL_JOB: job.name, **settings.extra_labels},
        annotations={
            TITLE: f"{job.name}: {what}",
            DESCRIPTION: f"runs {_check_template_name(job)} ({trigger})",
        },
        schedules=[schedule],
        concurrency_policy="Forbid",  # one check at a time: a retraining may outlast the schedule
        starting_deadline_seconds=600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        workflow_metadata=m.WorkflowMetadata(
            labels={LABEL_TASK: task.name, LABEL_JOB: job.name, LABEL_KIND: KIND_CHECK}
        ),
        workflow_template_ref=m.WorkflowTemplateRef(name=_check_template_name(job)),
        arguments=[Parameter(name="trigger", value=trigger)],
    )


def cron_workflows(
    job: IncrementalLearningJob, task: FederatedTask, *, settings: ClusterSettings = DEFAULT_SETTINGS
) -> list[CronWorkflow]:
    """The check on ``checkSchedule``; with a schedule trigger, the unconditional retraining on its own."""
    crons = [
        _cron(
            job,
            task,
            settings,
            name=f"{job.name}-check",
            schedule=job.spec.check_schedule,
            trigger="check",
            what="checks the triggers",
        )
    ]
    if job.spec.triggers.schedule:
        crons.append(
            _cron(
                job,
                task,
                settings,
                name=f"{job.name}-scheduled",
                schedule=job.spec.triggers.schedule,
                trigger="schedule",
                what="scheduled retraining",
            )
        )
    return crons


def _event_name(edge: str) -> str:
    return f"new-data-{edge}"


def event_source(job: IncrementalLearningJob, task: FederatedTask) -> dict[str, Any]:
    """Argo Events EventSource: each edge's own store notifies new objects under its dataset's key."""
    from edgefed.steps.interface import SECRET_ACCESS_KEY, SECRET_SECRET_KEY, notify_secret

    minio: dict[str, Any] = {}
    for edge in task.spec.edges:
        store = edge.store or None
        endpoint = store.endpoint if store else f"{edge.node}:{task.spec.site_store.port}"
        secure = store.secure if store else task.spec.site_store.secure
        key = edge.dataset.key
        prefix, _, name = key.rpartition("/")
        minio[_event_name(edge.name)] = {
            "bucket": {"name": edge.dataset.bucket},
            "endpoint": endpoint,
            "events": ["s3:ObjectCreated:Put", "s3:ObjectCreated:CompleteMultipartUpload"],
            "filter": {"prefix": f"{prefix}/" if prefix else "", "suffix": name},
            "insecure": not secure,
            # the notification-only identity (policy.notification_model): never the site identity, which
            # reads and writes the hospital's data, in a cloud-side pod
            "accessKey": {"name": notify_secret(edge.name), "key": SECRET_ACCESS_KEY},
            "secretKey": {"name": notify_secret(edge.name), "key": SECRET_SECRET_KEY},
        }
    return {
        "apiVersion": ARGO_EVENTS_API,
        "kind": "EventSource",
        "metadata": {"name": f"{job.name}-data", "labels": {LABEL_TASK: task.name, LABEL_JOB: job.name}},
        "spec": {"minio": minio},
    }


def sensor(
    job: IncrementalLearningJob, task: FederatedTask, *, settings: ClusterSettings = DEFAULT_SETTINGS
) -> dict[str, Any]:
    """Argo Events Sensor: new data at any edge submits the check (trigger ``event``)."""
    dependencies = [
        {"name": _event_name(e.name), "eventSourceName": f"{job.name}-data", "eventName": _event_name(e.name)}
        for e in task.spec.edges
    ]
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "generateName": f"{job.name}-check-",
            "labels": {LABEL_TASK: task.name, LABEL_JOB: job.name, LABEL_KIND: KIND_CHECK},
        },
        "spec": {
            "workflowTemplateRef": {"name": _check_template_name(job)},
            "arguments": {"parameters": [{"name": "trigger", "value": "event"}]},
        },
    }
    return {
        "apiVersion": ARGO_EVENTS_API,
        "kind": "Sensor",
        "metadata": {"name": job.name, "labels": {LABEL_TASK: task.name, LABEL_JOB: job.name}},
        "spec": {
            # the Sensor's pod submits Workflows: the driver's ServiceAccount is the one that may create them
            "template": {"serviceAccountName": settings.service_accounts.driver},
            "dependencies": dependencies,
            "triggers": [
                {
                    "template": {
                        # any edge's new data: the dependencies are or-ed
                        "conditions": " || ".join(d["name"] for d in dependencies),
                        "name": "submit-check",
                        "argoWorkflow": {"operation": "submit", "source": {"resource": workflow}},
                    },
                    # several uploads at once start one check at a time (the CronWorkflows' Forbid, here)
                    "rateLimit": {"unit": "Minute", "requestsPerUnit": 1},
                }
            ],
        },
    }


def job_manifests(
    job: IncrementalLearningJob, task: FederatedTask, *, settings: ClusterSettings = DEFAULT_SETTINGS
) -> dict[str, dict[str, Any]]:
    """Everything a cluster needs for the job, by file name (the task's own manifests come from ``generate``)."""
    out = {
        f"{job.name}-check.yaml": to_document(check_workflow(job, task, settings=settings)),
        f"{job.name}-check-template.yaml": to_document(check_template(job, task, settings=settings)),
    }
    for cron in cron_workflows(job, task, settings=settings):
        out[f"{cron.name}-cron.yaml"] = to_document(cron)
    out[f"{job.name}-eventsource.yaml"] = event_source(job, task)
    out[f"{job.name}-sensor.yaml"] = sensor(job, task, settings=settings)
    return out
