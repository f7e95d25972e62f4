"""``edgefed generate --values FILE``: the chart's values are the one source of the installation's settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgefed.workflows.build import ServiceAccounts, manifests
from edgefed.workflows.build.values import ValuesError, settings_from_values, task_from_values
from edgefed.workflows.spec import parse_task
from tests.helpers import edgefed, task_doc, write_task

VALUES = {
    "image": {"repository": "registry.example.org/edgefed/step", "tag": "1.2.3"},
    "imagePullSecrets": [{"name": "regcred"}],
    "serviceAccounts": {
        "driver": {"name": "fl-driver"},
        "cloud": {"name": "fl-cloud"},
        "edge": {"name": "fl-edge"},
    },
    "store": {"endpoint": "minio.storage:9443", "secure": True, "caConfigMap": "store-ca"},
    "siteStore": {"port": 9443, "secure": True},
    "cloud": {"credentialsSecret": "minio-cloud"},
    "resources": {"edge": {"requests": {"cpu": "2", "memory": "3Gi"}, "limits": {"memory": "6Gi"}}},
    "edges": [
        {"name": "a", "node": "node-a"},
        {
            "name": "b",
            "node": "node-b",
            "credentialsSecret": "minio-b",
            "siteCredentialsSecret": "site-minio-b",
        },
    ],
}


def _templates(document: dict) -> dict[str, dict]:
    return {t["name"]: t for t in document["spec"]["templates"]}


def test_the_values_set_image_stores_secrets_accounts_and_resources() -> None:
    doc = task_doc("v", ("a", "b"))
    for edge in doc["spec"]["edges"]:
        edge["node"] = f"node-{edge['name']}"
    task = task_from_values(parse_task(doc), VALUES)
    settings = settings_from_values(VALUES)
    assert settings.service_accounts == ServiceAccounts(driver="fl-driver", cloud="fl-cloud", edge="fl-edge")
    out = manifests(task, settings=settings)
    round_doc, task_wf = out["v-round-00001.yaml"], out["task.yaml"]
    templates = _templates(round_doc)
    train, aggregate = templates["train"], templates["aggregate"]
    assert train["container"]["image"] == "registry.example.org/edgefed/step:1.2.3"
    assert train["serviceAccountName"] == "fl-edge" and aggregate["serviceAccountName"] == "fl-cloud"
    assert _templates(task_wf)["round-workflow"]["serviceAccountName"] == "fl-driver"
    assert task_wf["spec"]["serviceAccountName"] == "fl-driver"
    assert round_doc["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert train["container"]["resources"] == {
        "requests": {"cpu": "2", "memory": "3Gi"},
        "limits": {"memory": "6Gi"},
    }
    parameters = {p["name"]: p.get("value") for p in round_doc["spec"]["arguments"]["parameters"]}
    assert parameters["store"] == "https://minio.storage:9443"
    assert parameters["site-store"] == "https://$(EDGEFED_NODE_IP):9443"
    edges = yaml.safe_load(parameters["edges"])
    assert edges == [
        {"name": "a", "secret": "edgefed-edge-a", "siteSecret": "edgefed-site-a"},
        {"name": "b", "secret": "minio-b", "siteSecret": "site-minio-b"},
    ]
    env = {e["name"]: e for e in aggregate["container"]["env"]}
    assert env["EDGEFED_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "minio-cloud"
    assert env["EDGEFED_CA_FILE"]["value"] == "/etc/edgefed/ca/ca.crt"
    volumes = {v["name"]: v for v in round_doc["spec"]["volumes"]}
    assert volumes["store-ca"]["configMap"]["name"] == "store-ca"


def test_no_values_means_the_charts_defaults() -> None:
    task = parse_task(task_doc("d", ("a",)))
    assert manifests(task_from_values(task, {}), settings=settings_from_values({})) == manifests(task)
    assert settings_from_values({}) == settings_from_values({"serviceAccounts": {}})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"image": "other/image:9"}, "spec.image is 'other/image:9' in the task and 'registry.example.org"),
        ({"store": {"endpoint": "elsewhere:9000"}}, "spec.store.endpoint is 'elsewhere:9000'"),
        ({"cloudCredentialsSecret": "mine"}, "spec.cloudCredentialsSecret is 'mine'"),
    ],
)
def test_a_task_that_contradicts_the_values_is_refused_naming_both(spec: dict, message: str) -> None:
    doc = task_doc("c", ("a",), **spec)
    doc["spec"]["edges"][0]["node"] = "node-a"
    with pytest.raises(ValuesError, match=message):
        task_from_values(parse_task(doc), VALUES)


def test_an_edge_the_values_do_not_list_is_refused() -> None:
    doc = task_doc("u", ("a", "zz"))
    doc["spec"]["edges"][0]["node"] = "node-a"
    with pytest.raises(ValuesError, match=r"edges zz are not in the chart's values \(edges\[\]\)"):
        task_from_values(parse_task(doc), VALUES)


def test_cli_generate_with_values(tmp_path: Path) -> None:
    doc = task_doc("cli", ("a", "b"))
    for edge in doc["spec"]["edges"]:
        edge["node"] = f"node-{edge['name']}"
    path = write_task(tmp_path / "task.yaml", doc)
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    out = tmp_path / "out"
    result = edgefed(
        "generate", str(path), "-o", str(out), "--values", str(values), home=tmp_path / "h", timeout=120
    )
    assert result.returncode == 0, result.stderr
    train = _templates(yaml.safe_load((out / "cli-round-00001.yaml").read_text()))["train"]
    assert train["serviceAccountName"] == "fl-edge"
    values.write_text(
        yaml.safe_dump({**VALUES, "edges": [{"name": "a", "node": "elsewhere"}, {"name": "b"}]})
    )
    result = edgefed(
        "generate", str(path), "-o", str(out), "--values", str(values), home=tmp_path / "h", timeout=120
    )
    assert result.returncode == 2
    assert (
        "edge a: node is 'node-a' in the task and 'elsewhere' in the chart's values"
        in result.stderr + result.stdout
    )
