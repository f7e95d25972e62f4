"""The templates of a round (and of the init), added inside a Hera Workflow or WorkflowTemplate context.

One round::

    edge (fan-out over the edges, withParam)   ──►  aggregate  ──►  evaluate (when due)
      validate ──► train, pinned to the edge's node    depends: edge.AnySucceeded || edge.AllFailed

* ``edge`` runs once per edge (``withParam: {{workflow.parameters.edges}}``) on the node labelled
  :data:`~.names.NODE_LABEL` ``=<edge>`` (nodeSelector) as the edge ServiceAccount: ``validate`` checks
  the edge's data against its contract, and only if it passes does ``train`` run. Both read the dataset
  from the edge's **own** store (by default the one on its node, at the node's address) with the edge's
  site identity, and talk to the cloud store with the edge's cloud identity: two Secrets, each with the
  least rights its store needs (:mod:`edgefed.workflows.policy`).
* ``aggregate`` (like every cloud step: the cloud ServiceAccount, never on an edge node) runs once every edge is done, whatever each edge's outcome: failed edges sit the
  round out, and the step itself enforces the quorum (failing the round when it does not hold).
* ``evaluate`` scores the committed model every ``spec.evaluation.everyRounds`` rounds.
* With ``aggregation.secure``, the edge DAG advertises keys instead of training, and the protocol's phases
  follow, each an edge fan-out opened by a cloud ``secagg-roster`` step (:mod:`edgefed.steps.secure`)::

      edge ─► roster-keys ─► secagg-share ─► roster-shares ─► train ─► roster-masked ─► secagg-unmask ─► aggregate

Every step runs ``edgefed-step <step>`` with the flags and outputs of :mod:`edgefed.steps.interface`.
Store credentials appear only as ``secretKeyRef``s, never as values. Run-time facts (round number,
store endpoint, which edges take part) are workflow parameters, so the embedded engine runs the very
document a cluster would, with parameters set as ``argo submit -p`` would set them.

Why this module is long: it is every template of a round (the secure round's included) and the pieces they
share (credentials, retries, the edge pinning), built in one place so their names and wiring cannot drift.
"""

from __future__ import annotations

import json
from typing import Any

from hera.workflows import DAG, Container, FieldEnv, Parameter, RawArtifact, RetryStrategy, SecretEnv, Task
from hera.workflows import Env as HeraEnv
from hera.workflows import models as m

from edgefed.steps import layout
from edgefed.steps.interface import (
    EDGE_SECRET_PREFIX,
    EDGES_FILE,
    NOT_RETRIED,
    OUTPUTS_DIR,
    SECRET_ACCESS_KEY,
    SECRET_SECRET_KEY,
    SITE_SECRET_PREFIX,
    STEP_COMMAND,
    Env,
    Flag,
    Outputs,
    Step,
    flag,
)
from edgefed.workflows.build import argo41
from edgefed.workflows.build.edges import (
    common_dataset_key,
    edge_values,
    edges_parameter,
    site_store_url,
    store_url,
    varying_fields,
)
from edgefed.workflows.build.names import NODE_LABEL, WorkflowOutputs
from edgefed.workflows.build.pods import CA_FILE, EDGE_TAINT_TOLERATION, container_security, off_edge_nodes
from edgefed.workflows.build.settings import ClusterSettings
from edgefed.workflows.spec import FederatedTask

__all__ = [
    "add_init_template",
    "add_round_templates",
    "add_task_round_templates",
    "cloud_step",
    "credentials",
    "dataset_key_parameter",
    "edge_container",
    "edge_dataset_args",
    "edge_inputs",
    "edge_store_args",
    "every_outcome",
    "output",
    "over_edges",
    "retry",
    "round_args",
    "round_parameters",
    "step_command",
    "step_config",
    "task_args",
    "task_edge_step",
]

_EDGE = "{{inputs.parameters.edge}}"


