"""Every pod of every generated document is one a Pod Security "restricted" namespace admits, valid against
the Kubernetes Pod schema, with a read-only root, /tmp on an emptyDir, and its role's requests and limits;
edge steps tolerate the common edge taint. A broken document fails each rule with a message naming it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from edgefed.steps.interface import Step
from edgefed.workflows.build.pods import EDGE_TAINT_TOLERATION, EXECUTOR_SECURITY_CONTEXT, TMP_VOLUME
from edgefed.workflows.build.settings import DEFAULT_SETTINGS, STEP_UID
from edgefed.workflows.build.workflows import for_task
from edgefed.workflows.spec import FederatedTask
from tests.conformance.pss import Pod, pods_of, restricted_problems, schema_problems
from tests.conformance.samples import generated_manifests, make_task

EDGE_STEPS = {
    Step.VALIDATE,
    Step.TRAIN,
    Step.DEPLOY,
    Step.PROBE,
    Step.SECAGG_KEYS,
    Step.SECAGG_SHARE,
    Step.SECAGG_UNMASK,
}


def _pods(docs: list[dict[str, Any]]) -> list[Pod]:
    pods, problems = pods_of(docs, executor=EXECUTOR_SECURITY_CONTEXT)
    assert problems == []
    return pods


def test_every_generated_pod_is_admitted_by_restricted_and_valid(docs: list[dict[str, Any]]) -> None:
    pods = _pods(docs)
    kinds = {pod.where.split(":")[0].split()[0] for pod in pods}
    assert {"Workflow", "WorkflowTemplate"} <= kinds
    # Step pods and resource pods (the task Workflow's round-workflow and progress) are both covered.
    assert any("template round-workflow" in pod.where for pod in pods)
    assert any(f"template {Step.TRAIN}" in pod.where for pod in pods)
    # 1,000 edges yield the same few templates: check each distinct pod once.
    distinct = {repr(pod.manifest): pod for pod in pods}.values()
    problems = [p for pod in distinct for p in restricted_problems(pod) + schema_problems(pod)]
    assert problems == []


def test_step_containers_are_hardened_and_sized_per_role(
    task: FederatedTask, docs: list[dict[str, Any]]
) -> None:
    settings = for_task(task, DEFAULT_SETTINGS)  # the spec's per-role resources, else the defaults
    for pod in _pods(docs):
        spec = pod.manifest["spec"]
        assert spec["securityContext"]["runAsUser"] == STEP_UID, pod.where
        main = next(c for c in spec["containers"] if c["name"] == "main")
        if "image" not in main or main["image"].startswith("quay.io/argoproj/"):
            continue  # a resource template: Argo's executor
        assert main["securityContext"]["readOnlyRootFilesystem"] is True, pod.where
        tmp = {m["name"] for m in main["volumeMounts"] if m["mountPath"] == "/tmp"}
        assert tmp == {TMP_VOLUME}, pod.where
        assert {"name": TMP_VOLUME, "emptyDir": {}} in spec["volumes"], pod.where
        step = main["command"][1]
        role = settings.edge_resources if step in EDGE_STEPS else settings.cloud_resources
        assert main["resources"] == {"requests": role.requests, "limits": role.limits}, pod.where
        if step in EDGE_STEPS and "tolerations" in spec:
            assert EDGE_TAINT_TOLERATION in spec["tolerations"], pod.where


def test_edge_tolerations_keep_the_edge_taint_and_the_edges_own() -> None:
    docs = generated_manifests(make_task(3, custom=True))
    round_ = next(
        d for d in docs if d["kind"] == "WorkflowTemplate" and d["metadata"]["name"].endswith("-round")
    )
    edges = round_["spec"]["arguments"]["parameters"]
    items = next(p["value"] for p in edges if p["name"] == "edges")
    assert "node-role.kubernetes.io/edge" in items and "edgefed.io/edge" in items


# ------------------------------------------------------------------------------ a broken document


def _round_workflow() -> dict[str, Any]:
    docs = generated_manifests(make_task(1))
    return copy.deepcopy(_with_template(docs, Step.TRAIN))


def _with_template(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The first Workflow among ``docs`` with a template ``name`` of its own."""
    return next(
        d
        for d in docs
        if d["kind"] == "Workflow" and any(t["name"] == name for t in d["spec"].get("templates", []))
    )


