"""How the generated manifests behave on a cluster: one settings object, passed in, never global."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_SETTINGS", "ClusterSettings"]


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """How the generated manifests behave on a cluster (the embedded engine ignores what it cannot use)."""

    service_account: str | None = None
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


DEFAULT_SETTINGS = ClusterSettings()
