"""An offline Pod Security "restricted" admission: the pods Argo would create for each generated template,
checked against the Pod Security Standards and the Kubernetes Pod schema.

:func:`pods_of` builds, for every pod-running template of a document (container and resource templates),
the pod Argo v4.1's controller would create in its default (init + wait) layout
(``workflow/controller/workflowpod.go``): the pod securityContext is the template's, else the workflow's
``spec.securityContext``; the volumes are Argo's own emptyDirs plus the workflow's and the template's; the
``init``/``wait`` containers (and a resource template's ``main``, which runs ``argoexec resource``) carry
the controller's ``executor.securityContext`` -- for resource templates Argo's ``MinimalCtrSC`` when none
is configured. A template's podSpecPatch is merged in (its ``{{...}}`` variables blanked).

:func:`restricted_problems` applies the rules of
https://kubernetes.io/docs/concepts/security/pod-security-standards/ (baseline and restricted);
:func:`schema_problems` validates the pod with kubernetes-validate (strict: no unknown fields).
Every message names the document, the template, the container and the field.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate
import yaml

__all__ = [
    "ALLOWED_VOLUME_TYPES",
    "KUBE_VERSION",
    "Pod",
    "pods_of",
    "restricted_problems",
    "schema_problems",
]

KUBE_VERSION = "1.30.0"
#: Volume types the restricted profile allows.
ALLOWED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
_ARGO_VOLUMES = [
    {"name": "var-run-argo", "emptyDir": {}},
    {"name": "tmp-dir-argo", "emptyDir": {}},
]
#: Argo's ``common.MinimalCtrSC``: what a resource template's containers get with no executor setting.
_MINIMAL_CTR_SC = {
    "capabilities": {"drop": ["ALL"]},
    "privileged": False,
    "runAsNonRoot": True,
    "runAsUser": 8737,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "seccompProfile": {"type": "RuntimeDefault"},
}
_CONTAINER_KEYS = (
    "name",
    "image",
    "command",
    "args",
    "env",
    "resources",
    "securityContext",
    "volumeMounts",
    "ports",
)
_TEMPLATE_POD_KEYS = ("nodeSelector", "tolerations", "affinity", "serviceAccountName", "priorityClassName")
_SPEC_POD_KEYS = ("nodeSelector", "tolerations", "affinity", "serviceAccountName", "hostNetwork", "dnsPolicy")
_VARIABLE = re.compile(r"\{\{[^}]*\}\}")


class Pod:
    """One pod a template would run: ``where`` names the document and template."""

    def __init__(self, *, where: str, manifest: dict[str, Any]) -> None:
        self.where = where
        self.manifest = manifest

    def __repr__(self) -> str:
        return f"Pod({self.where})"


def _doc_name(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata", {})
    return f"{doc.get('kind')} {meta.get('name') or meta.get('generateName')}"


def _effective_spec(doc: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The spec the pods of ``doc`` come from: a CronWorkflow's workflowSpec, a referenced template's
    spec under the referring document's own fields (None when the template is not among ``docs``)."""
    spec = doc.get("spec", {})
    if doc.get("kind") == "CronWorkflow":
        spec = spec.get("workflowSpec", {})
    ref = spec.get("workflowTemplateRef")
    if not ref:
        return spec
    for other in docs:
        if other.get("kind") == "WorkflowTemplate" and other["metadata"].get("name") == ref.get("name"):
            base = _effective_spec(other, docs) or {}
            return {**base, **{k: v for k, v in spec.items() if k != "workflowTemplateRef"}}
    return None


def _patch(pod_spec: dict[str, Any], patch: str) -> None:
    """Merge a podSpecPatch (variables blanked; containers merged by name), as Argo's strategic merge."""
    value = yaml.safe_load(_VARIABLE.sub("null", patch)) or {}
    for key, new in value.items():
        if new is None:
            continue
        if key in ("containers", "initContainers"):
            by_name = {c["name"]: c for c in pod_spec.get(key, [])}
            for container in new:
                by_name.setdefault(container["name"], {}).update(container)
            pod_spec[key] = list(by_name.values())
        else:
            pod_spec[key] = new


