"""How the generated manifests behave on a cluster: one settings object, passed in, never global."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_SETTINGS", "STEP_GID", "STEP_UID", "ClusterSettings", "Resources", "ServiceAccounts"]

#: The step image's non-root user and group (images/Dockerfile ``USER 10001:10001``).
STEP_UID = 10001
STEP_GID = 10001


@dataclass(frozen=True, kw_only=True)
class Resources:
    """Requests and limits of one role's step containers (Kubernetes quantities: ``"500m"``, ``"2Gi"``)."""

    requests: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ServiceAccounts:
    """The Kubernetes identity of each role (the chart creates them with these default names, and binds
    each to no more than its templates need):

    * ``driver``: the task Workflow's resource steps (create and read round Workflows, patch its own
      progress);
    * ``cloud``: init, plan, aggregate, evaluate;
    * ``edge``: validate and train, on the edge nodes.

    No step calls the Kubernetes API: each pod's token serves Argo's executor (WorkflowTaskResults).
    """

    driver: str = "edgefed-driver"
    cloud: str = "edgefed-cloud"
    edge: str = "edgefed-edge"


def _edge_resources() -> Resources:
    # validate + train a small Keras model on the edge's dataset: TensorFlow alone needs ~1 GiB.
    return Resources(requests={"cpu": "1", "memory": "2Gi"}, limits={"cpu": "2", "memory": "4Gi"})


def _cloud_resources() -> Resources:
    # init, plan, aggregate, evaluate: one model (or the round's updates) in memory at a time.
    return Resources(requests={"cpu": "500m", "memory": "1Gi"}, limits={"cpu": "2", "memory": "4Gi"})


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """How the generated manifests behave on a cluster (the embedded engine ignores what it cannot use)."""

    service_accounts: ServiceAccounts = field(default_factory=ServiceAccounts)
    #: Secrets the kubelet pulls the step image with (``spec.imagePullSecrets`` of every Workflow).
    image_pull_secrets: tuple[str, ...] = ()
    #: ConfigMap (key ``ca.crt``) with the CAs of the stores' certificates; None: the image's system CAs.
    ca_config_map: str | None = None
    train_deadline_seconds: int = 3600
    aggregate_deadline_seconds: int = 1800
    evaluate_deadline_seconds: int = 1800
    round_deadline_seconds: int = 4 * 3600
    plan_deadline_seconds: int = 600
    #: Rounds per chain of the task Workflow (Argo's nesting limit: see workflows/build/task.py).
    rounds_per_chain: int = 40
    retry_limit: int = 2
    ttl_after_success_seconds: int = 24 * 3600
    ttl_after_failure_seconds: int = 7 * 24 * 3600
    pod_gc: str = "OnPodSuccess"
    #: Argo's artifact-repositories ConfigMap and key (charts/edgefed creates it); None: cluster default.
    artifact_repository: tuple[str, str] | None = ("artifact-repositories", "default-v1")
    cron_schedule: str = "0 3 * * 0"
    extra_labels: dict[str, str] = field(default_factory=dict)
    #: Requests/limits of the edge steps (validate, train) and of the cloud steps (init, plan,
    #: aggregate, evaluate); resource templates run Argo's own executor, sized by the controller.
    edge_resources: Resources = field(default_factory=_edge_resources)
    cloud_resources: Resources = field(default_factory=_cloud_resources)
    #: The user every step runs as (Pod Security "restricted": never root); the image's by default.
    run_as_user: int = STEP_UID
    run_as_group: int = STEP_GID


DEFAULT_SETTINGS = ClusterSettings()
