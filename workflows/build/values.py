"""The chart's values as the one source of a cluster's settings: ``edgefed generate --values FILE``.

An installation is described once, in the values file its ``helm install -f FILE`` used: the step image,
the store endpoints and CA, the Secrets, the ServiceAccounts, the resources per role. Generating with
the same file makes the manifests agree with what the chart created, by construction:

* :func:`settings_from_values`: the :class:`~.settings.ClusterSettings` (ServiceAccounts, pull
  Secrets, CA, resources);
* :func:`task_from_values`: the task with the installation's image, stores and Secrets. A field the task
  sets itself must agree with the values (else :class:`ValuesError` names both); an edge of the task
  the values do not list is an error (its Secrets would be nobody's).

Keys absent from ``FILE`` take the chart's defaults, which are the defaults of the spec and of
:class:`~.settings.ClusterSettings` (tests/packaging/test_chart.py proves they are equal). The values
schema itself is the chart's (``values.schema.json``): here only the keys the manifests depend on are read.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from edgefed.workflows.build.settings import DEFAULT_SETTINGS, ClusterSettings, Resources, ServiceAccounts
from edgefed.workflows.errors import EdgefedError, ExitCode
from edgefed.workflows.spec import DEFAULT_IMAGE, CloudStoreSpec, FederatedTask, SiteStoreSpec

__all__ = ["ValuesError", "load_values", "settings_from_values", "task_from_values"]

#: The step image's repository when ``image.repository`` is not set (the chart's default).
DEFAULT_REPOSITORY, _, DEFAULT_TAG = DEFAULT_IMAGE.rpartition(":")


class ValuesError(EdgefedError):
    """A values file that cannot be read, or that contradicts the task (exit 2: nothing is written)."""

    exit_code = ExitCode.INVALID


def load_values(path: Path) -> dict[str, Any]:
    """The values file as data (empty file: no overrides)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValuesError(f"{path}: cannot read the values file: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ValuesError(f"{path}: not YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValuesError(f"{path}: expected a mapping of chart values, found {type(data).__name__}")
    return data


def _get(values: dict[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return default if node in (None, "") else node


def _resources(values: dict[str, Any], role: str, default: Resources) -> Resources:
    spec = _get(values, f"resources.{role}")
    if spec is None:
        return default
    return Resources(
        requests={k: str(v) for k, v in (spec.get("requests") or {}).items()},
        limits={k: str(v) for k, v in (spec.get("limits") or {}).items()},
    )


def settings_from_values(
    values: dict[str, Any], settings: ClusterSettings = DEFAULT_SETTINGS
) -> ClusterSettings:
    """``settings`` with what the chart's values say of ServiceAccounts, pull Secrets, CA and resources."""
    accounts = ServiceAccounts()
    return replace(
        settings,
        service_accounts=ServiceAccounts(
            driver=_get(values, "serviceAccounts.driver.name", accounts.driver),
            cloud=_get(values, "serviceAccounts.cloud.name", accounts.cloud),
            edge=_get(values, "serviceAccounts.edge.name", accounts.edge),
        ),
        image_pull_secrets=tuple(
            p["name"] if isinstance(p, dict) else str(p) for p in _get(values, "imagePullSecrets", [])
        ),
        ca_config_map=_get(values, "store.caConfigMap", settings.ca_config_map),
        edge_resources=_resources(values, "edge", settings.edge_resources),
        cloud_resources=_resources(values, "cloud", settings.cloud_resources),
    )


def _agree(task: FederatedTask, where: str, task_value: Any, is_set: bool, values_value: Any) -> None:
    if is_set and task_value != values_value:
        raise ValuesError(
            f"task {task.name}: {where} is {task_value!r} in the task and {values_value!r} in the chart's "
            "values: set it in one place (the values describe the installation)"
        )


def task_from_values(task: FederatedTask, values: dict[str, Any]) -> FederatedTask:
    """``task`` with the installation's image, stores and Secrets from the chart's ``values``."""
    spec = task.spec
    image = f"{_get(values, 'image.repository', DEFAULT_REPOSITORY)}:{_get(values, 'image.tag', DEFAULT_TAG)}"
    _agree(task, "spec.image", spec.image, "image" in spec.model_fields_set, image)
    chart_store, chart_site = CloudStoreSpec(), SiteStoreSpec()  # the chart's defaults are the spec's
    store = CloudStoreSpec(
        endpoint=_get(values, "store.endpoint", chart_store.endpoint),
        secure=bool(_get(values, "store.secure", chart_store.secure)),
        ca_config_map=_get(values, "store.caConfigMap", chart_store.ca_config_map),
    )
    site = SiteStoreSpec(
        port=int(_get(values, "siteStore.port", chart_site.port)),
        secure=bool(_get(values, "siteStore.secure", chart_site.secure)),
    )
    for where, mine, theirs in (("spec.store", spec.store, store), ("spec.siteStore", spec.site_store, site)):
        for field, info in type(theirs).model_fields.items():
            set_here = field in mine.model_fields_set
            name = f"{where}.{info.alias or field}"
            _agree(task, name, getattr(mine, field), set_here, getattr(theirs, field))
    cloud_secret = _get(values, "cloud.credentialsSecret", spec.cloud_credentials_secret)
    _agree(
        task,
        "spec.cloudCredentialsSecret",
        spec.cloud_credentials_secret,
        "cloud_credentials_secret" in spec.model_fields_set,
        cloud_secret,
    )
    listed = {e.get("name"): e for e in _get(values, "edges", []) if isinstance(e, dict)}
    unknown = [e.name for e in spec.edges if e.name not in listed]
    if listed and unknown:
        raise ValuesError(
            f"task {task.name}: edges {', '.join(unknown)} are not in the chart's values (edges[]): the "
            f"chart documents each edge's node and Secrets; add them there (values lists {', '.join(listed)})"
        )
    edges = []
    for edge in spec.edges:
        entry = listed.get(edge.name, {})
        secret = entry.get("credentialsSecret") or edge.secret_name
        site_secret = entry.get("siteCredentialsSecret") or edge.site_secret_name
        node = entry.get("node") or edge.node
        _agree(
            task,
            f"edge {edge.name}: credentialsSecret",
            edge.credentials_secret,
            edge.credentials_secret is not None,
            secret,
        )
        _agree(
            task,
            f"edge {edge.name}: siteCredentialsSecret",
            edge.site_credentials_secret,
            edge.site_credentials_secret is not None,
            site_secret,
        )
        _agree(task, f"edge {edge.name}: node", edge.node, bool(entry.get("node")), node)
        edges.append(
            edge.model_copy(
                update={"credentials_secret": secret, "site_credentials_secret": site_secret, "node": node}
            )
        )
    new_spec = spec.model_copy(
        update={
            "image": image,
            "store": store,
            "site_store": site,
            "cloud_credentials_secret": cloud_secret,
            "edges": edges,
        }
    )
    return task.model_copy(update={"spec": new_spec})
