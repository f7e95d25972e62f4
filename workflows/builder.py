"""Generation: a FederatedTask becomes Argo Workflow documents, built with Hera.

One round is one Workflow::

    train (fan-out over the edges, withParam)  ──►  aggregate  ──►  evaluate (when due)
      each item pinned to its edge's node            depends: train.AnySucceeded || train.AllFailed

* ``train`` runs once per edge (``withParam: {{workflow.parameters.edges}}``), with a nodeSelector
  on the edge's node and store credentials from the edge's Kubernetes Secret.
* ``aggregate`` runs once every edge is done, whatever each edge's outcome: failed edges sit the
  round out, and the step itself enforces the quorum (failing the round when it does not hold).
* ``evaluate`` scores the committed model every ``spec.evaluation.everyRounds`` rounds.

Generation is a pure function of the task: no globals, no I/O, deterministic output. Store
credentials appear only as ``secretKeyRef``s, never as values. Run-time facts (the round number,
the store endpoint, which edges take part) are workflow parameters, so the embedded engine runs the
very document a cluster would run, only with parameters set as ``argo submit -p`` would set them.
"""

from __future__ import annotations

import json
from typing import Any

from hera.workflows import DAG, Container, Parameter, RetryStrategy, SecretEnv, Task, Workflow
from hera.workflows import models as m

from edgefed.workflows.spec import EdgeSpec, FederatedTask, StoreSpec

STEP_COMMAND = ["edgefed-step"]
OUTPUTS_DIR = "/tmp/outputs"
ACCESS_KEY_ENV = "EDGEFED_ACCESS_KEY"
SECRET_KEY_ENV = "EDGEFED_SECRET_KEY"
#: Keys of every store Secret (same convention as Argo's own MinIO artifact Secrets).
SECRET_ACCESS_KEY = "accessKey"
SECRET_SECRET_KEY = "secretKey"
NODE_LABEL = "kubernetes.io/hostname"
LABEL_TASK = "edgefed.io/task"
LABEL_ROUND = "edgefed.io/round"


def store_url(store: StoreSpec) -> str:
    return f"{'https' if store.secure else 'http'}://{store.endpoint}"


def edge_item(task: FederatedTask, edge: EdgeSpec) -> dict[str, str]:
    """One element of the round's ``edges`` parameter: everything a train step needs of its edge."""
    return {
        "name": edge.name,
        "node": edge.node,
        "secret": edge.secret_name,
        "dataset": edge.dataset.url,
        "store": store_url(edge.store or task.spec.store),
    }


def edges_parameter(task: FederatedTask) -> str:
    return json.dumps([edge_item(task, e) for e in task.spec.edges], separators=(",", ":"))


def step_config(task: FederatedTask) -> dict[str, Any]:
    """What the steps need of the spec (model, training, aggregation, quorum, dataset), as JSON data."""
    spec = task.spec
    return {
        "model": spec.model.model_dump(mode="json", by_alias=True),
        "training": spec.training.model_dump(mode="json", by_alias=True),
        "aggregation": spec.aggregation.model_dump(mode="json", by_alias=True),
        "quorum": spec.quorum,
        "dataset": spec.dataset,
    }


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
        name=name,
        global_name=global_name,
        value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/{name}", default=""),
    )


def _retry() -> RetryStrategy:
    # OnError: retry what the platform broke (pod evicted, worker lost), not a step that failed on
    # its data -- re-running a missing dataset only delays the round.
    return RetryStrategy(
        limit="2", retry_policy="OnError", backoff=m.Backoff(duration="5s", factor="2", max_duration="1m")
    )


def _workflow_parameters(task: FederatedTask, round_: int, *, evaluate: bool) -> list[Parameter]:
    return [
        Parameter(name="task", value=task.name),
        Parameter(name="round", value=str(round_)),
        Parameter(name="edges", value=edges_parameter(task)),
        Parameter(name="config", value=json.dumps(step_config(task), sort_keys=True, separators=(",", ":"))),
        Parameter(name="store", value=store_url(task.spec.store)),
        Parameter(name="evaluate", value="true" if evaluate else "false", enum=["true", "false"]),
    ]


def _metadata(task: FederatedTask, round_: int) -> dict[str, Any]:
    return {
        "generate_name": f"{task.name}-r{round_:05d}-",
        "labels": {LABEL_TASK: task.name, LABEL_ROUND: str(round_)},
    }


