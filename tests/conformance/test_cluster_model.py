"""The cluster model (tests/conformance/cluster_model.py): a small valid install passes, each deliberately
broken variant fails its check with a clear message, and the real chart and generated manifests pass."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from edgefed.steps.interface import edge_secret, site_secret
from edgefed.workflows.build import manifests, round_workflow, to_document
from edgefed.workflows.build.deploy import deploy_workflow
from edgefed.workflows.build.names import NODE_LABEL
from edgefed.workflows.build.pods import EDGE_TAINT_TOLERATION
from edgefed.workflows.build.values import settings_from_values, task_from_values
from edgefed.workflows.spec import FederatedTask, load_task
from tests.conformance.cluster_model import (
    check_cloud_placement,
    check_cluster,
    check_edge_isolation,
    check_rbac,
    check_references,
    check_service_accounts,
    resource_name,
)
from tests.conformance.samples import make_task
from tests.helpers import REPO

Doc = dict[str, Any]
OPERATOR_SECRETS = {"edgefed-cloud", *(f(e) for e in ("a", "b") for f in (edge_secret, site_secret))}
AVOID_EDGES = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": NODE_LABEL, "operator": "DoesNotExist"}]}]
        }
    }
}


def _meta(name: str) -> Doc:
    return {"name": name, "namespace": "edgefed"}


def _role(name: str, resources: list[str], verbs: list[str]) -> Doc:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(name),
        "rules": [{"apiGroups": ["argoproj.io"], "resources": resources, "verbs": verbs}],
    }


def _binding(name: str, accounts: list[str]) -> Doc:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": a, "namespace": "edgefed"} for a in accounts],
    }


def chart_docs(*, archive_logs: bool = False) -> list[Doc]:
    """A small chart: three ServiceAccounts, their Roles, the sites and artifact-repositories ConfigMaps."""
    accounts = ["edgefed-driver", "edgefed-cloud", "edgefed-edge"]
    repository = {
        "archiveLogs": archive_logs,
        "s3": {
            "endpoint": "minio:9000",
            "bucket": "artifacts",
            "accessKeySecret": {"name": "edgefed-cloud", "key": "accessKey"},
            "secretKeySecret": {"name": "edgefed-cloud", "key": "secretKey"},
        },
    }
    sites = [
        {"name": e, "node": f"n-{e}", "secret": edge_secret(e), "siteSecret": site_secret(e)} for e in "ab"
    ]
    return [
        *({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(a)} for a in accounts),
        _role("fl-executor", ["workflowtaskresults"], ["create", "patch"]),
        _binding("fl-executor", accounts),
        _role("fl-driver", ["workflows"], ["create", "get"]),
        _binding("fl-driver", ["edgefed-driver"]),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("fl-sites"),
            "data": {"cloudCredentialsSecret": "edgefed-cloud", "edges.json": json.dumps(sites)},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                **_meta("artifact-repositories"),
                "annotations": {"workflows.argoproj.io/default-artifact-repository": "default-v1"},
            },
            "data": {"default-v1": yaml.safe_dump(repository)},
        },
    ]


def _env(secret: str, prefix: str = "") -> list[Doc]:
    return [
        {"name": f"EDGEFED_{prefix}{var}", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for var, key in (("ACCESS_KEY", "accessKey"), ("SECRET_KEY", "secretKey"))
    ]


def workflow() -> Doc:
    """A valid Workflow: a cloud step, a resource step creating a Workflow, an edge fan-out into train."""
    edge = "{{inputs.parameters.edge}}"
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "t1-"},
        "spec": {
            "entrypoint": "main",
            "serviceAccountName": "edgefed-cloud",
            "arguments": {"parameters": [{"name": "edges", "value": json.dumps(["a", "b"])}]},
            "templates": [
                {
                    "name": "main",
                    "dag": {
                        "tasks": [
                            {
                                "name": "edge",
                                "template": "edge",
                                "withParam": "{{workflow.parameters.edges}}",
                                "arguments": {"parameters": [{"name": "edge", "value": "{{item}}"}]},
                            },
                            {"name": "aggregate", "template": "aggregate", "depends": "edge"},
                            {"name": "next", "template": "next", "depends": "aggregate"},
                        ]
                    },
                },
                {
                    "name": "edge",
                    "inputs": {"parameters": [{"name": "edge"}]},
                    "dag": {
                        "tasks": [
                            {
                                "name": "train",
                                "template": "train",
                                "arguments": {"parameters": [{"name": "edge", "value": edge}]},
                            }
                        ]
                    },
                },
                {
                    "name": "train",
                    "serviceAccountName": "edgefed-edge",
                    "inputs": {"parameters": [{"name": "edge"}]},
                    "nodeSelector": {NODE_LABEL: edge},
                    "tolerations": [EDGE_TAINT_TOLERATION],
                    "archiveLocation": {"archiveLogs": False},
                    "container": {
                        "image": "img:1",
                        "env": [*_env(f"edgefed-edge-{edge}"), *_env(f"edgefed-site-{edge}", "SITE_")],
                    },
                },
                {
                    "name": "aggregate",
                    "affinity": AVOID_EDGES,
                    "container": {"image": "img:1", "env": _env("edgefed-cloud")},
                },
                {
                    "name": "next",
                    "serviceAccountName": "edgefed-driver",
                    "affinity": AVOID_EDGES,
                    "resource": {
                        "action": "create",
                        "successCondition": "status.phase == Succeeded",
                        "manifest": "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n"
                        "  generateName: next-\n",
                    },
                },
            ],
        },
    }


def template(doc: Doc, name: str) -> Doc:
    return next(t for t in doc["spec"]["templates"] if t["name"] == name)


def problems(chart: list[Doc], docs: list[Doc]) -> list[str]:
    return check_cluster(chart, docs, operator_secrets=OPERATOR_SECRETS, operator_configmaps=set())


def only(found: list[str], *fragments: str) -> str:
    """The one problem found, which says every fragment."""
    assert len(found) == 1, found
    for fragment in fragments:
        assert fragment in found[0], (fragment, found[0])
    return found[0]


# -- the valid install -------------------------------------------------------------------------------------


def test_valid_install_has_no_problem() -> None:
    assert problems(chart_docs(), [workflow()]) == []


def test_a_template_without_edges_value_expands_with_the_sites() -> None:
    """A WorkflowTemplate whose edges parameter has no value is checked for the chart's sites."""
    doc = workflow()
    doc["kind"] = "WorkflowTemplate"
    doc["metadata"] = {"name": "round"}
    doc["spec"]["arguments"]["parameters"] = [{"name": "edges"}]
    # the sites' items are objects, as the chart's generic template's
    template(doc, "main")["dag"]["tasks"][0]["arguments"]["parameters"][0]["value"] = "{{item.name}}"
    assert problems(chart_docs(), [doc]) == []
    template(doc, "train")["container"]["env"] = _env("edgefed-cloud")
    found = check_edge_isolation(chart_docs(), [doc])
    assert len(found) == 4 and all("a cloud Secret" in p for p in found), found
    assert "(edge 'a')" in found[0] and "(edge 'b')" in found[3]


