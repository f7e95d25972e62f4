"""The Helm chart ``charts/edgefed``: linted, rendered and every manifest validated, all offline.

* Rendering and linting use ``helm-python-sdk`` (Helm v4's Go SDK through its C ABI: no helm binary).
* Core manifests (ServiceAccount, Role, RoleBinding, ConfigMap) are validated with ``kubernetes-validate``
  in strict mode (unknown fields fail) against Kubernetes :data:`KUBE_VERSION`.
* The chart and the manifests agree by construction: its defaults are the spec's and the cluster
  settings' defaults, and ``edgefed generate --values`` reads the same values (checked here and by the
  cluster model in tests/conformance/test_cluster_model.py).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from hera.workflows import models as hera_models

from edgefed.workflows.build import DEFAULT_SETTINGS, ServiceAccounts
from edgefed.workflows.build.pods import EXECUTOR_SECURITY_CONTEXT
from edgefed.workflows.spec import DEFAULT_IMAGE, CloudStoreSpec, FederatedTaskSpec, SiteStoreSpec
from tests.conformance import default_schemas_dir, find_schemas
from tests.conformance.hera_schema import model_validator
from tests.helpers import REPO, under_ci

CHART = REPO / "charts" / "edgefed"
FOUR_EDGES_VALUES = CHART / "ci" / "four-edges-values.yaml"
#: A version kubernetes-validate ships strict schemas for, and the oldest minor the chart is meant for in
#: practice (Chart.yaml says >=1.25; 1.30 is the oldest still maintained by the main distributions).
KUBE_VERSION = "1.30.0"
RELEASE = "fl"
NAMESPACE = "edgefed"
ROLES = ("driver", "cloud", "edge")


# -- rendering ---------------------------------------------------------------------------------------------


def four_edges_values() -> dict[str, Any]:
    # values_from_yaml parses the file the way `helm -f` does (Go YAML, not PyYAML).
    return helm.values_from_yaml(FOUR_EDGES_VALUES.read_text())


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Rendered templates by path (``edgefed/templates/x.yaml``), as ``helm template`` would render them."""
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every object of the rendered templates (NOTES.txt is text, not manifests)."""
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


@dataclass(frozen=True)
class Case:
    """One rendering of the chart: the values given and what came out."""

    name: str
    values: dict[str, Any]
    rendered: dict[str, str]


@pytest.fixture(scope="module", params=["default", "four-edges"])
def case(request: pytest.FixtureRequest) -> Case:
    values = {} if request.param == "default" else four_edges_values()
    return Case(request.param, values, render(values))


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("values_name", ["default", "four-edges"])
def test_lint_clean(values_name: str) -> None:
    values = None if values_name == "default" else four_edges_values()
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == []
    # severity 1 is INFO (e.g. "icon is recommended"); 2 is WARNING, 3 ERROR.
    findings = [m for m in report["messages"] if m["severity"] >= 2]
    assert findings == []


def test_renders_the_expected_objects(case: Case) -> None:
    rendered = case.rendered
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in manifests(rendered))
    accounts = _accounts(case.values)
    assert kinds == sorted(
        [
            ("ConfigMap", "artifact-repositories"),
            ("ConfigMap", f"{RELEASE}-edgefed-sites"),
            ("Role", f"{RELEASE}-edgefed-executor"),
            ("Role", f"{RELEASE}-edgefed-driver"),
            ("RoleBinding", f"{RELEASE}-edgefed-executor"),
            ("RoleBinding", f"{RELEASE}-edgefed-driver"),
            *(("ServiceAccount", accounts[role]) for role in ROLES),
        ]
    )


def _accounts(values: dict[str, Any]) -> dict[str, str]:
    merged = _merged(values)
    return {role: merged["serviceAccounts"][role]["name"] for role in ROLES}


def test_core_manifests_are_valid_kubernetes(case: Case) -> None:
    rendered = case.rendered
    core = [d for d in manifests(rendered) if not d["apiVersion"].startswith("argoproj.io/")]
    assert {d["kind"] for d in core} == {"ServiceAccount", "Role", "RoleBinding", "ConfigMap"}
    for doc in core:
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            where = ".".join(str(p) for p in err.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {err.message}")


def test_objects_are_wired_together(case: Case) -> None:
    values, rendered = case.values, case.rendered
    docs = manifests(rendered)
    merged = _merged(values)
    with helm.Chart.load(CHART) as chart:
        version, app_version = chart.version, chart.metadata["appVersion"]
    for doc in docs:
        meta = doc["metadata"]
        assert meta["namespace"] == NAMESPACE
        labels = meta["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["helm.sh/chart"] == f"edgefed-{version}"
        assert labels["app.kubernetes.io/version"] == app_version
        assert labels.items() >= merged["commonLabels"].items()

    accounts = {a["metadata"]["labels"]["edgefed.io/role"]: a for a in by_kind(docs, "ServiceAccount")}
    assert {role: a["metadata"]["name"] for role, a in accounts.items()} == _accounts(values)
    assert all(a["automountServiceAccountToken"] is True for a in accounts.values())
    roles = {r["metadata"]["name"].rsplit("-", 1)[1]: r for r in by_kind(docs, "Role")}
    bindings = {b["metadata"]["name"].rsplit("-", 1)[1]: b for b in by_kind(docs, "RoleBinding")}
    assert roles["executor"]["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
    ]
    # the task Workflow's resource steps: create the rounds, read them, patch the task's progress
    assert roles["driver"]["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "get", "patch"]}
    ]

    def subject(role: str) -> dict[str, str]:
        return {"kind": "ServiceAccount", "name": accounts[role]["metadata"]["name"], "namespace": NAMESPACE}

    assert bindings["executor"]["subjects"] == [subject(role) for role in ROLES]
    assert bindings["driver"]["subjects"] == [subject("driver")]  # the only one that may touch Workflows
    for kind, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[kind]["metadata"]["name"],
        }

    cloud = merged["cloud"]["credentialsSecret"]
    sites = next(d for d in docs if d["metadata"]["name"].endswith("-sites"))
    store, site = merged["store"], merged["siteStore"]
    assert sites["data"]["cloudCredentialsSecret"] == cloud
    assert sites["data"]["store"] == f"{'https' if store['secure'] else 'http'}://{store['endpoint']}"
    assert sites["data"]["siteStore"] == f"https://$(EDGEFED_NODE_IP):{site['port']}"
    assert sites["data"]["caConfigMap"] == store["caConfigMap"]
    assert json.loads(sites["data"]["edges.json"]) == [
        {
            "name": e["name"],
            "node": e["node"],
            "secret": e.get("credentialsSecret", f"edgefed-edge-{e['name']}"),
            "siteSecret": e.get("siteCredentialsSecret", f"edgefed-site-{e['name']}"),
        }
        for e in merged["edges"]
    ]
    if case.name == "four-edges":
        assert len(merged["edges"]) == 4


def test_the_charts_defaults_are_the_manifests_defaults() -> None:
    """Manifests generated without --values name what the chart creates with its default values."""
    with helm.Chart.load(CHART) as chart:
        values = chart.values
    assert ServiceAccounts(**{role: values["serviceAccounts"][role]["name"] for role in ROLES}) == (
        DEFAULT_SETTINGS.service_accounts
    )
    store, site = CloudStoreSpec(), SiteStoreSpec()
    assert (values["store"]["endpoint"], values["store"]["secure"]) == (store.endpoint, store.secure)
    assert (values["store"]["caConfigMap"] or None) == store.ca_config_map
    assert (values["siteStore"]["port"], values["siteStore"]["secure"]) == (site.port, site.secure)
    for role, resources in (
        ("edge", DEFAULT_SETTINGS.edge_resources),
        ("cloud", DEFAULT_SETTINGS.cloud_resources),
    ):
        assert values["resources"][role] == asdict(resources), role
    assert values["imagePullSecrets"] == list(DEFAULT_SETTINGS.image_pull_secrets)


def test_notes_say_what_the_operator_does(case: Case) -> None:
    notes = next(text for path, text in case.rendered.items() if path.endswith("NOTES.txt"))
    merged = _merged(case.values)
    for edge in merged["edges"]:
        assert (
            f"kubectl label node {edge['node']} node-restriction.kubernetes.io/edgefed-edge={edge['name']}"
            in notes
        )
        assert edge.get("siteCredentialsSecret", f"edgefed-site-{edge['name']}") in notes
    # the executor securityContext to set in the workflow-controller ConfigMap is the builder's
    block = notes.split("  executor:\n", 1)[1].split("\n\n", 1)[0]
    assert yaml.safe_load("executor:\n" + block) == {
        "executor": {"securityContext": EXECUTOR_SECURITY_CONTEXT}
    }


def _merged(values: dict[str, Any]) -> dict[str, Any]:
    with helm.Chart.load(CHART) as chart:
        return chart.merge_values(values)


def test_artifact_repository_config_map(case: Case) -> None:
    values, rendered = case.values, case.rendered
    merged = _merged(values)
    (config_map,) = [d for d in manifests(rendered) if d["metadata"]["name"] == "artifact-repositories"]
    annotation = config_map["metadata"]["annotations"]["workflows.argoproj.io/default-artifact-repository"]
    repository = yaml.safe_load(config_map["data"][annotation])
    cloud = merged["cloud"]["credentialsSecret"]
    assert repository["s3"] == {
        "endpoint": merged["store"]["endpoint"],
        "bucket": merged["artifactRepository"]["bucket"],
        "insecure": not merged["store"]["secure"],
        "accessKeySecret": {"name": cloud, "key": "accessKey"},
        "secretKeySecret": {"name": cloud, "key": "secretKey"},
    }
    _check_closed(repository, "io.argoproj.workflow.v1alpha1.ArtifactRepository")


def _check_closed(value: Any, definition: str) -> None:
    """``value`` against Argo's API with every object closed: Argo parses the ConfigMap's payload itself,
    so the API server never sees it and a misspelled key would be silently ignored. Checked against
    Hera's model of it and against Argo v4.1.2's schema.json (vendored with the tests)."""
    model = getattr(hera_models, definition.rsplit(".", 1)[-1])
    assert [e.message for e in model_validator(model).iter_errors(value)] == []
    schemas = find_schemas()  # the vendored v4.1.2 copy unless EDGEFED_ARGO_SCHEMAS names another
    if schemas is None:
        if under_ci():
            pytest.fail(
                f"Argo v4.1.2 schemas unavailable at {default_schemas_dir()}; under CI this check must run"
            )
        return  # an empty EDGEFED_ARGO_SCHEMAS: Hera's model only (the conformance tests name the gap)
    definitions = schemas.schema_json["definitions"]

    def walk(node: Any, schema: dict[str, Any], where: str) -> Iterator[str]:
        while "$ref" in schema:
            schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
        properties = schema.get("properties")
        if isinstance(node, dict) and properties is not None:
            for key, child in node.items():
                if key not in properties:
                    yield f"{where}.{key}: unknown field"
                else:
                    yield from walk(child, properties[key], f"{where}.{key}")
        elif schema.get("type") in ("string", "boolean") and not isinstance(node, str | bool):
            yield f"{where}: expected {schema['type']}"

    problems = list(walk(value, definitions[definition], "data"))
    assert problems == []


# -- values validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "exception", "message"),
    [
        ({"imagee": {"tag": "1"}}, helm.HelmValuesError, "additional properties 'imagee' not allowed"),
        ({"image": {"tag": 3}}, helm.HelmValuesError, "at '/image/tag': got number, want string"),
        (
            {"store": {"secure": "yes"}},
            helm.HelmValuesError,
            "at '/store/secure': got string, want boolean",
        ),
        ({"store": {"insecure": True}}, helm.HelmValuesError, "additional properties 'insecure' not allowed"),
        ({"rbac": {"task": True}}, helm.HelmValuesError, "additional properties 'task' not allowed"),
        ({"serviceAccount": {"name": "x"}}, helm.HelmValuesError, "additional properties 'serviceAccount'"),
        (
            {"resources": {"edge": {"requests": {"gpu": "1"}}}},
            helm.HelmValuesError,
            "/resources/edge/requests",
        ),
        ({"store": {"endpoint": "http://minio:9000"}}, helm.HelmValuesError, "at '/store/endpoint'"),
        ({"edges": [{"name": "a"}]}, helm.HelmValuesError, "missing property 'node'"),
        ({"edges": [{"name": "Bad_Name", "node": "n"}]}, helm.HelmValuesError, "at '/edges/0/name'"),
        (
            {"edges": [{"name": "a", "node": "n", "secret": "s"}]},
            helm.HelmValuesError,
            "'secret' not allowed",
        ),
        (
            {"edges": [{"name": "a", "node": "n1"}, {"name": "a", "node": "n2"}]},
            helm.HelmRenderError,
            'edges[1].name "a" is a duplicate of edges[0].name',
        ),
    ],
)
def test_bad_values_fail_rendering_with_a_clear_message(
    values: dict[str, Any], exception: type[helm.HelmError], message: str
) -> None:
    with pytest.raises(exception) as raised:
        render(values)
    assert message in str(raised.value)
    if exception is helm.HelmValuesError:  # the same check, without rendering
        with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
            chart.validate_schema(values)


def test_optional_objects_can_be_left_out() -> None:
    values = {
        "serviceAccounts": {"create": False},
        "rbac": {"create": False},
        "artifactRepository": {"create": False},
    }
    docs = manifests(render(values))
    assert sorted(d["kind"] for d in docs) == ["ConfigMap"]


# -- the joint inference service ---------------------------------------------------------------------------

_HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version")


@pytest.mark.parametrize("values_name", ["default", "four-edges"])
def test_serving_renders_what_serve_generate_writes(values_name: str, tmp_path) -> None:
    """With serving.enabled the chart renders the inference Deployments and Services `edgefed serve generate
    --values` writes for the same task: the same objects, field for field, but the chart's own labels."""
    from edgefed.workflows.build.serving import serving_manifests
    from edgefed.workflows.build.values import settings_from_values, task_from_values
    from edgefed.workflows.spec import load_task

    values = {} if values_name == "default" else four_edges_values()
    task = load_task(REPO / "examples" / "heart-demo.yaml")
    if values_name == "default":  # the chart lists no edge by default: the example's, with their nodes
        values["edges"] = [{"name": e.name, "node": f"edge-{e.name}"} for e in task.spec.edges]
    values["serving"] = {"enabled": True, "task": task.name, "rule": "margin", "threshold": 0.25}
    rendered = [
        d
        for d in manifests(render(values))
        if d["metadata"]["labels"].get("edgefed.io/component", "").startswith("inference")
    ]
    merged = _merged(values)
    expected = serving_manifests(
        task_from_values(task, merged),
        rule="margin",
        threshold=0.25,
        namespace=NAMESPACE,
        settings=settings_from_values(merged),
    )
    assert len(rendered) == len(expected) == 2 * (len(task.spec.edges) + 1)
    for doc in rendered:
        labels = doc["metadata"]["labels"]
        assert (
            labels["app.kubernetes.io/managed-by"] == "Helm"
            and labels["app.kubernetes.io/part-of"] == "edgefed"
        )
        doc["metadata"]["labels"] = {k: v for k, v in labels.items() if k.startswith("edgefed.io/")}
        name = f"{doc['metadata']['name']}-{doc['kind'].lower()}.yaml"
        assert doc == expected.pop(name), name
    assert expected == {}
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
    for doc in rendered:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_serving_needs_a_task() -> None:
    with pytest.raises(helm.HelmRenderError, match=r"serving\.task is required"):
        render({"serving": {"enabled": True}, "edges": [{"name": "a", "node": "n"}]})