def round_workflow(task: FederatedTask, round_: int, *, evaluate: bool | None = None) -> Workflow:
    """The Hera Workflow of round ``round_`` (>= 1) of ``task``."""
    if round_ < 1:
        raise ValueError(f"rounds are numbered from 1, got {round_}")
    spec = task.spec
    if evaluate is None:
        evaluate = round_ % spec.evaluation.every_rounds == 0 or round_ == spec.last_round
    with Workflow(
        **_metadata(task, round_),
        entrypoint="round",
        arguments=_workflow_parameters(task, round_, evaluate=evaluate),
        parallelism=spec.parallelism,
    ) as workflow:
        train = Container(
            name="train",
            image=spec.image,
            command=[*STEP_COMMAND, "train"],
            args=[
                *_common_args(),
                "--edge={{inputs.parameters.edge}}",
                "--dataset={{inputs.parameters.dataset}}",
                "--dataset-store={{inputs.parameters.dataset-store}}",
            ],
            inputs=[
                Parameter(name="edge"),
                Parameter(name="node"),
                Parameter(name="secret"),
                Parameter(name="dataset"),
                Parameter(name="dataset-store"),
            ],
            outputs=[_output("examples"), _output("loss"), _output("train-seconds")],
            node_selector={NODE_LABEL: "{{inputs.parameters.node}}"},
            env=_credentials("{{inputs.parameters.secret}}"),
            retry_strategy=_retry(),
        )
        aggregate = Container(
            name="aggregate",
            image=spec.image,
            command=[*STEP_COMMAND, "aggregate"],
            args=[*_common_args(), "--edges={{workflow.parameters.edges}}"],
            outputs=[
                _output("model-version", global_name="model-version"),
                _output("contributors", global_name="contributors"),
                _output("missing", global_name="missing-edges"),
            ],
            env=_credentials(spec.cloud_credentials_secret),
            retry_strategy=_retry(),
        )
        evaluate_ = Container(
            name="evaluate",
            image=spec.image,
            command=[*STEP_COMMAND, "evaluate"],
            args=_common_args(),
            outputs=[_output("accuracy", global_name="accuracy"), _output("loss", global_name="loss")],
            env=_credentials(spec.cloud_credentials_secret),
        )
        with DAG(name="round"):
            train_task = Task(
                name="train",
                template=train,
                with_param="{{workflow.parameters.edges}}",
                arguments={
                    "edge": "{{item.name}}",
                    "node": "{{item.node}}",
                    "secret": "{{item.secret}}",
                    "dataset": "{{item.dataset}}",
                    "dataset-store": "{{item.store}}",
                },
            )
            aggregate_task = Task(
                name="aggregate",
                template=aggregate,
                depends=f"{train_task.name}.AnySucceeded || {train_task.name}.AllFailed",
            )
            Task(
                name="evaluate",
                template=evaluate_,
                depends=aggregate_task.name,
                when="{{workflow.parameters.evaluate}} == true",
            )
    return workflow


def init_workflow(task: FederatedTask) -> Workflow:
    """The Workflow that commits the task's initial model as round 0 (once per task)."""
    spec = task.spec
    with Workflow(
        **_metadata(task, 0),
        entrypoint="init",
        arguments=_workflow_parameters(task, 0, evaluate=False),
    ) as workflow:
        Container(
            name="init",
            image=spec.image,
            command=[*STEP_COMMAND, "init"],
            args=_common_args(),
            outputs=[_output("model-version", global_name="model-version")],
            env=_credentials(spec.cloud_credentials_secret),
            retry_strategy=_retry(),
        )
    return workflow


def to_document(workflow: Workflow) -> dict[str, Any]:
    """The Argo document (plain dict, as ``argo submit`` would read from YAML)."""
    return workflow.to_dict()


__all__ = [
    "ACCESS_KEY_ENV",
    "LABEL_ROUND",
    "LABEL_TASK",
    "NODE_LABEL",
    "OUTPUTS_DIR",
    "SECRET_ACCESS_KEY",
    "SECRET_KEY_ENV",
    "SECRET_SECRET_KEY",
    "STEP_COMMAND",
    "edge_item",
    "edges_parameter",
    "init_workflow",
    "round_workflow",
    "step_config",
    "store_url",
    "to_document",
]