def _plan_config(task: FederatedTask) -> dict[str, Any]:
    """What the plan step needs: the last round, evaluation cadence, stop conditions and sampling."""
    spec = task.spec
    excluded = {"max_rounds"} | ({"target_metric"} if spec.stop.target_metric is None else set())
    plan = {
        "lastRound": spec.last_round,
        "everyRounds": spec.evaluation.every_rounds,
        "stop": spec.stop.model_dump(mode="json", by_alias=True, exclude=excluded),
        "sampling": spec.sampling.model_dump(mode="json", by_alias=True) if spec.sampling else None,
    }
    if spec.metric != "accuracy":  # (accuracy, higher better: what the plan assumes when not told)
        plan.update(metric=spec.metric, higherIsBetter=spec.higher_is_better)
    return plan


def _model_config(model: Any) -> dict[str, Any]:
    """The model section as the steps read it: a classification model as before task types existed."""
    config = model.model_dump(mode="json", by_alias=True)
    if config.get("initialWeights") is None:  # the seeded initialisation: the steps' default
        config.pop("initialWeights", None)
    if config["task"] == "classification":
        del config["task"]
    else:
        del config["classes"]
    return config


def step_config(task: FederatedTask) -> dict[str, Any]:
    """What the steps need of the spec (model, training, aggregation, quorum, dataset, plan), as JSON data."""
    spec = task.spec
    return {
        "plan": _plan_config(task),
        "model": _model_config(spec.model),
        "training": spec.training.model_dump(mode="json", by_alias=True, exclude_none=True),
        "aggregation": spec.aggregation.model_dump(mode="json", by_alias=True),
        "quorum": spec.quorum,
        "autonomy": spec.autonomy.model_dump(mode="json", by_alias=True),
        "dataset": spec.dataset,
        "contract": spec.contract or spec.dataset,
        **({"columns": spec.columns.model_dump(mode="json", by_alias=True)} if spec.columns else {}),
        # training.orderSeed keys each edge's local order by its position among the task's edges
        **(
            {"edgeIndex": {e.name: i for i, e in enumerate(spec.edges)}}
            if spec.training.order_seed is not None
            else {}
        ),
    }


def _config_parameter(task: FederatedTask) -> str:
    return json.dumps(step_config(task), sort_keys=True, separators=(",", ":"))


# -- parameters --------------------------------------------------------------------------------
def round_parameters(
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
            name="site-store",
            description="every edge's own store, on its node ($(EDGEFED_NODE_IP): the node's address)",
            **value(site_store_url(task.spec.site_store) if task else None),
        ),
        Parameter(
            name="evaluate",
            description="score the new model on the central test set",
            enum=["true", "false"],
            value="false" if evaluate is None else ("true" if evaluate else "false"),
        ),
        Parameter(
            name="parent",
            description="the parent model as the task's plan found it (JSON: round, key, versionId, sha256); "
            "empty: each edge reads it from the round's manifest",
            value="",
        ),
    ]


def dataset_key_parameter(task: FederatedTask | None) -> list[Parameter]:
    """``dataset-key``: the key every conventional edge's dataset has in its own bucket."""
    return [
        Parameter(
            name="dataset-key",
            description=f"key of every edge's dataset in its {layout.edge_bucket('<edge>')} bucket",
            **({"value": common_dataset_key(task)} if task else {}),
        )
    ]


# -- pieces of a step template -----------------------------------------------------------------
def credentials(secret: str, *, site: bool = False) -> list[SecretEnv]:
    """The env of a store identity held in ``secret``: the cloud store's, or (``site``) the edge's own store's."""
    access, key = (Env.SITE_ACCESS_KEY, Env.SITE_SECRET_KEY) if site else (Env.ACCESS_KEY, Env.SECRET_KEY)
    return [
        SecretEnv(name=access, secret_name=secret, secret_key=SECRET_ACCESS_KEY),
        SecretEnv(name=key, secret_name=secret, secret_key=SECRET_SECRET_KEY),
    ]


def ca_env(settings: ClusterSettings) -> list[HeraEnv]:
    """Where the stores' CA bundle is, when the settings name one."""
    return [HeraEnv(name=Env.CA_FILE, value=CA_FILE)] if settings.ca_config_map else []


def step_command(step: str) -> list[str]:
    return [STEP_COMMAND, step]


