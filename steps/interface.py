"""The interface between the planes: what a step is called with, and what it gives back.

The control plane (``edgefed.workflows.build``) writes Argo templates that run ``edgefed-step
<step> <flags>``; the data plane (the step modules) parses those flags and writes its output
parameters as files. Both sides import the names from here, so a flag, an output or an
environment variable is spelled once. (The builder may import from ``steps``; ``steps`` never imports
``workflows``.) Object keys and bucket names are the other half of the contract: ``layout``.

Names are plain ``str`` constants grouped in classes (not ``StrEnum`` members): they go into Hera
models, YAML and argparse unchanged. Standard library only, no I/O.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = [
    "CLOUD_SECRET",
    "EDGES_FILE",
    "EDGE_SECRET_PREFIX",
    "NOTIFY_SECRET_PREFIX",
    "NOT_RETRIED",
    "OUTPUTS_DIR",
    "SECRET_ACCESS_KEY",
    "SECRET_SECRET_KEY",
    "SITE_SECRET_PREFIX",
    "STEP_COMMAND",
    "Env",
    "Flag",
    "Outputs",
    "Step",
    "StepExit",
    "edge_secret",
    "flag",
    "notify_secret",
    "round_workflow_name",
    "site_secret",
]

#: The one command every step template runs (the image's entry point, ``edgefed.steps.cli``).
STEP_COMMAND = "edgefed-step"
#: Where a step writes its output parameters, one file per output (``valueFrom.path``).
OUTPUTS_DIR = "/tmp/outputs"
#: Where the aggregate step finds the round's edge list (a raw input artifact: it may exceed what
#: one command-line argument holds).
EDGES_FILE = "/tmp/inputs/edges.json"


class Step:
    """The steps of ``edgefed-step``; each is also the name of its Argo template (:data:`ALL`)."""

    INIT: Final = "init"
    VALIDATE: Final = "validate"
    TRAIN: Final = "train"
    AGGREGATE: Final = "aggregate"
    EVALUATE: Final = "evaluate"
    PLAN: Final = "plan"  # between rounds: go on or stop, which round and edges next
    DEPLOY: Final = "deploy"  # at an edge: copy a committed model into the edge's own store
    RECORD_DEPLOYMENT: Final = "record-deployment"  # cloud: which version each edge now runs
    # the incremental learning job's check
    PROBE: Final = "probe"  # at an edge: new rows since its last contribution, the served model on them
    DECIDE: Final = "decide"  # cloud: did a trigger fire; the retraining's config
    PROMOTE_IF_BETTER: Final = (
        "promote-if-better"  # cloud: the candidate serves only if it beats the served model
    )
    # a secure-aggregation round (aggregation.secure): edge key exchange and sharing, cloud relaying
    SECAGG_KEYS: Final = "secagg-keys"  # at an edge: draw the round's secrets, advertise public keys
    SECAGG_SHARE: Final = "secagg-share"  # at an edge: encrypted shares of its secrets, one per edge
    SECAGG_ROSTER: Final = "secagg-roster"  # cloud: publish who takes part next, relay the shares
    SECAGG_UNMASK: Final = "secagg-unmask"  # at an edge: the shares that unmask the survivors' sum
    ALL: Final = (
        INIT,
        VALIDATE,
        TRAIN,
        AGGREGATE,
        EVALUATE,
        PLAN,
        DEPLOY,
        RECORD_DEPLOYMENT,
        PROBE,
        DECIDE,
        PROMOTE_IF_BETTER,
        SECAGG_KEYS,
        SECAGG_SHARE,
        SECAGG_ROSTER,
        SECAGG_UNMASK,
    )


class Flag:
    """Command-line flags of the steps (``flag(Flag.TASK, "x")`` is ``--task=x``)."""

    # every step
    TASK: Final = "--task"
    ROUND: Final = "--round"
    WORKFLOW: Final = "--workflow"
    STORE: Final = "--store"  # the cloud store: updates and models
    CONFIG: Final = "--config"  # the task config (JSON): model, training, aggregation, quorum, dataset
    OUTPUTS: Final = "--outputs"
    # steps that run at an edge
    EDGE: Final = "--edge"
    DATASET: Final = "--dataset"  # s3://bucket/key in the edge's own store
    DATASET_STORE: Final = "--dataset-store"  # the edge's own store endpoint
    # validate
    CONTRACT: Final = "--contract"
    # aggregate
    EDGES: Final = "--edges"
    EDGES_FILE: Final = "--edges-file"
    # secagg-roster
    PHASE: Final = "--phase"  # keys | shares | masked: which phase of the secure round it closes
    # plan
    BUDGET: Final = "--budget"  # rounds this chain of the task Workflow may still start
    SINCE: Final = "--since"  # the last round committed before the task Workflow started
    WORKFLOW_UID: Final = "--workflow-uid"  # the task Workflow's uid: whose attempt a round is
    # train: the round's parent model as the plan found it (JSON: round, key, versionId, sha256; empty: read
    # its manifest)
    PARENT: Final = "--parent"
    # the incremental learning job
    JOB: Final = "--job"  # the job's triggers, retraining and promotion rule (JSON)
    TRIGGER: Final = "--trigger"  # what started the check: check (its schedule), schedule, event


class Outputs:
    """Output parameters the steps write into :data:`OUTPUTS_DIR`."""

    # validate
    PASSED: Final = "passed"
    FAILED: Final = "failed"
    ROWS: Final = "rows"
    # train
    EXAMPLES: Final = "examples"
    LOSS: Final = "loss"  # train: local loss; evaluate: central loss
    TRAIN_SECONDS: Final = "train-seconds"
    # init, aggregate
    MODEL_VERSION: Final = "model-version"
    CONTRIBUTORS: Final = "contributors"
    MISSING: Final = "missing"  # JSON list of the edges that sat the round out
    MISSING_COUNT: Final = "missing-count"
    # evaluate
    ACCURACY: Final = "accuracy"
    # init, plan
    LAST_ROUND: Final = "last-round"
    # deploy
    DEPLOYED: Final = "deployed"  # JSON: the edge's current.json after the deployment
    # the incremental learning job
    NEW_ROWS: Final = "new-rows"
    RETRAIN: Final = "retrain"  # "true": a trigger fired
    REASON: Final = "reason"
    BASE_ROUND: Final = "base-round"  # the round retraining starts from (the served model's weights)
    TASK_CONFIG: Final = "task-config"  # the task config the retraining runs with
    PROMOTED: Final = "promoted"
    # plan
    GO: Final = "go"  # "true": start round NEXT_ROUND now
    NEXT_ROUND: Final = "round"
    EVALUATE: Final = "evaluate"  # "true" when the next round's model is scored
    EDGES: Final = "edges"  # JSON list of the next round's (sampled) edge items
    NAME: Final = "name"  # the next round's Workflow name (round_workflow_name)
    PARENT: Final = "parent"  # the next round's parent model (JSON: round, key, versionId, sha256)
    BUDGET: Final = "budget"  # what the next plan's --budget is
    ROUNDS_RUN: Final = "rounds-run"
    STOP_REASON: Final = "stop-reason"
    TITLE: Final = "title"  # progress for the Argo UI's title and description annotations
    DESCRIPTION: Final = "description"


class Env:
    """Environment variables a step reads: its store identities, filled from Kubernetes Secrets, and
    what the pod knows of its node and the stores' TLS."""

    #: The cloud store identity (cloud steps: ``cloud``; edge steps: ``edge-<edge>``).
    ACCESS_KEY: Final = "EDGEFED_ACCESS_KEY"
    SECRET_KEY: Final = "EDGEFED_SECRET_KEY"
    #: An edge step's identity in its own site's store (``site-<edge>``), where its dataset is.
    SITE_ACCESS_KEY: Final = "EDGEFED_SITE_ACCESS_KEY"
    SITE_SECRET_KEY: Final = "EDGEFED_SITE_SECRET_KEY"
    #: The edge node's own address (downward API ``status.hostIP``): the node-local store's host.
    NODE_IP: Final = "EDGEFED_NODE_IP"
    #: A PEM bundle of the CAs the stores' certificates chain to (unset: the system's CAs).
    CA_FILE: Final = "EDGEFED_CA_FILE"