def test_a_workflow_referencing_a_template_runs_its_templates() -> None:
    base = workflow()
    base["kind"], base["metadata"] = "WorkflowTemplate", {"name": "round"}
    ref = {
        "kind": "Workflow",
        "metadata": {"generateName": "r-"},
        "spec": {"workflowTemplateRef": {"name": "round"}},
    }
    assert problems(chart_docs(), [base, ref]) == []
    ref["spec"]["arguments"] = {"parameters": [{"name": "edges", "value": '["a","c"]'}]}
    found = check_references(
        chart_docs(), [base, ref], operator_secrets=OPERATOR_SECRETS, operator_configmaps=set()
    )
    assert found and all("(edge 'c')" in p and "edgefed-" in p for p in found), found
    missing = check_service_accounts(chart_docs(), [ref])
    only(missing, "workflowTemplateRef", "'round'")


def test_resource_names() -> None:
    assert [resource_name(k) for k in ("Workflow", "Policy", "Ingress", "ConfigMap")] == [
        "workflows",
        "policies",
        "ingresses",
        "configmaps",
    ]


# -- 1. ServiceAccounts ------------------------------------------------------------------------------------


def test_template_with_no_service_account_runs_as_default() -> None:
    doc = workflow()
    del doc["spec"]["serviceAccountName"]
    found = check_service_accounts(chart_docs(), [doc])
    only(found, "template 'aggregate'", "serviceAccountName", "found 'default'")