def task_args() -> list[str]:
    """The flags of a step of the task Workflow (no round of its own)."""
    return [
        flag(Flag.TASK, "{{workflow.parameters.task}}"),
        flag(Flag.WORKFLOW, "{{workflow.name}}"),
        flag(Flag.STORE, "{{workflow.parameters.store}}"),
        flag(Flag.CONFIG, "{{workflow.parameters.config}}"),
        flag(Flag.OUTPUTS, OUTPUTS_DIR),
    ]


def round_args() -> list[str]:
    return [
        flag(Flag.TASK, "{{workflow.parameters.task}}"),
        flag(Flag.ROUND, "{{workflow.parameters.round}}"),
        flag(Flag.WORKFLOW, "{{workflow.name}}"),
        flag(Flag.STORE, "{{workflow.parameters.store}}"),
        flag(Flag.CONFIG, "{{workflow.parameters.config}}"),
        flag(Flag.OUTPUTS, OUTPUTS_DIR),
    ]


def output(name: str, *, global_name: str | None = None) -> Parameter:
    return Parameter(
        name=name, global_name=global_name, value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/{name}", default="")
    )


#: Retry unless the step said its input is wrong (Argo gives ``lastRetry.exitCode`` "-1" when the
#: pod never exited: evicted, node lost -- those are retried too).
RETRY_EXPRESSION = f"asInt(lastRetry.exitCode) not in {list(map(int, NOT_RETRIED))}"


def retry(settings: ClusterSettings) -> RetryStrategy:
    """Always (Failed and Errored attempts: the store or network dropped, the pod was evicted), but
    never a step that failed on its data -- re-running a missing dataset or a broken contract only
    delays the round (:data:`~edgefed.steps.interface.NOT_RETRIED`)."""
    return RetryStrategy(
        limit=str(settings.retry_limit),
        retry_policy="Always",
        expression=RETRY_EXPRESSION,
        backoff=m.Backoff(duration="5s", factor="2", max_duration="1m"),
    )


def gauge(name: str, help_: str, value: str) -> m.Prometheus:
    """A Prometheus gauge labelled with the task."""
    return m.Prometheus(
        name=name,
        help=help_,
        labels=[m.MetricLabel(key="task", value="{{workflow.parameters.task}}")],
        gauge=m.Gauge(value=value, realtime=False),
    )


def cloud_step(
    step: str,
    *,
    image: str,
    cloud_secret: str,
    args: list[str],
    outputs: list[Parameter],
    settings: ClusterSettings,
    deadline_seconds: int,
    inputs: list[Parameter | RawArtifact] | None = None,
    metric: m.Prometheus | None = None,
) -> Container:
    """A step that runs in the cloud (init, plan, aggregate, evaluate): the cloud store identity, the
    retries, the cloud role's security and resources, a deadline; never pinned to an edge node."""
    return Container(
        name=step,
        image=image,
        command=step_command(step),
        args=args,
        inputs=inputs,
        outputs=outputs,
        env=[*credentials(cloud_secret), *ca_env(settings)],
        retry_strategy=retry(settings),
        service_account_name=settings.service_accounts.cloud,
        affinity=off_edge_nodes(),
        **container_security(settings, edge=False),
        active_deadline_seconds=deadline_seconds,
        metrics=m.Metrics(prometheus=[metric]) if metric is not None else None,
    )


# -- the round ---------------------------------------------------------------------------------
def _field(fields: tuple[str, ...], name: str, convention: str) -> str:
    """An edge step's value of a per-edge field: the item's when the task varies it, else the convention."""
    return f"{{{{inputs.parameters.{name}}}}}" if name in fields else convention


def _edge_store(fields: tuple[str, ...]) -> str:
    return flag(Flag.DATASET_STORE, _field(fields, "store", "{{workflow.parameters.site-store}}"))


def edge_store_args(fields: tuple[str, ...]) -> list[str]:
    """``--edge`` and ``--dataset-store`` of an edge step: the edge's own store (by default the one on its node)."""
    return [flag(Flag.EDGE, _EDGE), _edge_store(fields)]