def _train(doc: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in doc["spec"]["templates"] if t["name"] == Step.TRAIN)


def _problems(
    doc: dict[str, Any], *, executor: dict[str, Any] | None = EXECUTOR_SECURITY_CONTEXT
) -> list[str]:
    pods, problems = pods_of([doc], executor=executor)
    return problems + [p for pod in pods for p in restricted_problems(pod) + schema_problems(pod)]


def _break_pod_security(doc: dict[str, Any]) -> None:
    del doc["spec"]["securityContext"]


def _break_container_security(doc: dict[str, Any]) -> None:
    del _train(doc)["container"]["securityContext"]


def _privileged_root(doc: dict[str, Any]) -> None:
    _train(doc)["container"]["securityContext"].update(
        privileged=True, runAsUser=0, capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}
    )


def _unconfined(doc: dict[str, Any]) -> None:
    doc["spec"]["securityContext"]["seccompProfile"] = {"type": "Unconfined"}


def _host_path(doc: dict[str, Any]) -> None:
    doc["spec"]["volumes"].append({"name": "host", "hostPath": {"path": "/var/lib"}})


def _host_namespaces(doc: dict[str, Any]) -> None:
    doc["spec"]["hostNetwork"] = True
    _train(doc)["container"]["ports"] = [{"containerPort": 80, "hostPort": 80}]


def _unknown_field(doc: dict[str, Any]) -> None:
    _train(doc)["container"]["securityContext"]["runAsNonRooot"] = True


BROKEN = {
    "no-pod-securityContext": (
        _break_pod_security,
        [
            "template train: containers main: securityContext.seccompProfile.type (or the pod's): "
            "expected RuntimeDefault or Localhost, found None",
            "template aggregate: containers main: securityContext.seccompProfile.type (or the pod's)",
        ],
    ),
    "no-container-securityContext": (
        _break_container_security,
        [
            "template train: containers main: securityContext.allowPrivilegeEscalation: expected false, found None",
            "template train: containers main: securityContext.capabilities.drop: expected to include ALL",
        ],
    ),
    "privileged-root": (
        _privileged_root,
        [
            "template train: containers main: securityContext.privileged: expected unset or false, found True",
            "template train: containers main: securityContext.runAsUser: expected non-zero, found 0",
            "template train: containers main: securityContext.capabilities.add: expected only NET_BIND_SERVICE",
        ],
    ),
    "unconfined": (
        _unconfined,
        ["template train: spec.securityContext.seccompProfile.type: expected RuntimeDefault or Localhost"],
    ),
    "hostPath": (_host_path, ["template train: spec.volumes[host]: expected one of", "found ['hostPath']"]),
    "host-namespaces": (
        _host_namespaces,
        [
            "template train: spec.hostNetwork: expected unset or false, found True",
            "template train: containers main: ports[].hostPort: expected unset or 0, found 80",
        ],
    ),
    "unknown-field": (_unknown_field, ["template train: Pod schema: spec.containers", "runAsNonRooot"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_document_fails_each_rule_naming_template_and_field(case: str) -> None:
    assert _problems(_round_workflow()) == []
    breaker, expected = BROKEN[case]
    doc = _round_workflow()
    breaker(doc)
    text = "\n".join(_problems(doc))
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    assert "(Pod Security restricted)" in text or "Pod schema" in text


def test_without_the_executor_setting_step_pods_are_refused_and_resource_pods_are_not() -> None:
    """Argo's init/wait containers get no securityContext unless the controller's executor has one:
    the check names them; resource templates' pods are locked down by Argo itself."""
    docs = generated_manifests(make_task(1))
    task = _with_template(docs, Step.PLAN)
    text = "\n".join(_problems(task, executor=None))
    assert "template plan: containers wait: securityContext.allowPrivilegeEscalation: expected false" in text
    assert "template round-workflow" not in text
    assert "template progress" not in text
