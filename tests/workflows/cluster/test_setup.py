"""``edgefed cluster setup`` against a loopback stand-in of the Kubernetes API (real HTTP, real client)."""

from __future__ import annotations

import base64
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from edgefed.workflows.build.names import NODE_LABEL
from edgefed.workflows.cli.app import app
from tests.helpers import task_doc, write_task
from tests.workflows.cluster.k8s_api import ALL_RIGHTS, KubeAPI, kube_api, write_kubeconfig

NS = "fl"
IDENTITIES = ("cloud", "edge-a", "site-a", "edge-b", "site-b")


@pytest.fixture
def api() -> Iterator[KubeAPI]:
    reader = frozenset(r for r in ALL_RIGHTS if r[1] != "secrets") | {("get", "secrets")}
    with kube_api({"admin": ALL_RIGHTS, "no-secrets": reader}) as server:
        for edge in ("a", "b"):
            server.add("nodes", {"metadata": {"name": f"node-{edge}", "labels": {}}})
        for account in ("edgefed-driver", "edgefed-cloud", "edgefed-edge"):
            server.add("serviceaccounts", {"metadata": {"name": account}}, NS)
        for template in ("setup-t-round", "setup-t-task"):
            server.add("workflowtemplates", {"metadata": {"name": template}, "spec": {}}, NS)
        yield server


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    doc = task_doc("setup-t", ("a", "b"))
    for edge in doc["spec"]["edges"]:
        edge["node"] = f"node-{edge['name']}"
    doc["spec"]["edges"][1]["siteCredentialsSecret"] = "b-site-keys"
    return write_task(tmp_path / "task.yaml", doc)


def _keys(tag: str = "") -> dict[str, dict[str, str]]:
    return {
        i: {"accessKey": f"AK{i.upper().replace('-', '')}{tag}", "secretKey": f"sk-{i}-very-secret{tag}"}
        for i in IDENTITIES
    }


def _credentials(tmp_path: Path, keys: dict[str, Any], name: str = "creds.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(keys))
    return path


def setup(api: KubeAPI, tmp_path: Path, *args: str, token: str = "admin") -> Any:
    kubeconfig = write_kubeconfig(tmp_path / f"kubeconfig-{token}", api.url, token, namespace=NS)
    return CliRunner().invoke(
        app, ["cluster", "setup", *args, "--kubeconfig", str(kubeconfig)], env={"COLUMNS": "250"}
    )


def _secret(api: KubeAPI, name: str) -> dict[str, str]:
    obj = api.get("secrets", name, NS)
    assert obj is not None, f"Secret {name} was not created"
    return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}


def _no_secret_key(output: str, keys: dict[str, dict[str, str]]) -> None:
    leaked = [i for i, pair in keys.items() if pair["secretKey"] in output]
    assert leaked == [], f"secret keys of {leaked} printed"


def test_setup_creates_the_secrets_labels_the_nodes_then_finds_everything_unchanged(api, tmp_path, task_file):
    keys = _keys()
    creds = _credentials(tmp_path, keys)
    result = setup(api, tmp_path, str(task_file), "--credentials", str(creds))
    assert result.exit_code == 0, result.output
    assert _secret(api, "edgefed-cloud") == keys["cloud"]
    assert _secret(api, "edgefed-edge-a") == keys["edge-a"]
    assert _secret(api, "edgefed-site-a") == keys["site-a"]
    assert _secret(api, "edgefed-edge-b") == keys["edge-b"]
    assert _secret(api, "b-site-keys") == keys["site-b"]
    assert api.get("secrets", "edgefed-cloud", NS)["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "edgefed"
    }
    assert api.get("nodes", "node-a")["metadata"]["labels"] == {NODE_LABEL: "a"}
    assert api.get("nodes", "node-b")["metadata"]["labels"] == {NODE_LABEL: "b"}
    assert result.output.count("created") == 5 and result.output.count("labelled") == 2
    _no_secret_key(result.output, keys)

    seen = len(api.requests)
    again = setup(api, tmp_path, str(task_file), "--credentials", str(creds))
    assert again.exit_code == 0, again.output
    assert "created" not in again.output and again.output.count("unchanged") == 7  # 5 Secrets, 2 nodes
    assert [r for r in api.requests[seen:] if r[0] != "GET"] == []