def edge_dataset_args(fields: tuple[str, ...]) -> list[str]:
    """``--edge``, ``--dataset`` and ``--dataset-store`` of an edge step: the dataset is read where it lives,
    the edge's own store (by default the one on its node)."""
    dataset = _field(
        fields, "dataset", f"s3://{layout.edge_bucket(_EDGE)}/{{{{workflow.parameters.dataset-key}}}}"
    )
    return [flag(Flag.EDGE, _EDGE), flag(Flag.DATASET, dataset), _edge_store(fields)]


def over_edges(name: str, template: Any, fields: tuple[str, ...], *, depends: str | None = None) -> Task:
    """A DAG task fanned out over ``{{workflow.parameters.edges}}``, each item's fields as the template's inputs."""
    return Task(
        name=name,
        template=template,
        with_param="{{workflow.parameters.edges}}",
        arguments={
            "edge": "{{item}}" if not fields else "{{item.name}}",
            **{f: f"{{{{item.{f}}}}}" for f in fields},
        },
        depends=depends,
    )


def every_outcome(task_name: str) -> str:
    """``depends`` on a fanned-out task whatever its items' outcomes: the group ends Succeeded, Failed or
    Errored (the phase of its last Failed/Errored item); AllFailed alone would miss a mix of Failed and
    Errored edges. The next step decides what the outcomes mean (the quorum, a record of who failed)."""
    return f"{task_name}.Succeeded || {task_name}.Failed || {task_name}.Errored"


def edge_inputs(fields: tuple[str, ...]) -> list[Parameter]:
    """The inputs of an edge step or DAG: the edge's name and the fields its item carries."""
    return [Parameter(name="edge")] + [Parameter(name=f) for f in fields]


def edge_container(
    step: str,
    outputs: list[Parameter],
    args: list[str],
    *,
    image: str,
    fields: tuple[str, ...],
    settings: ClusterSettings,
    tolerations: list[dict],
    edge_seconds: int | None = None,
    pending_seconds: int | None = None,
) -> Container:
    """A step that runs at the edge: pinned to its node, with the edge's own credentials (its cloud
    identity and its site identity); an edge not done by its deadline (or not even scheduled by the
    pending one) fails, which its workflow reads as the edge sitting out."""
    secret = _field(fields, "secret", f"{EDGE_SECRET_PREFIX}{_EDGE}")
    site_secret = _field(fields, "siteSecret", f"{SITE_SECRET_PREFIX}{_EDGE}")
    return argo41.Container(
        name=step,
        image=image,
        command=step_command(step),
        args=args,
        inputs=edge_inputs(fields),
        outputs=outputs,
        node_selector={NODE_LABEL: _EDGE},
        # Per-edge tolerations are a list, which a parameter can only carry as JSON: podSpecPatch is
        # Argo's way to set such pod fields per item. Uniform tolerations go on the template itself.
        pod_spec_patch='{"tolerations": {{inputs.parameters.tolerations}}}'
        if "tolerations" in fields
        else None,
        tolerations=[m.Toleration(**t) for t in tolerations] or None,
        env=[
            *credentials(secret),
            *credentials(site_secret, site=True),
            FieldEnv(name=Env.NODE_IP, field_path="status.hostIP"),
            *ca_env(settings),
        ],
        service_account_name=settings.service_accounts.edge,
        # No artifact repository in an edge pod: with archiveLogs its (cloud) Secret would be mounted.
        archive_location=m.ArtifactLocation(archive_logs=False),
        **container_security(settings, edge=True),
        # Argo v4.1 checks pendingTimeout on the node itself, never under a retryStrategy (the retry
        # node is Running while its pod is Pending: operator.go checkTemplateTimeouts), so with a
        # pending deadline the edge's steps do not retry; their S3 client still retries requests.
        retry_strategy=None if pending_seconds else retry(settings),
        active_deadline_seconds=edge_seconds or settings.train_deadline_seconds,
    ).pending(pending_seconds)