# -- no credentials ----------------------------------------------------------------------------------------

_CREDENTIAL_KEY = re.compile(r"pass(word|wd)?|secret|token|access.?key|credential|private.?key", re.I)
_CREDENTIAL_TEXT = [
    re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"),  # AWS-style access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"minioadmin|\bminio123\b", re.I),  # MinIO's well-known defaults
    re.compile(r"--from-literal=\S*(key|secret|password)", re.I),  # a how-to that invites typed secrets
]
# long runs of base64/hex characters with upper, lower case and digits: keys, tokens, hashes of them
_HIGH_ENTROPY = re.compile(r"[A-Za-z0-9+/=_]{32,}")


def credential_findings(rendered: dict[str, str], secret_names: set[str]) -> list[str]:
    """What in the rendered chart looks like a credential. Secret *names* (``secret_names``) are fine."""
    findings = []
    for path, text in rendered.items():
        for pattern in _CREDENTIAL_TEXT:
            findings += [f"{path}: {m.group(0)!r}" for m in pattern.finditer(text)]
        for token in _HIGH_ENTROPY.findall(text):
            if re.search(r"[a-z]", token) and re.search(r"[A-Z]", token) and re.search(r"\d", token):
                findings.append(f"{path}: high-entropy string {token[:6]}...")
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            if doc.get("kind") == "Secret":
                findings.append(f"{path}: a Secret object")
            findings += [f"{path}: {where}" for where in _credential_fields(doc, secret_names, doc["kind"])]
    return findings


