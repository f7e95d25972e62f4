"""Generation: a FederatedTask becomes Argo manifests, built with Hera.

One round is one Workflow::

    edge (fan-out over the edges, withParam)   ──►  aggregate  ──►  evaluate (when due)
      validate ──► train, pinned to the edge's node    depends: edge.AnySucceeded || edge.AllFailed

* ``edge`` runs once per edge (``withParam: {{workflow.parameters.edges}}``) on the node labelled
  ``edgefed.io/edge=<edge>`` (nodeSelector), with store credentials from the edge's Secret: ``validate``
  checks the edge's data against its contract, and only if it passes does ``train`` run.
* ``aggregate`` runs once every edge is done, whatever each edge's outcome: failed edges sit the
  round out, and the step itself enforces the quorum (failing the round when it does not hold).
* ``evaluate`` scores the committed model every ``spec.evaluation.everyRounds`` rounds.

What is generated (:func:`manifests`):

* ``round_workflow``: a self-contained round Workflow (``argo submit`` it; the embedded engine runs it);
* ``round_template`` + ``round_submission``: the same round as a WorkflowTemplate, and the small
  Workflow that runs one round of it (what ``edgefed submit`` creates for each round);
* ``init_workflow``: commits the task's initial model (round 0);
* ``cron_workflow``: scheduled retraining, which runs ``edgefed submit`` inside the cluster.

Generation is a pure function of the task and :class:`ClusterSettings`: no globals, no I/O,
deterministic output. Store credentials appear only as ``secretKeyRef``s, never as values.
Run-time facts (round number, store endpoint, which edges take part) are workflow parameters, so the
embedded engine runs the very document a cluster would run, with parameters set as ``argo submit -p``
would set them.

**Scale.** The per-edge list is one parameter, and each edge item holds only what differs from the
conventions (node label ``edgefed.io/edge=<edge>``, Secret ``edgefed-edge-<edge>``, dataset in bucket
``edge-<edge>`` under the task's common key, the task's store). With conventional edges an item is the
edge's name, so 10,000 edges fit in a Workflow well under Kubernetes' object size limits.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hera.workflows import (
    DAG,
    Container,
    CronWorkflow,
    Parameter,
    RawArtifact,
    RetryStrategy,
    SecretEnv,
    Task,
    Workflow,
    WorkflowTemplate,
)
from hera.workflows import models as m

from edgefed.workflows.spec import EdgeSpec, FederatedTask, StoreSpec

STEP_COMMAND = ["edgefed-step"]
OUTPUTS_DIR = "/tmp/outputs"
EDGES_FILE = "/tmp/inputs/edges.json"
ACCESS_KEY_ENV = "EDGEFED_ACCESS_KEY"
SECRET_KEY_ENV = "EDGEFED_SECRET_KEY"
#: Keys of every store Secret (same convention as Argo's own MinIO artifact Secrets).
SECRET_ACCESS_KEY = "accessKey"
SECRET_SECRET_KEY = "secretKey"
#: Edge nodes carry this label with the edge's name: ``kubectl label node N edgefed.io/edge=<edge>``.
NODE_LABEL = "edgefed.io/edge"
LABEL_TASK = "edgefed.io/task"
LABEL_ROUND = "edgefed.io/round"
TITLE = "workflows.argoproj.io/title"
DESCRIPTION = "workflows.argoproj.io/description"
#: Per-edge fields that go into the fan-out items only when some edge departs from the convention.
EDGE_FIELDS = ("secret", "dataset", "store", "tolerations")


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """How the generated manifests behave on a cluster (the embedded engine ignores what it cannot use)."""

    service_account: str | None = None
    train_deadline_seconds: int = 3600
    aggregate_deadline_seconds: int = 1800
    evaluate_deadline_seconds: int = 1800
    round_deadline_seconds: int = 4 * 3600
    retry_limit: int = 2
    ttl_after_success_seconds: int = 24 * 3600
    ttl_after_failure_seconds: int = 7 * 24 * 3600
    pod_gc: str = "OnPodSuccess"
    #: Argo's artifact-repositories ConfigMap and key (charts/edgefed creates it); None: cluster default.
    artifact_repository: tuple[str, str] | None = ("artifact-repositories", "default-v1")
    #: Argo server URL the CronWorkflow's driver talks to, from inside the cluster.
    argo_server: str = "https://argo-server.argo.svc:2746"
    cron_schedule: str = "0 3 * * 0"
    extra_labels: dict[str, str] = field(default_factory=dict)


DEFAULT_SETTINGS = ClusterSettings()


# -- per-edge data ---------------------------------------------------------------------------
def store_url(store: StoreSpec) -> str:
    return f"{'https' if store.secure else 'http'}://{store.endpoint}"


def common_dataset_key(task: FederatedTask) -> str:
    """The dataset key most edges use (the convention items are compared against); ties: the first in order."""
    counts = Counter(e.dataset.key for e in task.spec.edges)
    return max(sorted(counts), key=counts.__getitem__)


def _edge_values(task: FederatedTask, edge: EdgeSpec) -> dict[str, Any]:
    return {
        "name": edge.name,
        "secret": edge.secret_name,
        "dataset": edge.dataset.url,
        "store": store_url(edge.store or task.spec.store),
        "tolerations": [
            t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in edge.tolerations
        ],
    }


def _convention(name: str, *, dataset_key: str, store: str) -> dict[str, Any]:
    return {
        "secret": f"edgefed-edge-{name}",
        "dataset": f"s3://edge-{name}/{dataset_key}",
        "store": store,
        "tolerations": [],
    }


def varying_fields(task: FederatedTask) -> tuple[str, ...]:
    """Which of :data:`EDGE_FIELDS` some edge sets differently from the conventions."""
    key, store = common_dataset_key(task), store_url(task.spec.store)
    varying: set[str] = set()
    for edge in task.spec.edges:
        values, convention = _edge_values(task, edge), _convention(edge.name, dataset_key=key, store=store)
        varying.update(name for name in EDGE_FIELDS if values[name] != convention[name])
    return tuple(name for name in EDGE_FIELDS if name in varying)


def edge_item(task: FederatedTask, edge: EdgeSpec, fields: tuple[str, ...] | None = None) -> Any:
    """One element of the ``edges`` parameter: the name, plus the fields that vary in this task."""
    fields = varying_fields(task) if fields is None else fields
    if not fields:
        return edge.name
    values = _edge_values(task, edge)
    item: dict[str, Any] = {"name": edge.name}
    for name in fields:
        item[name] = (
            json.dumps(values[name], separators=(",", ":")) if name == "tolerations" else values[name]
        )
    return item


def edges_parameter(task: FederatedTask, edges: list[EdgeSpec] | None = None) -> str:
    fields = varying_fields(task)
    items = [edge_item(task, e, fields) for e in (edges if edges is not None else task.spec.edges)]
    return json.dumps(items, separators=(",", ":"))


def step_config(task: FederatedTask) -> dict[str, Any]:
    """What the steps need of the spec (model, training, aggregation, quorum, dataset), as JSON data."""
    spec = task.spec
    return {
        "model": spec.model.model_dump(mode="json", by_alias=True),
        "training": spec.training.model_dump(mode="json", by_alias=True),
        "aggregation": spec.aggregation.model_dump(mode="json", by_alias=True),
        "quorum": spec.quorum,
        "dataset": spec.dataset,
        "contract": spec.contract or spec.dataset,
    }


def _config_parameter(task: FederatedTask) -> str:
    return json.dumps(step_config(task), sort_keys=True, separators=(",", ":"))


# -- templates -------------------------------------------------------------------------------
def _credentials(secret: str) -> list[SecretEnv]:
    return [
        SecretEnv(name=ACCESS_KEY_ENV, secret_name=secret, secret_key=SECRET_ACCESS_KEY),
        SecretEnv(name=SECRET_KEY_ENV, secret_name=secret, secret_key=SECRET_SECRET_KEY),
    ]


def _common_args() -> list[str]:
    return [
        "--task={{workflow.parameters.task}}",
        "--round={{workflow.parameters.round}}",
        "--workflow={{workflow.name}}",
        "--store={{workflow.parameters.store}}",
        "--config={{workflow.parameters.config}}",
        f"--outputs={OUTPUTS_DIR}",
    ]


def _output(name: str, *, global_name: str | None = None) -> Parameter:
    return Parameter(
        name=name, global_name=global_name, value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/{name}", default="")
    )


def _retry(settings: ClusterSettings) -> RetryStrategy:
    # OnError: retry what the platform broke (pod evicted, node lost), not a step that failed on its
    # data -- re-running a missing dataset only delays the round.
    return RetryStrategy(
        limit=str(settings.retry_limit),
        retry_policy="OnError",
        backoff=m.Backoff(duration="5s", factor="2", max_duration="1m"),
    )


def _gauge(name: str, help_: str, value: str) -> m.Prometheus:
    return m.Prometheus(
        name=name,
        help=help_,
        labels=[m.MetricLabel(key="task", value="{{workflow.parameters.task}}")],
        gauge=m.Gauge(value=value, realtime=False),
    )


def _round_parameters(
    task: FederatedTask | None, *, round_: int | None, evaluate: bool | None
) -> list[Parameter]:
    """The round's workflow parameters; without a task, declarations only (a task-independent template)."""

    def value(v: str | None) -> dict[str, str]:
        return {} if v is None else {"value": v}

    return [
        Parameter(name="task", description="FederatedTask name", **value(task.name if task else None)),
        Parameter(
            name="round",
            description="round number (1, 2, ...)",
            **value(None if round_ is None else str(round_)),
        ),
        Parameter(
            name="edges",
            description="JSON list of the round's edges",
            **value(edges_parameter(task) if task else None),
        ),
        Parameter(
            name="config",
            description="model, training, aggregation (JSON)",
            **value(_config_parameter(task) if task else None),
        ),
        Parameter(
            name="store", description="cloud store URL", **value(store_url(task.spec.store) if task else None)
        ),
        Parameter(
            name="evaluate",
            description="score the new model on the central test set",
            enum=["true", "false"],
            value="false" if evaluate is None else ("true" if evaluate else "false"),
        ),
    ]