def task_edge_step(
    task: FederatedTask, settings: ClusterSettings, step: str, outputs: list[Parameter], args: list[str]
) -> Container:
    """:func:`edge_container` for ``task``: its image, per-edge fields, tolerations and edge deadlines."""
    fields = varying_fields(task)
    return edge_container(
        step,
        outputs,
        args,
        image=task.spec.image,
        fields=fields,
        settings=settings,
        tolerations=_uniform_tolerations(task, fields),
        edge_seconds=task.spec.deadlines.edge_seconds,
        pending_seconds=task.spec.deadlines.pending_seconds,
    )


def add_round_templates(
    *,
    image: str,
    cloud_secret: str,
    fields: tuple[str, ...],
    settings: ClusterSettings,
    tolerations: list[dict],
    edge_seconds: int | None = None,
    pending_seconds: int | None = None,
    secure: bool = False,
) -> None:
    """Create the round's templates inside the current Hera Workflow/WorkflowTemplate context.

    ``fields``: the per-edge fields the edge items carry (the rest follow the conventions).
    ``edge_seconds``/``pending_seconds``: the task's round deadlines for each edge step (default: the
    settings' train deadline, no pending timeout). ``secure``: the round of :func:`add_secure_round`.
    """

    def edge_step(step: str, outputs: list[Parameter], extra: tuple[str, ...] = ()) -> Container:
        return edge_container(
            step,
            outputs,
            [*round_args(), *edge_dataset_args(fields), *extra],
            image=image,
            fields=fields,
            settings=settings,
            tolerations=tolerations,
            edge_seconds=edge_seconds,
            pending_seconds=pending_seconds,
        )

    # validate exits 4 when the data breaks its contract: a Failed node, which the retry expression skips.
    validate = edge_step(
        Step.VALIDATE, [output(Outputs.PASSED), output(Outputs.FAILED), output(Outputs.ROWS)]
    )
    train = edge_step(
        Step.TRAIN,
        [output(Outputs.EXAMPLES), output(Outputs.LOSS), output(Outputs.TRAIN_SECONDS)],
        (flag(Flag.PARENT, "{{workflow.parameters.parent}}"),),
    )
    aggregate = cloud_step(
        Step.AGGREGATE,
        image=image,
        cloud_secret=cloud_secret,
        args=[*round_args(), flag(Flag.EDGES_FILE, EDGES_FILE)],
        inputs=[_edges_file()],
        outputs=[
            output(Outputs.MODEL_VERSION, global_name=WorkflowOutputs.MODEL_VERSION),
            output(Outputs.CONTRIBUTORS, global_name=WorkflowOutputs.CONTRIBUTORS),
            output(Outputs.MISSING, global_name=WorkflowOutputs.MISSING_EDGES),
            output(Outputs.MISSING_COUNT),
        ],
        settings=settings,
        deadline_seconds=settings.aggregate_deadline_seconds,
        metric=gauge(
            "edgefed_round_edges_missing",
            "edges that sat the round out",
            f"{{{{outputs.parameters.{Outputs.MISSING_COUNT}}}}}",
        ),
    )
    evaluate = cloud_step(
        Step.EVALUATE,
        image=image,
        cloud_secret=cloud_secret,
        args=round_args(),
        outputs=[
            output(Outputs.ACCURACY, global_name=WorkflowOutputs.ACCURACY),
            output(Outputs.LOSS, global_name=WorkflowOutputs.LOSS),
        ],
        settings=settings,
        deadline_seconds=settings.evaluate_deadline_seconds,
        metric=gauge(
            "edgefed_accuracy",
            "central accuracy of the new global model",
            f"{{{{outputs.parameters.{Outputs.ACCURACY}}}}}",
        ),
    )
    # One DAG per edge: its data is checked against the contract where it lives, then it trains (in a
    # secure round: it advertises its keys). (Argo cannot pair the items of two fanned-out tasks, so the
    # pair is one template, fanned out.)
    forward = {p.name: f"{{{{inputs.parameters.{p.name}}}}}" for p in edge_inputs(fields)}
    after_check = edge_step(Step.SECAGG_KEYS, []) if secure else train
    with DAG(name="edge", inputs=edge_inputs(fields)) as edge_dag:
        validate_task = Task(name=Step.VALIDATE, template=validate, arguments=forward)
        Task(name=after_check.name, template=after_check, arguments=forward, depends=validate_task.name)
    with DAG(name="round"):
        edge_task = over_edges("edge", edge_dag, fields)
        last = edge_task
        if secure:
            last = _secure_phases(
                edge_task,
                roster=cloud_step(
                    Step.SECAGG_ROSTER,
                    image=image,
                    cloud_secret=cloud_secret,
                    args=[
                        *round_args(),
                        flag(Flag.PHASE, "{{inputs.parameters.phase}}"),
                        flag(Flag.EDGES_FILE, EDGES_FILE),
                    ],
                    inputs=[Parameter(name="phase"), _edges_file()],
                    outputs=[],
                    settings=settings,
                    deadline_seconds=settings.aggregate_deadline_seconds,
                ),
                share=edge_step(Step.SECAGG_SHARE, []),
                train=train,
                unmask=edge_step(Step.SECAGG_UNMASK, []),
                fields=fields,
            )
        # the aggregate enforces the quorum over whatever the edges did
        aggregate_task = Task(name=Step.AGGREGATE, template=aggregate, depends=every_outcome(last.name))
        Task(
            name=Step.EVALUATE,
            template=evaluate,
            depends=aggregate_task.name,
            when="{{workflow.parameters.evaluate}} == true",
        )


