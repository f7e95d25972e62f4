"""Kubernetes Deployments and Services of the joint inference service (``edgefed serve generate``).

* cloud: one Deployment + Service ``<task>-inference-cloud`` serving a (bigger) model's served version, as the
  cloud ServiceAccount with the cloud store identity, never on an edge node;
* edge: per edge a Deployment + Service ``<task>-inference-<edge>``, pinned to the edge's node by the
  node-restriction label, as the edge ServiceAccount with the edge's two identities; it serves the version
  deployed into the edge's own store (``edgefed models deploy``), forwards hard examples to the cloud Service and
  keeps them in its own store. Its Service is node-local (``internalTrafficPolicy: Local``): clients at the site
  reach the model on their node.

Hardened as the step pods are (restricted Pod Security: non-root, no privilege escalation, all capabilities
dropped, read-only root filesystem with /tmp an emptyDir, RuntimeDefault seccomp), with probes on /healthz
and /readyz. Plain dicts: these are core Kubernetes objects, not Argo's (Hera builds those).
"""

from __future__ import annotations

from typing import Any

from edgefed.steps.interface import Env
from edgefed.workflows.build.edges import edge_values, store_url
from edgefed.workflows.build.names import LABEL_TASK, NODE_LABEL
from edgefed.workflows.build.pods import CA_DIR, CA_FILE, CA_KEY, CA_VOLUME, EDGE_TAINT_TOLERATION, TMP_VOLUME
from edgefed.workflows.build.settings import DEFAULT_SETTINGS, ClusterSettings, Resources
from edgefed.workflows.build.workflows import for_task
from edgefed.workflows.spec import FederatedTask

__all__ = ["PORT", "cloud_service_name", "edge_service_name", "serving_manifests"]

PORT = 8080
LABEL_COMPONENT = "edgefed.io/component"


def cloud_service_name(task: FederatedTask) -> str:
    return f"{task.name}-inference-cloud"


def edge_service_name(task: FederatedTask, edge: str) -> str:
    return f"{task.name}-inference-{edge}"


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _credentials(secret: str, *, site: bool = False) -> list[dict[str, Any]]:
    from edgefed.steps.interface import SECRET_ACCESS_KEY, SECRET_SECRET_KEY

    access, key = (Env.SITE_ACCESS_KEY, Env.SITE_SECRET_KEY) if site else (Env.ACCESS_KEY, Env.SECRET_KEY)
    return [_secret_env(access, secret, SECRET_ACCESS_KEY), _secret_env(key, secret, SECRET_SECRET_KEY)]


def _resources(resources: Resources) -> dict[str, Any]:
    return {
        k: v for k, v in (("requests", dict(resources.requests)), ("limits", dict(resources.limits))) if v
    }


def _pod(
    settings: ClusterSettings,
    *,
    args: list[str],
    env: list[dict[str, Any]],
    service_account: str,
    resources: Resources,
    image: str,
    placement: dict[str, Any],
) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": TMP_VOLUME, "emptyDir": {}}]
    mounts = [{"name": TMP_VOLUME, "mountPath": "/tmp"}]
    if settings.ca_config_map:
        volumes.append(
            {
                "name": CA_VOLUME,
                "configMap": {"name": settings.ca_config_map, "items": [{"key": CA_KEY, "path": CA_KEY}]},
            }
        )
        mounts.append({"name": CA_VOLUME, "mountPath": CA_DIR, "readOnly": True})
        env = [*env, {"name": Env.CA_FILE, "value": CA_FILE}]
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
    spec: dict[str, Any] = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,  # the service talks to S3, never to the Kubernetes API
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_group,
            "fsGroup": settings.run_as_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "inference",
                "image": image,
                "command": ["python", "-m", "edgefed.steps.serving"],
                "args": args,
                "ports": [{"name": "http", "containerPort": PORT}],
                "env": env,
                "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "http"}},
                "livenessProbe": probe,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                },
                "volumeMounts": mounts,
                **({"resources": _resources(resources)} if _resources(resources) else {}),
            }
        ],
        "volumes": volumes,
        **placement,
    }
    if settings.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in settings.image_pull_secrets]
    return spec


def _deployment_and_service(
    name: str, labels: dict[str, str], pod_spec: dict[str, Any], *, node_local: bool
) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": {
                    "metadata": {"labels": {**labels, "app.kubernetes.io/name": name}},
                    "spec": pod_spec,
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "selector": {"app.kubernetes.io/name": name},
                "ports": [{"name": "http", "port": PORT, "targetPort": "http"}],
                **({"internalTrafficPolicy": "Local"} if node_local else {}),
            },
        },
    ]


def serving_manifests(
    task: FederatedTask,
    *,
    cloud_task: str | None = None,
    threshold: float = 0.8,
    rule: str = "confidence",
    namespace: str = "edgefed",
    settings: ClusterSettings = DEFAULT_SETTINGS,
) -> dict[str, dict[str, Any]]:
    """Deployment + Service of the cloud side (serving ``cloud_task``'s served version, default the task's)
    and of every edge, by file name."""
    from edgefed.workflows.build.pods import off_edge_nodes

    settings = for_task(task, settings)
    store = store_url(task.spec.store)
    cloud_name = cloud_service_name(task)
    cloud_url = f"http://{cloud_name}.{namespace}.svc:{PORT}"
    out: dict[str, dict[str, Any]] = {}
    cloud_pod = _pod(
        settings,
        args=[
            "cloud",
            f"--task={cloud_task or task.name}",
            f"--store={store}",
            "--host=0.0.0.0",
            f"--port={PORT}",
        ],
        env=_credentials(task.spec.cloud_credentials_secret),
        service_account=settings.service_accounts.cloud,
        resources=settings.cloud_resources,
        image=task.spec.image,
        placement={"affinity": off_edge_nodes().model_dump(exclude_none=True, by_alias=True)},
    )
    labels = {LABEL_TASK: task.name, LABEL_COMPONENT: "inference-cloud"}
    deployment, service = _deployment_and_service(cloud_name, labels, cloud_pod, node_local=False)
    out[f"{cloud_name}-deployment.yaml"], out[f"{cloud_name}-service.yaml"] = deployment, service
    for edge in task.spec.edges:
        values = edge_values(task, edge)
        name = edge_service_name(task, edge.name)
        pod = _pod(
            settings,
            args=[
                "edge",
                f"--task={task.name}",
                f"--edge={edge.name}",
                f"--store={store}",
                f"--site-store={values['store']}",
                f"--cloud={cloud_url}",
                f"--rule={rule}",
                f"--threshold={threshold:g}",
                "--host=0.0.0.0",
                f"--port={PORT}",
            ],
            env=[
                *_credentials(edge.secret_name),
                *_credentials(edge.site_secret_name, site=True),
                {"name": Env.NODE_IP, "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            ],
            service_account=settings.service_accounts.edge,
            resources=settings.edge_resources,
            image=task.spec.image,
            placement={
                "nodeSelector": {NODE_LABEL: edge.name},
                "tolerations": values["tolerations"] or [EDGE_TAINT_TOLERATION],
            },
        )
        labels = {LABEL_TASK: task.name, LABEL_COMPONENT: "inference-edge", "edgefed.io/edge": edge.name}
        deployment, service = _deployment_and_service(name, labels, pod, node_local=True)
        out[f"{name}-deployment.yaml"], out[f"{name}-service.yaml"] = deployment, service
    return out