def _add_round_templates(
    *,
    image: str,
    cloud_secret: str,
    fields: tuple[str, ...],
    settings: ClusterSettings,
    tolerations: list[dict],
) -> None:
    """Create the round's templates inside the current Hera Workflow/WorkflowTemplate context."""
    item = "{{item}}" if not fields else "{{item.name}}"
    edge_inputs = [Parameter(name="edge")] + [Parameter(name=f) for f in fields]
    secret = (
        "{{inputs.parameters.secret}}" if "secret" in fields else "edgefed-edge-{{inputs.parameters.edge}}"
    )
    dataset = (
        "{{inputs.parameters.dataset}}"
        if "dataset" in fields
        else "s3://edge-{{inputs.parameters.edge}}/{{workflow.parameters.dataset-key}}"
    )
    store = "{{inputs.parameters.store}}" if "store" in fields else "{{workflow.parameters.store}}"

    def edge_step(step: str, outputs: list[Parameter]) -> Container:
        """A step that runs at the edge: pinned to its node, with the edge's own credentials."""
        return Container(
            name=step,
            image=image,
            command=[*STEP_COMMAND, step],
            args=[
                *_common_args(),
                "--edge={{inputs.parameters.edge}}",
                f"--dataset={dataset}",
                f"--dataset-store={store}",
            ],
            inputs=[Parameter(name=p.name) for p in edge_inputs],
            outputs=outputs,
            node_selector={NODE_LABEL: "{{inputs.parameters.edge}}"},
            # Per-edge tolerations are a list, which a parameter can only carry as JSON: podSpecPatch is
            # Argo's way to set such pod fields per item. Uniform tolerations go on the template itself.
            pod_spec_patch='{"tolerations": {{inputs.parameters.tolerations}}}'
            if "tolerations" in fields
            else None,
            tolerations=[m.Toleration(**t) for t in tolerations] or None,
            env=_credentials(secret),
            retry_strategy=_retry(settings),
            active_deadline_seconds=settings.train_deadline_seconds,
        )

    # validate exits 4 when the data breaks its contract: a Failed node, which OnError never retries.
    validate = edge_step("validate", [_output("passed"), _output("failed"), _output("rows")])
    train = edge_step("train", [_output("examples"), _output("loss"), _output("train-seconds")])
    aggregate = Container(
        name="aggregate",
        image=image,
        command=[*STEP_COMMAND, "aggregate"],
        # The edge list can exceed what one command-line argument may hold (128 KiB on Linux): it
        # reaches the step as a file, through a raw artifact.
        args=[*_common_args(), f"--edges-file={EDGES_FILE}"],
        inputs=[RawArtifact(name="edges", path=EDGES_FILE, data="{{workflow.parameters.edges}}")],
        outputs=[
            _output("model-version", global_name="model-version"),
            _output("contributors", global_name="contributors"),
            _output("missing", global_name="missing-edges"),
            _output("missing-count"),
        ],
        env=_credentials(cloud_secret),
        retry_strategy=_retry(settings),
        active_deadline_seconds=settings.aggregate_deadline_seconds,
        metrics=m.Metrics(
            prometheus=[
                _gauge(
                    "edgefed_round_edges_missing",
                    "edges that sat the round out",
                    "{{outputs.parameters.missing-count}}",
                )
            ]
        ),
    )
    evaluate = Container(
        name="evaluate",
        image=image,
        command=[*STEP_COMMAND, "evaluate"],
        args=_common_args(),
        outputs=[_output("accuracy", global_name="accuracy"), _output("loss", global_name="loss")],
        env=_credentials(cloud_secret),
        active_deadline_seconds=settings.evaluate_deadline_seconds,
        metrics=m.Metrics(
            prometheus=[
                _gauge(
                    "edgefed_accuracy",
                    "central accuracy of the new global model",
                    "{{outputs.parameters.accuracy}}",
                )
            ]
        ),
    )
    # One DAG per edge: its data is checked against the contract where it lives, then it trains.
    # (Argo cannot pair the items of two fanned-out tasks, so the pair is one template, fanned out.)
    forward = {p.name: f"{{{{inputs.parameters.{p.name}}}}}" for p in edge_inputs}
    with DAG(name="edge", inputs=[Parameter(name=p.name) for p in edge_inputs]) as edge_dag:
        validate_task = Task(name="validate", template=validate, arguments=forward)
        Task(name="train", template=train, arguments=forward, depends=validate_task.name)
    with DAG(name="round"):
        edge_task = Task(
            name="edge",
            template=edge_dag,
            with_param="{{workflow.parameters.edges}}",
            arguments={"edge": item, **{f: f"{{{{item.{f}}}}}" for f in fields}},
        )
        aggregate_task = Task(
            name="aggregate",
            template=aggregate,
            depends=f"{edge_task.name}.AnySucceeded || {edge_task.name}.AllFailed",
        )
        Task(
            name="evaluate",
            template=evaluate,
            depends=aggregate_task.name,
            when="{{workflow.parameters.evaluate}} == true",
        )


