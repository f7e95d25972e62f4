"""What makes every generated pod one a Pod Security "restricted" namespace admits, sized per role.

* pod level (the Workflow's ``spec.securityContext``, so Argo's executor containers get it too):
  ``runAsNonRoot`` as the image's user (:data:`~.settings.STEP_UID`), ``seccompProfile: RuntimeDefault``;
* each step container: no privilege escalation, every capability dropped, a read-only root filesystem
  with an ``emptyDir`` at ``/tmp`` (``spec.volumes``), where the steps write their outputs
  (``/tmp/outputs``) and Argo puts their raw input artifacts (``/tmp/inputs``);
* requests and limits per role (:class:`~.settings.Resources`): edge steps, cloud steps.

Argo's ``init``/``wait`` containers take their container-level context from the controller's
``executor.securityContext`` (workflow-controller ConfigMap): :data:`EXECUTOR_SECURITY_CONTEXT` is the one
to set there. Resource templates' pods are locked down by Argo itself (``common.MinimalCtrSC``).
"""

from __future__ import annotations

from typing import Any

from hera.workflows import models as m

from edgefed.workflows.build.settings import ClusterSettings, Resources

__all__ = [
    "EDGE_TAINT_TOLERATION",
    "EXECUTOR_SECURITY_CONTEXT",
    "TMP_VOLUME",
    "container_security",
    "workflow_security",
]

#: The emptyDir mounted at /tmp in every step container.
TMP_VOLUME = "tmp"
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


def workflow_security(settings: ClusterSettings) -> dict[str, Any]:
    """The Workflow/WorkflowTemplate keyword arguments: pod securityContext and the /tmp volume."""
    return {
        "security_context": m.PodSecurityContext(
            run_as_non_root=True,
            run_as_user=settings.run_as_user,
            run_as_group=settings.run_as_group,
            fs_group=settings.run_as_group,
            seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
        ),
        "volumes": [m.Volume(name=TMP_VOLUME, empty_dir=m.EmptyDirVolumeSource())],
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
        "volume_mounts": [m.VolumeMount(name=TMP_VOLUME, mount_path="/tmp")],
        "resources": _requirements(settings.edge_resources if edge else settings.cloud_resources),
    }