def _pod(spec: dict[str, Any], template: dict[str, Any], executor: dict[str, Any] | None) -> dict[str, Any]:
    resource = "resource" in template
    exec_sc = executor if executor is not None else (_MINIMAL_CTR_SC if resource else None)

    def argoexec(name: str, command: list[str]) -> dict[str, Any]:
        container: dict[str, Any] = {
            "name": name,
            "image": "quay.io/argoproj/argoexec:v4.1.2",
            "command": command,
        }
        if exec_sc is not None:
            container["securityContext"] = copy.deepcopy(exec_sc)
            if resource and executor is None and name != "main":
                del container["securityContext"]["readOnlyRootFilesystem"]  # Argo: TODO #10787
        container["volumeMounts"] = [{"name": "var-run-argo", "mountPath": "/var/run/argo"}]
        return container

    if resource:
        main = argoexec("main", ["argoexec", "resource", template["resource"]["action"]])
    else:
        main = {k: copy.deepcopy(v) for k, v in template["container"].items() if k in _CONTAINER_KEYS}
        main["name"] = "main"
        main.setdefault("volumeMounts", []).append({"name": "var-run-argo", "mountPath": "/var/run/argo"})
    volumes = [*copy.deepcopy(_ARGO_VOLUMES), *copy.deepcopy(spec.get("volumes", []))]
    volumes += copy.deepcopy(template.get("volumes", []))
    if template.get("inputs", {}).get("artifacts"):
        volumes.append({"name": "input-artifacts", "emptyDir": {}})
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "initContainers": [argoexec("init", ["argoexec", "init"])],
        "containers": [argoexec("wait", ["argoexec", "wait"]), main],
        "volumes": volumes,
    }
    pod_spec.update({k: copy.deepcopy(spec[k]) for k in _SPEC_POD_KEYS if k in spec})
    pod_spec.update({k: copy.deepcopy(template[k]) for k in _TEMPLATE_POD_KEYS if k in template})
    security = template.get("securityContext", spec.get("securityContext"))
    if security is not None:
        pod_spec["securityContext"] = copy.deepcopy(security)
    for patch in (spec.get("podSpecPatch"), template.get("podSpecPatch")):
        if patch:
            _patch(pod_spec, patch)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": template["name"]}, "spec": pod_spec}


def pods_of(docs: list[dict[str, Any]], *, executor: dict[str, Any] | None) -> tuple[list[Pod], list[str]]:
    """Every pod the documents' container and resource templates would run, and the documents whose
    pods cannot be built (a workflowTemplateRef to a template not among ``docs``).

    ``executor``: the controller's ``executor.securityContext`` (None: not configured)."""
    pods, problems = [], []
    for doc in docs:
        spec = _effective_spec(doc, docs)
        if spec is None:
            problems.append(
                f"{_doc_name(doc)}: its workflowTemplateRef names no template among the documents"
            )
            continue
        for template in spec.get("templates", []):
            if "container" in template or "resource" in template:
                where = f"{_doc_name(doc)}: template {template['name']}"
                pods.append(Pod(where=where, manifest=_pod(spec, template, executor)))
    return pods, problems


def _containers(pod_spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{kind} {c.get('name')}", c)
        for kind in ("initContainers", "containers", "ephemeralContainers")
        for c in pod_spec.get(kind, [])
    ]


def restricted_problems(pod: Pod) -> list[str]:
    """What Pod Security "restricted" refuses in ``pod`` (each message: where, field, expected, found)."""
    spec = pod.manifest["spec"]
    pod_sc = spec.get("securityContext") or {}
    problems: list[str] = []

    def refuse(field: str, expected: str, found: Any) -> None:
        problems.append(
            f"{pod.where}: {field}: expected {expected}, found {found!r} (Pod Security restricted)"
        )

    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            refuse(f"spec.{host}", "unset or false", spec[host])
    for volume in spec.get("volumes", []):
        kinds = sorted(set(volume) - {"name"})
        if not set(kinds) <= ALLOWED_VOLUME_TYPES:
            refuse(f"spec.volumes[{volume.get('name')}]", f"one of {sorted(ALLOWED_VOLUME_TYPES)}", kinds)
    if pod_sc.get("runAsUser") == 0:
        refuse("spec.securityContext.runAsUser", "non-zero", 0)
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        refuse("spec.securityContext.seccompProfile.type", "RuntimeDefault or Localhost", pod_seccomp)
    for name, container in _containers(spec):
        sc = container.get("securityContext") or {}
        field = f"{name}: securityContext"
        if sc.get("privileged"):
            refuse(f"{field}.privileged", "unset or false", True)
        if sc.get("allowPrivilegeEscalation") is not False:
            refuse(f"{field}.allowPrivilegeEscalation", "false", sc.get("allowPrivilegeEscalation"))
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            refuse(f"{field}.capabilities.drop", "to include ALL", capabilities.get("drop"))
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            refuse(f"{field}.capabilities.add", "only NET_BIND_SERVICE", capabilities.get("add"))
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True:
            refuse(f"{field}.runAsNonRoot (or the pod's)", "true", non_root)
        if sc.get("runAsUser") == 0:
            refuse(f"{field}.runAsUser", "non-zero", 0)
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            refuse(f"{field}.seccompProfile.type (or the pod's)", "RuntimeDefault or Localhost", seccomp)
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                refuse(f"{name}: ports[].hostPort", "unset or 0", port["hostPort"])
    return problems


def schema_problems(pod: Pod) -> list[str]:
    """What the Kubernetes Pod schema (strict: no unknown field) refuses in ``pod``."""
    try:
        kubernetes_validate.validate(pod.manifest, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path)
        return [f"{pod.where}: Pod schema: {path}: {err.message}"]
    return []