def _add_task_round_templates(task: FederatedTask, settings: ClusterSettings) -> None:
    """The round's templates for ``task``: fan-out items and tolerations as its edges need them."""
    fields = varying_fields(task)
    _add_round_templates(
        image=task.spec.image,
        cloud_secret=task.spec.cloud_credentials_secret,
        fields=fields,
        settings=settings,
        tolerations=_tolerations_for_template(task, fields),
    )


def _spec_settings(settings: ClusterSettings) -> dict[str, Any]:
    """Cluster housekeeping shared by every generated workflow."""
    return {
        "service_account_name": settings.service_account,
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
    }


def _round_metrics() -> m.Metrics:
    return m.Metrics(
        prometheus=[
            _gauge("edgefed_round_duration_seconds", "wall time of the round", "{{workflow.duration}}")
        ]
    )


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


def _tolerations_for_template(task: FederatedTask, fields: tuple[str, ...]) -> list[dict]:
    if "tolerations" in fields or not task.spec.edges:
        return []
    return _edge_values(task, task.spec.edges[0])["tolerations"]


def _dataset_key_parameter(task: FederatedTask | None) -> list[Parameter]:
    return [
        Parameter(
            name="dataset-key",
            description="key of every edge's dataset in its edge-<edge> bucket",
            **({"value": common_dataset_key(task)} if task else {}),
        )
    ]


