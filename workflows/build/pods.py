"""What makes every generated pod one a Pod Security "restricted" namespace admits, sized per role.

* pod level (the Workflow's ``spec.securityContext``, so Argo's executor containers get it too):
  ``runAsNonRoot`` as the image's user (:data:`~.settings.STEP_UID`), ``seccompProfile: RuntimeDefault``;
* each step container: no privilege escalation, every capability dropped, a read-only root filesystem
  with an ``emptyDir`` at ``/tmp`` (``spec.volumes``), where the steps write their outputs
  (``/tmp/outputs``) and Argo puts their raw input artifacts (``/tmp/inputs``);
* requests and limits per role (:class:`~.settings.Resources`): edge steps, cloud steps;
* where each role may run: edge steps only on their edge's node (the templates' nodeSelector), every
  other pod never on an edge node (:func:`off_edge_nodes`), and none of them tolerates the edge taint;
* the stores' CA bundle, when the task names one: a ConfigMap volume at :data:`CA_DIR`.

Argo's ``init``/``wait`` containers take their container-level context from the controller's
``executor.securityContext`` (workflow-controller ConfigMap): :data:`EXECUTOR_SECURITY_CONTEXT` is the one
to set there. Resource templates' pods are locked down by Argo itself (``common.MinimalCtrSC``).
"""

from __future__ import annotations

from typing import Any

from hera.workflows import models as m

from edgefed.workflows.build.names import NODE_LABEL
from edgefed.workflows.build.settings import ClusterSettings, Resources

__all__ = [
    "CA_DIR",
    "CA_FILE",
    "CA_VOLUME",
    "EDGE_TAINT_TOLERATION",
    "EXECUTOR_SECURITY_CONTEXT",
    "TMP_VOLUME",
    "container_security",
    "off_edge_nodes",
    "workflow_security",
]

#: The emptyDir mounted at /tmp in every step container.
TMP_VOLUME = "tmp"
#: The stores' CA bundle (a ConfigMap's ``ca.crt``), mounted read-only in every step container.
CA_VOLUME = "store-ca"
CA_DIR = "/etc/edgefed/ca"
CA_KEY = "ca.crt"
CA_FILE = f"{CA_DIR}/{CA_KEY}"
#: The taint edge nodes commonly carry; every edge step tolerates it (with the task's own tolerations).
EDGE_TAINT_TOLERATION: dict[str, str] = {
    "key": "node-role.kubernetes.io/edge",
    "operator": "Exists",
    "effect": "NoSchedule",
}
#: The container securityContext for Argo's executor (``executor.securityContext`` of the controller).
EXECUTOR_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def off_edge_nodes() -> m.Affinity:
    """Required node affinity of every pod that is not an edge's: no node carrying an edge's label.

    Argo uses a template's ``affinity`` instead of the workflow's, so each cloud template carries it."""
    return m.Affinity(
        node_affinity=m.NodeAffinity(
            required_during_scheduling_ignored_during_execution=m.NodeSelector(
                node_selector_terms=[
                    m.NodeSelectorTerm(
                        match_expressions=[m.NodeSelectorRequirement(key=NODE_LABEL, operator="DoesNotExist")]
                    )
                ]
            )
        )
    )


def workflow_security(settings: ClusterSettings) -> dict[str, Any]:
    """The Workflow/WorkflowTemplate keyword arguments: pod securityContext, the /tmp volume (and the
    stores' CA bundle), the image pull Secrets."""
    volumes = [m.Volume(name=TMP_VOLUME, empty_dir=m.EmptyDirVolumeSource())]
    if settings.ca_config_map:
        volumes.append(
            m.Volume(
                name=CA_VOLUME,
                config_map=m.ConfigMapVolumeSource(
                    name=settings.ca_config_map, items=[m.KeyToPath(key=CA_KEY, path=CA_KEY)]
                ),
            )
        )
    return {
        "image_pull_secrets": [m.LocalObjectReference(name=n) for n in settings.image_pull_secrets] or None,
        "security_context": m.PodSecurityContext(
            run_as_non_root=True,
            run_as_user=settings.run_as_user,
            run_as_group=settings.run_as_group,
            fs_group=settings.run_as_group,
            seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
        ),
        "volumes": volumes,
    }


def _requirements(resources: Resources) -> m.ResourceRequirements | None:
    if not resources.requests and not resources.limits:
        return None
    return m.ResourceRequirements(
        requests={k: m.Quantity(v) for k, v in resources.requests.items()} or None,
        limits={k: m.Quantity(v) for k, v in resources.limits.items()} or None,
    )


def container_security(settings: ClusterSettings, *, edge: bool) -> dict[str, Any]:
    """A step Container's keyword arguments: its securityContext, the /tmp mount, its role's resources."""
    return {
        "security_context": m.SecurityContext(
            allow_privilege_escalation=False,
            capabilities=m.Capabilities(drop=["ALL"]),
            read_only_root_filesystem=True,
            run_as_non_root=True,
        ),
        "volume_mounts": [
            m.VolumeMount(name=TMP_VOLUME, mount_path="/tmp"),
            *(
                [m.VolumeMount(name=CA_VOLUME, mount_path=CA_DIR, read_only=True)]
                if settings.ca_config_map
                else []
            ),
        ],
        "resources": _requirements(settings.edge_resources if edge else settings.cloud_resources),
    }