def _credential_fields(node: Any, secret_names: set[str], where: str) -> Iterator[str]:
    """Fields named like credentials whose value is a literal other than a known Secret's name."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        here = f"{where}.{key}"
        if isinstance(value, dict | list):
            yield from _credential_fields(value, secret_names, here)
        elif (
            isinstance(value, str)
            and _CREDENTIAL_KEY.search(str(key))
            and not _names_only(value, secret_names)
        ):
            yield f"{here} = {value!r}"


def _names_only(value: str, secret_names: set[str]) -> bool:
    """``value`` is a known Secret's name, or a JSON list of them (the sites ConfigMap's pull Secrets)."""
    if value in secret_names:
        return True
    try:
        names = json.loads(value)
    except ValueError:
        return False
    return isinstance(names, list) and all(isinstance(n, str) and n in secret_names for n in names)


def _secret_names(values: dict[str, Any]) -> set[str]:
    merged = _merged(values)
    names = {merged["cloud"]["credentialsSecret"]}
    names |= {e.get("credentialsSecret", f"edgefed-edge-{e['name']}") for e in merged["edges"]}
    names |= {e.get("siteCredentialsSecret", f"edgefed-site-{e['name']}") for e in merged["edges"]}
    names |= set(merged["imagePullSecrets"])
    return names


def test_rendered_chart_holds_no_credentials(case: Case) -> None:
    values, rendered = case.values, case.rendered
    assert credential_findings(rendered, _secret_names(values)) == []


def test_credential_scan_catches_a_planted_key() -> None:
    """The scan is only worth something if it fires: plant credentials through values and look."""
    fake_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"  # AWS's documentation example
    fake_id = "AKIA" + "IOSFODNN7EXAMPLE"
    values = {
        "serviceAccounts": {
            "edge": {"name": "edgefed-edge", "annotations": {"example.org/secretKey": fake_secret}}
        },
        "commonLabels": {"owner": fake_id},
    }
    findings = credential_findings(render(values), _secret_names(values))
    text = "\n".join(findings)
    assert "example.org/secretKey" in text
    assert "AKIA" in text
    assert "high-entropy" in text


def test_chart_versions_follow_the_project() -> None:
    """appVersion is the project's version, and the default image is the builder's default image."""
    with helm.Chart.load(CHART) as chart:
        metadata, values = chart.metadata, chart.values
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert metadata["apiVersion"] == "v2"
    assert metadata["appVersion"] == project["version"]
    assert f"{values['image']['repository']}:{metadata['appVersion']}" == DEFAULT_IMAGE
    assert (
        values["cloud"]["credentialsSecret"]
        == FederatedTaskSpec.model_fields["cloud_credentials_secret"].default
    )


def test_the_artifact_repository_check_refuses_a_misspelled_key() -> None:
    validator = model_validator(hera_models.ArtifactRepository)
    assert not list(
        validator.iter_errors({"s3": {"endpoint": "minio:9000", "bucket": "b", "insecure": True}})
    )
    errors = [e.message for e in validator.iter_errors({"s3": {"endpiont": "minio:9000", "bucket": "b"}})]
    assert any("endpiont" in e for e in errors), errors


# -- the site stores (siteStore.deploy) --------------------------------------------------------------------

SITES = {
    "siteStore": {"deploy": True, "namespace": "edgefed-sites"},
    "edges": [{"name": "a", "node": "node-a"}, {"name": "b", "node": "node-b"}],
}


def test_each_edge_can_have_its_own_store_on_its_node() -> None:
    docs = manifests(render(SITES))
    deployments = {d["metadata"]["labels"]["edgefed.io/site"]: d for d in by_kind(docs, "Deployment")}
    assert sorted(deployments) == ["a", "b"]
    for edge, deployment in deployments.items():
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)
        assert deployment["metadata"]["namespace"] == "edgefed-sites"
        pod = deployment["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"node-restriction.kubernetes.io/edgefed-edge": edge}
        (container,) = pod["containers"]
        assert container["ports"][0]["hostPort"] == 9000  # what https://$(EDGEFED_NODE_IP):9000 reaches
        assert (
            pod["securityContext"]["runAsNonRoot"] is True
            and container["securityContext"]["readOnlyRootFilesystem"]
        )
        assert pod["automountServiceAccountToken"] is False
        # each site's pod holds only its own root and TLS Secrets
        secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]}
        secrets |= {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert secrets == {f"edgefed-site-root-{edge}", f"edgefed-site-tls-{edge}"}


@pytest.mark.parametrize(
    ("site_store", "message"),
    [
        ({"deploy": True}, "siteStore.namespace is required when siteStore.deploy is true"),
        (
            {"deploy": True, "namespace": NAMESPACE},
            f'siteStore.namespace "{NAMESPACE}" is the release namespace',
        ),
    ],
)
def test_site_stores_never_share_the_workflows_namespace(site_store: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=re.escape(message)):
        render({**SITES, "siteStore": site_store})