# -- public builders -------------------------------------------------------------------------
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
    with Workflow(
        generate_name=f"{task.name}-r{round_:05d}-",
        labels=_labels(task, round_, settings),
        annotations=_describe(task, round_),
        entrypoint="round",
        arguments=_round_parameters(
            task, round_=round_, evaluate=_evaluate_due(task, round_) if evaluate is None else evaluate
        )
        + _dataset_key_parameter(task),
        parallelism=task.spec.parallelism,
        active_deadline_seconds=settings.round_deadline_seconds,
        metrics=_round_metrics(),
        **_spec_settings(settings),
    ) as workflow:
        _add_task_round_templates(task, settings)
    return workflow


def template_name(task: FederatedTask) -> str:
    return f"{task.name}-round"


def round_template(task: FederatedTask, *, settings: ClusterSettings = DEFAULT_SETTINGS) -> WorkflowTemplate:
    """The task's round as a WorkflowTemplate (``<task>-round``): task values baked in, round per submission."""
    with WorkflowTemplate(
        name=template_name(task),
        labels={LABEL_TASK: task.name, **settings.extra_labels},
        annotations={
            TITLE: f"{task.name}: one federated round",
            DESCRIPTION: _describe(task, 0)[DESCRIPTION],
        },
        entrypoint="round",
        arguments=_round_parameters(task, round_=None, evaluate=None) + _dataset_key_parameter(task),
        parallelism=task.spec.parallelism,
        active_deadline_seconds=settings.round_deadline_seconds,
        metrics=_round_metrics(),
        # Workflows submitted from a template do not inherit its labels: these put task and round on them.
        workflow_metadata=m.WorkflowMetadata(
            labels={LABEL_TASK: task.name},
            labels_from={LABEL_ROUND: m.LabelValueFrom(expression="workflow.parameters.round")},
        ),
        **_spec_settings(settings),
    ) as template:
        _add_task_round_templates(task, settings)
    return template