def test_a_changed_credential_replaces_its_secret_only(api, tmp_path, task_file):
    keys = _keys()
    setup(api, tmp_path, str(task_file), "--credentials", str(_credentials(tmp_path, keys)))
    version = api.get("secrets", "edgefed-edge-a", NS)["metadata"]["resourceVersion"]
    keys["edge-a"]["secretKey"] = "rotated-secret-key-of-edge-a"
    result = setup(
        api, tmp_path, str(task_file), "--credentials", str(_credentials(tmp_path, keys, "new.yaml"))
    )
    assert result.exit_code == 0, result.output
    assert _secret(api, "edgefed-edge-a")["secretKey"] == "rotated-secret-key-of-edge-a"
    assert api.get("secrets", "edgefed-edge-a", NS)["metadata"]["resourceVersion"] != version
    assert result.output.count("updated") == 1 and result.output.count("unchanged") == 6
    _no_secret_key(result.output, keys)


def test_what_the_cluster_lacks_is_named_and_the_rest_is_still_done(api, tmp_path, task_file):
    del api.objects[("nodes", "", "node-b")]
    api.add(
        "nodes",
        {
            "metadata": {"name": "node-a", "labels": {NODE_LABEL: "b"}},
            "spec": {
                "taints": [
                    {
                        "key": "node-role.kubernetes.io/edge",
                        "effect": "NoSchedule",
                    },  # tolerated by every edge step
                    {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                ]
            },
        },
    )
    del api.objects[("serviceaccounts", NS, "edgefed-edge")]
    del api.objects[("workflowtemplates", NS, "setup-t-task")]
    result = setup(api, tmp_path, str(task_file), "--credentials", str(_credentials(tmp_path, _keys())))
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "node-b" in out and "missing" in out and "edge b: no such node" in out
    assert f"{NODE_LABEL}=a (was b)" in out and "relabelled" in out
    assert "taint dedicated=gpu:NoSchedule: edge a's pods cannot run there" in out
    assert "taint node-role.kubernetes.io/edge" not in out  # the common edge taint is tolerated
    assert "edgefed-edge" in out and "install the chart" in out
    assert "setup-t-task" in out and "setup-t-task-template.yaml" in out
    assert "4 problem(s)" in out
    assert _secret(api, "edgefed-site-a")  # the Secrets were still made
    assert api.get("nodes", "node-a")["metadata"]["labels"] == {NODE_LABEL: "a"}


def test_a_refused_request_names_the_object_and_the_apis_message(api, tmp_path, task_file):
    result = setup(
        api,
        tmp_path,
        str(task_file),
        "--credentials",
        str(_credentials(tmp_path, _keys())),
        token="no-secrets",
    )
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert (
        'create: 403 secrets is forbidden: User "system:serviceaccount:edgefed:setup" cannot create resource'
        in out
    )
    assert "Traceback" not in result.output
    assert api.get("secrets", "edgefed-cloud", NS) is None
    assert api.get("nodes", "node-a")["metadata"]["labels"] == {NODE_LABEL: "a"}  # nodes were still labelled


def test_dry_run_changes_nothing_and_shows_no_key(api, tmp_path, task_file):
    keys = _keys()
    result = setup(
        api, tmp_path, str(task_file), "--credentials", str(_credentials(tmp_path, keys)), "--dry-run"
    )
    assert result.exit_code == 0, result.output
    assert not [r for r in api.requests if r[0] != "GET"]
    assert api.get("secrets", "edgefed-cloud", NS) is None
    assert api.get("nodes", "node-a")["metadata"]["labels"] == {}
    documents = list(yaml.safe_load_all(result.output.split("cluster setup of task")[0]))
    secrets = [d for d in documents if d and d.get("kind") == "Secret"]
    assert len(secrets) == 5 and all(set(d["data"].values()) == {"<redacted>"} for d in secrets)
    assert "would be created" in result.output and "would be labelled" in result.output
    _no_secret_key(result.output, keys)
    for pair in keys.values():
        assert base64.b64encode(pair["secretKey"].encode()).decode() not in result.output


def test_new_credentials_are_written_0600_used_and_never_printed(api, tmp_path, task_file):
    path = tmp_path / "new-creds.yaml"
    result = setup(api, tmp_path, str(task_file), "--new-credentials", str(path))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = yaml.safe_load(path.read_text())
    assert sorted(keys) == sorted(IDENTITIES)
    assert _secret(api, "b-site-keys") == keys["site-b"]
    _no_secret_key(result.output, keys)
    out = " ".join(result.output.split())
    assert f"mc admin user add CLOUD {keys['edge-a']['accessKey']}" in out
    assert f"mc admin user add SITE_B {keys['site-b']['accessKey']}" in out
    again = setup(api, tmp_path, str(task_file), "--new-credentials", str(path))
    assert again.exit_code == 2 and "refusing to overwrite it" in again.output


def test_bad_inputs_exit_2_and_change_nothing(api, tmp_path, task_file):
    keys = _keys()
    del keys["site-b"]
    result = setup(api, tmp_path, str(task_file), "--credentials", str(_credentials(tmp_path, keys)))
    assert result.exit_code == 2 and "missing identities: site-b" in result.output
    generated = tmp_path / "task-workflow.yaml"
    generated.write_text(
        yaml.safe_dump({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {}})
    )
    result = setup(api, tmp_path, str(generated), "--credentials", str(_credentials(tmp_path, _keys())))
    assert result.exit_code == 2 and "needs the FederatedTask file" in " ".join(result.output.split())
    result = setup(api, tmp_path, str(task_file))
    assert result.exit_code == 2 and "exactly one of --credentials" in result.output
    assert not [r for r in api.requests if r[0] != "GET"]


def test_the_charts_values_name_the_service_accounts_it_checks(api, tmp_path, task_file):
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "serviceAccounts": {
                    "driver": {"name": "fl-driver"},
                    "cloud": {"name": "edgefed-cloud"},
                    "edge": {"name": "edgefed-edge"},
                },
                "edges": [
                    {"name": "a", "node": "node-a"},
                    {"name": "b", "node": "node-b", "siteCredentialsSecret": "b-site-keys"},
                ],
            }
        )
    )
    result = setup(
        api,
        tmp_path,
        str(task_file),
        "--credentials",
        str(_credentials(tmp_path, _keys())),
        "--values",
        str(values),
    )
    assert result.exit_code == 1
    assert "fl-driver" in result.output and "install the chart" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("toleration", "taint", "tolerated"),
    [
        ({"key": "k", "operator": "Exists"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
        ({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoExecute"}, True),  # Equal
        ({"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
        ({"operator": "Exists"}, {"key": "any", "effect": "NoSchedule"}, True),  # tolerates everything
        (
            {"key": "k", "operator": "Exists", "effect": "NoExecute"},
            {"key": "k", "effect": "NoSchedule"},
            False,
        ),
        ({"key": "other", "operator": "Exists"}, {"key": "k", "effect": "NoSchedule"}, False),
    ],
)
def test_toleration_matching_is_kubernetes(toleration: dict, taint: dict, tolerated: bool) -> None:
    from edgefed.workflows.cluster.setup import tolerates

    assert tolerates(toleration, taint) is tolerated


def test_the_stand_in_answers_conflicts_as_the_api_server_does(api) -> None:
    """409 AlreadyExists on a second create, 409 Conflict on a stale update, 404 NotFound: Status bodies
    the kubernetes client reads (what cluster setup's error rows quote)."""
    import json

    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    configuration = client.Configuration(host=api.url, api_key={"authorization": "admin"})
    configuration.api_key_prefix = {"authorization": "Bearer"}
    with client.ApiClient(configuration) as raw:
        core = client.CoreV1Api(raw)
        body = client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"k": "v"})
        first = core.create_namespaced_secret(NS, body)
        with pytest.raises(ApiException) as exists:
            core.create_namespaced_secret(NS, body)
        status = json.loads(exists.value.body)
        assert (exists.value.status, status["reason"], status["details"]) == (
            409,
            "AlreadyExists",
            {"name": "s", "kind": "secrets"},
        )
        core.replace_namespaced_secret(
            "s", NS, client.V1Secret(metadata=first.metadata, string_data={"k": "w"})
        )
        with pytest.raises(ApiException) as stale:  # first's resourceVersion is no longer the object's
            core.replace_namespaced_secret(
                "s", NS, client.V1Secret(metadata=first.metadata, string_data={"k": "x"})
            )
        assert (stale.value.status, json.loads(stale.value.body)["reason"]) == (409, "Conflict")
        with pytest.raises(ApiException) as missing:
            core.read_namespaced_secret("nope", NS)
        assert (missing.value.status, json.loads(missing.value.body)["message"]) == (
            404,
            'secrets "nope" not found',
        )