def test_service_account_not_in_chart() -> None:
    doc = workflow()
    template(doc, "train")["serviceAccountName"] = "edge-sa"
    only(check_service_accounts(chart_docs(), [doc]), "template 'train'", "found 'edge-sa'", "edgefed-edge")


# -- 2. RBAC -----------------------------------------------------------------------------------------------


def test_missing_workflowtaskresults() -> None:
    chart = [d for d in chart_docs() if d["metadata"]["name"] != "fl-executor"]
    found = check_rbac(chart, [workflow()])
    assert len(found) == 3, found
    assert any(
        "template 'train'" in p
        and "'edgefed-edge' may not create argoproj.io/workflowtaskresults, patch argoproj.io/workflowtaskresults"
        in p
        for p in found
    ), found


def test_resource_template_needs_get_to_poll() -> None:
    chart = chart_docs()
    next(d for d in chart if d["metadata"]["name"] == "fl-driver")["rules"][0]["verbs"] = ["create"]
    only(check_rbac(chart, [workflow()]), "template 'next'", "may not get argoproj.io/workflows")


def test_edge_account_may_create_workflows() -> None:
    chart = chart_docs()
    binding = next(d for d in chart if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "fl-driver")
    binding["subjects"].append({"kind": "ServiceAccount", "name": "edgefed-edge", "namespace": "edgefed"})
    only(
        check_rbac(chart, [workflow()]),
        "ServiceAccount 'edgefed-edge'",
        "Role fl-driver",
        "create argoproj.io/workflows",
        "none of its templates (train) need",
    )


def test_wildcard_is_excess() -> None:
    chart = chart_docs()
    next(d for d in chart if d["metadata"]["name"] == "fl-executor")["rules"][0]["verbs"] = ["*"]
    found = check_rbac(chart, [workflow()])
    assert len(found) == 3 and all("grants * argoproj.io/workflowtaskresults" in p for p in found), found


# -- 3. references -----------------------------------------------------------------------------------------


def test_secret_nobody_creates_or_documents() -> None:
    doc = workflow()
    template(doc, "aggregate")["container"]["env"] += _env("forgotten")
    found = check_references(
        chart_docs(), [doc], operator_secrets=OPERATOR_SECRETS, operator_configmaps=set()
    )
    assert len(found) == 2, found
    assert "template 'aggregate': container.env[2].valueFrom.secretKeyRef: expected a Secret" in found[0]
    assert "found 'forgotten'" in found[0]


def test_configmaps_and_pull_secrets_are_references_too() -> None:
    doc = workflow()
    doc["spec"]["imagePullSecrets"] = [{"name": "registry"}]
    doc["spec"]["artifactRepositoryRef"] = {"configMap": "repos", "key": "k"}
    found = check_references(
        chart_docs(), [doc], operator_secrets=OPERATOR_SECRETS, operator_configmaps={"repos"}
    )
    assert found and all("spec.imagePullSecrets[0]" in p and "found 'registry'" in p for p in found), found
    found = check_references(
        chart_docs(), [doc], operator_secrets={*OPERATOR_SECRETS, "registry"}, operator_configmaps=set()
    )
    assert found and all("spec.artifactRepositoryRef.configMap" in p for p in found), found


# -- 4. edge pods ------------------------------------------------------------------------------------------


def test_train_referencing_the_cloud_secret() -> None:
    doc = workflow()
    template(doc, "train")["container"]["env"] += _env("edgefed-cloud")
    found = check_edge_isolation(chart_docs(), [doc])
    assert len(found) == 4, found
    assert "template 'train' (edge 'a'): container.env[4].valueFrom.secretKeyRef" in found[0]
    assert "found 'edgefed-cloud': a cloud Secret" in found[0]