def generic_round_template(
    *,
    name: str = "edgefed-round",
    image: str,
    cloud_secret: str,
    store: str | None = None,
    settings: ClusterSettings = DEFAULT_SETTINGS,
) -> WorkflowTemplate:
    """A task-independent round template (the Helm chart's): every edge item carries all its fields.

    ``store``: default of the ``store`` parameter (the cloud store URL of the installation).
    """
    parameters = _round_parameters(None, round_=None, evaluate=None) + _dataset_key_parameter(None)
    if store is not None:
        parameters = [
            Parameter(name=p.name, description=p.description, value=store) if p.name == "store" else p
            for p in parameters
        ]
    with WorkflowTemplate(
        name=name,
        annotations={
            TITLE: "edgefed: one federated round",
            DESCRIPTION: "Submit with -p task=… -p round=… -p edges=… -p config=…",
        },
        entrypoint="round",
        arguments=parameters,
        active_deadline_seconds=settings.round_deadline_seconds,
        metrics=_round_metrics(),
        workflow_metadata=m.WorkflowMetadata(
            labels_from={
                LABEL_TASK: m.LabelValueFrom(expression="workflow.parameters.task"),
                LABEL_ROUND: m.LabelValueFrom(expression="workflow.parameters.round"),
            }
        ),
        **_spec_settings(settings),
    ) as template:
        _add_round_templates(
            image=image, cloud_secret=cloud_secret, fields=EDGE_FIELDS, settings=settings, tolerations=[]
        )
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
        generate_name=f"{task.name}-r{round_:05d}-",
        labels=_labels(task, round_, settings),
        annotations=_describe(task, round_),
        workflow_template_ref=m.WorkflowTemplateRef(name=template_name(task)),
        arguments=[
            Parameter(name="round", value=str(round_)),
            Parameter(name="evaluate", value="true" if due else "false"),
        ],
    )


