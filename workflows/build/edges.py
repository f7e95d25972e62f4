"""The round's ``edges`` parameter: one item per edge, holding only what departs from the conventions.

The conventions (what an item need not say): the node label :data:`~.names.NODE_LABEL` ``=<edge>``, the
Secrets :func:`~edgefed.steps.interface.edge_secret` (cloud store) and
:func:`~edgefed.steps.interface.site_secret` (the edge's own store), the dataset in bucket
:func:`~edgefed.steps.layout.edge_bucket` under the task's common key, read from the store on the edge's
own node (:func:`site_store_url`), no tolerations but the common edge taint's
(:data:`~.pods.EDGE_TAINT_TOLERATION`). With conventional edges an item is the edge's name, so 10,000
edges fit in a Workflow well under Kubernetes' object size limits.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from edgefed.steps import layout
from edgefed.steps.interface import Env, edge_secret, site_secret
from edgefed.workflows.build.pods import EDGE_TAINT_TOLERATION
from edgefed.workflows.spec import EdgeSpec, FederatedTask, SiteStoreSpec, StoreSpec

__all__ = [
    "EDGE_FIELDS",
    "common_dataset_key",
    "edge_item",
    "edge_values",
    "edges_parameter",
    "site_store_url",
    "store_url",
    "varying_fields",
]

#: Per-edge fields that go into the fan-out items only when some edge departs from the convention.
EDGE_FIELDS = ("secret", "siteSecret", "dataset", "store", "tolerations")


def store_url(store: StoreSpec) -> str:
    return f"{'https' if store.secure else 'http'}://{store.endpoint}"


def site_store_url(site: SiteStoreSpec) -> str:
    """The store on the edge's own node, at the node's address: ``$(EDGEFED_NODE_IP)`` is a Kubernetes
    dependent variable (the kubelet expands it in the step's args from its env, set by the downward API)."""
    return f"{'https' if site.secure else 'http'}://$({Env.NODE_IP}):{site.port}"


def common_dataset_key(task: FederatedTask) -> str:
    """The dataset key most edges use (the convention items are compared against); ties: the first in order."""
    counts = Counter(e.dataset.key for e in task.spec.edges)
    return max(sorted(counts), key=counts.__getitem__)


def _tolerations(edge: EdgeSpec) -> list[dict[str, Any]]:
    """The edge's own tolerations, after the common edge taint's (unless the edge lists it already)."""
    own = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in edge.tolerations]
    return own if EDGE_TAINT_TOLERATION in own else [EDGE_TAINT_TOLERATION, *own]


def edge_values(task: FederatedTask, edge: EdgeSpec) -> dict[str, Any]:
    """Every per-edge field of ``edge`` as the templates use it."""
    return {
        "name": edge.name,
        "secret": edge.secret_name,
        "siteSecret": edge.site_secret_name,
        "dataset": edge.dataset.url,
        "store": store_url(edge.store) if edge.store else site_store_url(task.spec.site_store),
        "tolerations": _tolerations(edge),
    }


def _convention(name: str, *, dataset_key: str, store: str) -> dict[str, Any]:
    return {
        "secret": edge_secret(name),
        "siteSecret": site_secret(name),
        "dataset": f"s3://{layout.edge_bucket(name)}/{dataset_key}",
        "store": store,
        "tolerations": [EDGE_TAINT_TOLERATION],
    }


def varying_fields(task: FederatedTask) -> tuple[str, ...]:
    """Which of :data:`EDGE_FIELDS` some edge sets differently from the conventions."""
    key, store = common_dataset_key(task), site_store_url(task.spec.site_store)
    varying: set[str] = set()
    for edge in task.spec.edges:
        values, convention = edge_values(task, edge), _convention(edge.name, dataset_key=key, store=store)
        varying.update(name for name in EDGE_FIELDS if values[name] != convention[name])
    return tuple(name for name in EDGE_FIELDS if name in varying)


def edge_item(task: FederatedTask, edge: EdgeSpec, fields: tuple[str, ...] | None = None) -> Any:
    """One element of the ``edges`` parameter: the name, plus the fields that vary in this task."""
    fields = varying_fields(task) if fields is None else fields
    if not fields:
        return edge.name
    values = edge_values(task, edge)
    item: dict[str, Any] = {"name": edge.name}
    for name in fields:
        item[name] = (
            json.dumps(values[name], separators=(",", ":")) if name == "tolerations" else values[name]
        )
    return item


def edges_parameter(task: FederatedTask, edges: list[EdgeSpec] | None = None) -> str:
    """The ``edges`` workflow parameter: a JSON list of :func:`edge_item`."""
    fields = varying_fields(task)
    items = [edge_item(task, e, fields) for e in (edges if edges is not None else task.spec.edges)]
    return json.dumps(items, separators=(",", ":"))
