"""The joint inference service's Deployments and Services: valid Kubernetes objects a hardened cluster admits,
edge pods pinned to their own node with their own Secrets only, the cloud pod off the edge nodes."""

from __future__ import annotations

import kubernetes_validate
import pytest

from edgefed.workflows.build.names import NODE_LABEL
from edgefed.workflows.build.serving import serving_manifests
from tests.conformance.pss import KUBE_VERSION, Pod, restricted_problems, schema_problems
from tests.conformance.samples import make_task


def _secrets(pod_spec: dict) -> set[str]:
    return {
        e["valueFrom"]["secretKeyRef"]["name"]
        for c in pod_spec["containers"]
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


@pytest.mark.parametrize(
    ("edges", "custom"), [(1, False), (10, False), (3, True)], ids=["1", "10", "3-custom"]
)
def test_serving_objects_are_valid_admitted_and_least_privilege(edges: int, custom: bool) -> None:
    task = make_task(edges, custom=custom)
    docs = serving_manifests(task)
    assert len(docs) == 2 * (edges + 1)
    for name, doc in docs.items():
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)  # raises, naming the field
        if doc["kind"] != "Deployment":
            continue
        spec = doc["spec"]["template"]["spec"]
        pod = Pod(
            where=name, manifest={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
        )
        assert restricted_problems(pod) == [] and schema_problems(pod) == []
        assert spec["automountServiceAccountToken"] is False
    cloud = docs[f"{task.name}-inference-cloud-deployment.yaml"]["spec"]["template"]["spec"]
    terms = cloud["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [{"matchExpressions": [{"key": NODE_LABEL, "operator": "DoesNotExist"}]}]
    assert _secrets(cloud) == {task.spec.cloud_credentials_secret}
    for edge in task.spec.edges:
        spec = docs[f"{task.name}-inference-{edge.name}-deployment.yaml"]["spec"]["template"]["spec"]
        assert spec["nodeSelector"] == {NODE_LABEL: edge.name}
        assert _secrets(spec) == {edge.secret_name, edge.site_secret_name}  # its own two, never another's
        service = docs[f"{task.name}-inference-{edge.name}-service.yaml"]
        assert service["spec"]["internalTrafficPolicy"] == "Local"