def test_train_referencing_another_edges_secret_through_a_bad_item() -> None:
    doc = workflow()
    doc["spec"]["arguments"]["parameters"][0]["value"] = json.dumps(
        [{"name": "a", "secret": edge_secret("b")}, {"name": "b", "secret": edge_secret("b")}]
    )
    for t in ("edge", "train"):
        template(doc, t)["inputs"]["parameters"].append({"name": "secret"})
    forward = {"name": "secret", "value": "{{inputs.parameters.secret}}"}
    template(doc, "edge")["dag"]["tasks"][0]["arguments"]["parameters"].append(forward)
    main = template(doc, "main")["dag"]["tasks"][0]["arguments"]["parameters"]
    main[:] = [{"name": "edge", "value": "{{item.name}}"}, {"name": "secret", "value": "{{item.secret}}"}]
    template(doc, "train")["container"]["env"][:2] = _env("{{inputs.parameters.secret}}")
    found = check_edge_isolation(chart_docs(), [doc])
    assert len(found) == 2, found  # accessKey and secretKey
    assert "(edge 'a'): container.env[0].valueFrom.secretKeyRef: expected ['edgefed-site-a']" in found[0]
    assert "found 'edgefed-edge-b': edge 'b''s Secret" in found[0]


def test_edge_label_value_mismatch() -> None:
    doc = workflow()
    template(doc, "train")["nodeSelector"] = {NODE_LABEL: "b"}
    only(
        check_edge_isolation(chart_docs(), [doc]),
        "template 'train' (edge 'a')",
        f"nodeSelector {NODE_LABEL}: expected the edge's name 'a', found 'b'",
    )


def test_archived_logs_mount_the_artifact_secret_into_edge_pods() -> None:
    doc = workflow()
    del template(doc, "train")["archiveLocation"]
    found = check_edge_isolation(chart_docs(archive_logs=True), [doc])
    assert len(found) == 2 and all("archiveLocation.archiveLogs: expected false" in p for p in found), found
    assert "ConfigMap artifact-repositories key default-v1" in found[0]
    assert check_edge_isolation(chart_docs(archive_logs=False), [doc]) == []


# -- 5. cloud pods -----------------------------------------------------------------------------------------


def test_aggregate_without_does_not_exist_affinity() -> None:
    doc = workflow()
    del template(doc, "aggregate")["affinity"]
    only(
        check_cloud_placement(chart_docs(), [doc]),
        "template 'aggregate': spec.affinity.nodeAffinity",
        "DoesNotExist",
        "found no required nodeSelectorTerms",
    )


def test_one_term_without_does_not_exist_is_enough_to_land_on_an_edge() -> None:
    doc = workflow()
    affinity = copy.deepcopy(AVOID_EDGES)
    affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"].append(
        {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}
    )
    template(doc, "aggregate")["affinity"] = affinity
    only(
        check_cloud_placement(chart_docs(), [doc]), "template 'aggregate'", "nodeSelectorTerms [1] without it"
    )


def test_cloud_template_tolerating_the_edge_taint() -> None:
    doc = workflow()
    template(doc, "next")["tolerations"] = [{"key": EDGE_TAINT_TOLERATION["key"], "operator": "Exists"}]
    only(
        check_cloud_placement(chart_docs(), [doc]),
        "template 'next': tolerations",
        "node-role.kubernetes.io/edge",
    )


# -- the real chart and manifests --------------------------------------------------------------------------


def _rendered(values: dict[str, Any]) -> list[Doc]:
    from tests.packaging.test_chart import manifests as chart_manifests
    from tests.packaging.test_chart import render

    return chart_manifests(render(values))