def _edges_file() -> RawArtifact:
    """The round's edge list as a file: it can exceed what one command-line argument may hold (128 KiB on
    Linux), so it reaches a cloud step through a raw artifact."""
    return RawArtifact(name="edges", path=EDGES_FILE, data="{{workflow.parameters.edges}}")


def _secure_phases(
    edges: Task,
    *,
    roster: Container,
    share: Container,
    train: Container,
    unmask: Container,
    fields: tuple[str, ...],
) -> Task:
    """The phases of a secure round after the edges advertised their keys (:mod:`edgefed.steps.secure`)::

        edge ─► roster-keys ─► secagg-share ─► roster-shares ─► train ─► roster-masked ─► secagg-unmask

    Each roster step closes a phase whatever each edge did in it (every outcome); the next fan-out runs
    only once its roster is published (a failed roster, too few edges, fails the round)."""
    last = edges
    for phase, template in (("keys", share), ("shares", train), ("masked", unmask)):
        closed = Task(
            name=f"roster-{phase}",
            template=roster,
            arguments={"phase": phase},
            depends=every_outcome(last.name),
        )
        last = over_edges(template.name, template, fields, depends=closed.name)
    return last


def _uniform_tolerations(task: FederatedTask, fields: tuple[str, ...]) -> list[dict]:
    """Every edge's tolerations when they are the same (the common edge taint's included); [] when they vary."""
    if "tolerations" in fields:
        return []
    if not task.spec.edges:
        return [EDGE_TAINT_TOLERATION]
    return edge_values(task, task.spec.edges[0])["tolerations"]


def add_task_round_templates(task: FederatedTask, settings: ClusterSettings) -> None:
    """The round's templates for ``task``: fan-out items and tolerations as its edges need them."""
    fields = varying_fields(task)
    add_round_templates(
        image=task.spec.image,
        cloud_secret=task.spec.cloud_credentials_secret,
        fields=fields,
        settings=settings,
        tolerations=_uniform_tolerations(task, fields),
        edge_seconds=task.spec.deadlines.edge_seconds,
        pending_seconds=task.spec.deadlines.pending_seconds,
        secure=task.spec.aggregation.secure,
    )


def add_init_template(task: FederatedTask, settings: ClusterSettings) -> Container:
    """The ``init`` template: commits the task's initial model as round 0 (a no-op once it is)."""
    return cloud_step(
        Step.INIT,
        image=task.spec.image,
        cloud_secret=task.spec.cloud_credentials_secret,
        args=[*task_args(), flag(Flag.ROUND, "0")],
        outputs=[
            output(Outputs.MODEL_VERSION, global_name=WorkflowOutputs.MODEL_VERSION),
            output(Outputs.LAST_ROUND),
        ],
        settings=settings,
        deadline_seconds=settings.aggregate_deadline_seconds,
    )