def init_workflow(task: FederatedTask, *, settings: ClusterSettings = DEFAULT_SETTINGS) -> Workflow:
    """The Workflow that commits the task's initial model as round 0 (once per task)."""
    spec = task.spec
    with Workflow(
        generate_name=f"{task.name}-r{0:05d}-",
        labels=_labels(task, 0, settings),
        annotations={TITLE: f"{task.name}: initial model", DESCRIPTION: f"Commits round 0 of {task.name}"},
        entrypoint="init",
        arguments=_round_parameters(task, round_=0, evaluate=False),
        active_deadline_seconds=settings.aggregate_deadline_seconds,
        **_spec_settings(settings),
    ) as workflow:
        Container(
            name="init",
            image=spec.image,
            command=[*STEP_COMMAND, "init"],
            args=_common_args(),
            outputs=[_output("model-version", global_name="model-version")],
            env=_credentials(spec.cloud_credentials_secret),
            retry_strategy=_retry(settings),
            active_deadline_seconds=settings.aggregate_deadline_seconds,
        )
    return workflow


def cron_workflow(
    task: FederatedTask, task_yaml: str, *, settings: ClusterSettings = DEFAULT_SETTINGS
) -> CronWorkflow:
    """Scheduled retraining: a CronWorkflow whose one step runs ``edgefed submit`` for the task in-cluster.

    ``task_yaml`` (the task file as a new task name per run is the user's choice) travels as a
    parameter; the step authenticates with its ServiceAccount token.
    """
    with CronWorkflow(
        name=f"{task.name}-retrain",
        labels={LABEL_TASK: task.name, **settings.extra_labels},
        annotations={
            TITLE: f"{task.name}: scheduled retraining",
            DESCRIPTION: "Runs edgefed submit for the task",
        },
        schedules=[settings.cron_schedule],
        concurrency_policy="Forbid",
        starting_deadline_seconds=600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        entrypoint="drive",
        arguments=[Parameter(name="task-yaml", value=task_yaml)],
        service_account_name=settings.service_account,
        pod_gc=m.PodGC(strategy=settings.pod_gc),
    ) as cron:
        Container(
            name="drive",
            image=task.spec.image,
            command=["edgefed", "submit", "/tmp/inputs/task.yaml"],
            args=[
                f"--argo-server={settings.argo_server}",
                "--namespace={{workflow.namespace}}",
                "--token-file=/var/run/secrets/kubernetes.io/serviceaccount/token",
            ],
            # The task file travels as a raw artifact: it can be larger than an env var may be.
            inputs=[
                RawArtifact(
                    name="task", path="/tmp/inputs/task.yaml", data="{{workflow.parameters.task-yaml}}"
                )
            ],
        )
    return cron


def to_document(workflow: Workflow | WorkflowTemplate | CronWorkflow) -> dict[str, Any]:
    """The Argo document (plain dict, as ``argo submit`` would read from YAML)."""
    return workflow.to_dict()


def manifests(
    task: FederatedTask, *, task_yaml: str | None = None, settings: ClusterSettings = DEFAULT_SETTINGS
) -> dict[str, dict[str, Any]]:
    """Everything a cluster needs for ``task``, by file name."""
    out = {
        f"{task.name}-round-template.yaml": to_document(round_template(task, settings=settings)),
        f"{task.name}-init.yaml": to_document(init_workflow(task, settings=settings)),
        f"{task.name}-round-00001.yaml": to_document(round_workflow(task, 1, settings=settings)),
        f"{task.name}-round-00001-from-template.yaml": to_document(
            round_submission(task, 1, settings=settings)
        ),
    }
    if task_yaml is not None:
        out[f"{task.name}-retrain-cron.yaml"] = to_document(cron_workflow(task, task_yaml, settings=settings))
    return out


__all__ = [
    "ACCESS_KEY_ENV",
    "DEFAULT_SETTINGS",
    "EDGE_FIELDS",
    "LABEL_ROUND",
    "LABEL_TASK",
    "NODE_LABEL",
    "OUTPUTS_DIR",
    "SECRET_ACCESS_KEY",
    "SECRET_KEY_ENV",
    "SECRET_SECRET_KEY",
    "STEP_COMMAND",
    "ClusterSettings",
    "common_dataset_key",
    "cron_workflow",
    "edge_item",
    "edges_parameter",
    "generic_round_template",
    "init_workflow",
    "manifests",
    "round_submission",
    "round_template",
    "round_workflow",
    "step_config",
    "store_url",
    "template_name",
    "to_document",
    "varying_fields",
]