def _operator(chart: list[Doc], task: FederatedTask | None = None) -> tuple[set[str], set[str]]:
    """What the operator is told to create: the sites ConfigMap's Secrets (store identities, image pull)
    and CA ConfigMap, and the task's CA ConfigMap."""
    secrets: set[str] = set()
    configmaps: set[str] = set()
    for doc in chart:
        data = doc.get("data") or {}
        if doc["kind"] == "ConfigMap" and "edges.json" in data:
            secrets.add(data["cloudCredentialsSecret"])
            secrets.update(json.loads(data.get("imagePullSecrets") or "[]"))
            if data.get("caConfigMap"):
                configmaps.add(data["caConfigMap"])
            for edge in json.loads(data["edges.json"]):
                secrets.update(v for k, v in edge.items() if k in ("secret", "siteSecret"))
    store = task.spec.store if task is not None else None
    if store is not None and getattr(store, "ca_config_map", None):
        configmaps.add(store.ca_config_map)
    return secrets, configmaps


def _values_for(task: FederatedTask) -> dict[str, Any]:
    edges = []
    for edge in task.spec.edges:
        item: dict[str, Any] = {"name": edge.name, "node": f"node-{edge.name}"}
        if edge.credentials_secret:
            item["credentialsSecret"] = edge.credentials_secret
        if edge.site_credentials_secret:
            item["siteCredentialsSecret"] = edge.site_credentials_secret
        edges.append(item)
    return {"edges": edges, "cloud": {"credentialsSecret": task.spec.cloud_credentials_secret}}


@pytest.mark.parametrize("values_name", ["default", "four-edges"])
def test_the_example_generated_with_the_charts_values_passes(values_name: str) -> None:
    """``edgefed generate --values V`` of the example and ``helm install -f V``: a cluster admits and runs
    every pod under its least-privilege identity, edge pods see only their own site's Secrets."""
    from tests.packaging.test_chart import four_edges_values

    values = {} if values_name == "default" else four_edges_values()
    task = load_task(REPO / "examples" / "heart-demo.yaml")
    if not values:
        values = _values_for(task)
        for edge, item in zip(task.spec.edges, values["edges"], strict=True):
            item["node"] = edge.node
    task = task_from_values(task, values)
    settings = settings_from_values(values)
    chart = _rendered(values)
    secrets, configmaps = _operator(chart, task)
    argo = [
        *manifests(task, cron=True, settings=settings).values(),
        to_document(round_workflow(task, task.spec.last_round, evaluate=True, settings=settings)),
        to_document(deploy_workflow(task, task.spec.last_round, settings=settings)),
    ]
    assert check_cluster(chart, argo, operator_secrets=secrets, operator_configmaps=configmaps) == []


def test_manifests_generated_for_other_service_accounts_fail_against_the_default_chart() -> None:
    """The chart and the manifests must agree: generated with the four-edges values, checked against a
    chart installed with the defaults, every pod names a ServiceAccount the chart does not create."""
    from tests.packaging.test_chart import four_edges_values

    values = four_edges_values()
    task = task_from_values(load_task(REPO / "examples" / "heart-demo.yaml"), values)
    chart = _rendered({"edges": values["edges"], "cloud": values["cloud"]})
    secrets, configmaps = _operator(chart, task)
    argo = list(manifests(task, settings=settings_from_values(values)).values())
    problems = check_cluster(chart, argo, operator_secrets=secrets, operator_configmaps=configmaps)
    assert any("found 'fl-edge'" in p for p in problems), problems[:5]
    assert any("found 'fl-driver'" in p for p in problems), problems[:5]


@pytest.mark.parametrize(
    ("edges", "custom"), [(1, False), (10, False), (3, True)], ids=["1", "10", "3-custom"]
)
def test_generated_manifests_pass(edges: int, custom: bool) -> None:
    task = make_task(edges, custom=custom)
    chart = _rendered(_values_for(task))
    secrets, configmaps = _operator(chart, task)
    argo = [
        *manifests(task, cron=True).values(),
        to_document(round_workflow(task, task.spec.last_round, evaluate=True)),
        to_document(deploy_workflow(task, task.spec.last_round)),
        *(d for d in chart if d["apiVersion"].startswith("argoproj.io/")),
    ]
    assert check_cluster(chart, argo, operator_secrets=secrets, operator_configmaps=configmaps) == []