def flag(name: str, value: str) -> str:
    """``--flag=value``: one argv element, as a template writes it."""
    return f"{name}={value}"


#: Keys of every store Secret (the same convention as Argo's own MinIO artifact Secrets).
SECRET_ACCESS_KEY = "accessKey"
SECRET_SECRET_KEY = "secretKey"
#: The cloud identity's Secret, unless the task names another.
CLOUD_SECRET = "edgefed-cloud"
EDGE_SECRET_PREFIX = "edgefed-edge-"
SITE_SECRET_PREFIX = "edgefed-site-"
NOTIFY_SECRET_PREFIX = "edgefed-notify-"


def edge_secret(edge: str) -> str:
    """The Secret holding ``edge``'s cloud store identity, unless the task names another."""
    return f"{EDGE_SECRET_PREFIX}{edge}"


def notify_secret(edge: str) -> str:
    """The Secret holding ``edge``'s notification-only identity (an incremental job's EventSource reads it)."""
    return f"{NOTIFY_SECRET_PREFIX}{edge}"


def site_secret(edge: str) -> str:
    """The Secret holding ``edge``'s identity in its own site's store, unless the task names another."""
    return f"{SITE_SECRET_PREFIX}{edge}"


class StepExit(IntEnum):
    """Exit statuses of ``edgefed-step``: the round tells an edge that sat out from one that broke."""

    OK = 0
    FAILED = 1  # anything else: the store, a bug
    USAGE = 2  # unknown step or bad flags
    DATA_UNAVAILABLE = 3  # the edge's dataset is missing or unreadable: nothing to retry
    CONTRACT_FAILED = 4  # the data broke its contract: the edge's train step must not run
    ROUND_FAILED = 5  # plan: the round this task Workflow started did not commit; retrying cannot help
    OFFLINE = 6  # an edge could not reach the cloud: it trained offline, its update waits at its site


#: Exit statuses a retry cannot fix: the step's input is wrong, not the platform or the network.
NOT_RETRIED: Final = (
    StepExit.USAGE,
    StepExit.DATA_UNAVAILABLE,
    StepExit.CONTRACT_FAILED,
    StepExit.ROUND_FAILED,
    StepExit.OFFLINE,  # the edge's work for the round is done and kept; it delivers it next time
)


def round_workflow_name(task: str, round_: int, attempt: int) -> str:
    """The Workflow of attempt ``attempt`` of round ``round_``: ``<task>-r00007-a1``. A function of task,
    round and attempt only, so two planners of the same round name the same Workflow and the API server
    refuses the second."""
    return f"{task}-r{round_:05d}-a{attempt}"
