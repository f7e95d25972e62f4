"""Virtual edges: N edges on one machine, each with a shard of a packaged dataset, and a task for them.

For scale tests and benchmarks (``edgefed data seed digits --virtual 1000 --task-out big.yaml``): the edges
are real to every part of edgefed (each its own bucket, its two store identities, its pinned steps in the
generated Workflows); only their nodes are imaginary (``edge-<name>``, as a cluster would label them).
"""

from __future__ import annotations

from typing import Any

from edgefed.steps import datasets, layout

__all__ = ["virtual_edge_names", "virtual_task"]


def virtual_edge_names(count: int) -> list[str]:
    """``v001`` .. ``v<count>`` (zero-padded to the width of ``count``)."""
    if count < 1:
        raise ValueError(f"--virtual: expected at least 1 edge, got {count}")
    width = max(3, len(str(count)))
    return [f"v{i:0{width}d}" for i in range(1, count + 1)]


def virtual_task(
    dataset: str,
    edges: list[str],
    *,
    name: str,
    rounds: int = 10,
    sampling: float | None = None,
    suffix: str = ".parquet",
) -> dict[str, Any]:
    """A FederatedTask document for ``edges`` seeded with ``dataset``: a logistic model, FedAvg, every
    round evaluated; ``sampling``: the fraction of the edges each round asks (quorum: half of them);
    ``suffix``: of the shards' keys, as seeded (``.feather`` or ``.parquet``)."""
    info = datasets.info(dataset)
    asked = len(edges) if sampling is None else max(1, int(len(edges) * sampling))
    spec: dict[str, Any] = {
        "model": {"name": "logistic", "inputShape": [info.num_features], "classes": info.num_classes},
        "dataset": dataset,
        "edges": [
            {
                "name": edge,
                "node": f"edge-{edge}",
                "dataset": {"bucket": layout.edge_bucket(edge), "key": layout.train_set_key(dataset, suffix)},
            }
            for edge in edges
        ],
        "training": {"batchSize": 32, "learningRate": 0.1, "localEpochs": 1},
        "aggregation": {"algorithm": "fedavg"},
        "rounds": rounds,
        "quorum": max(1, asked // 2),
        "evaluation": {"everyRounds": 1},
    }
    if sampling is not None:
        spec["sampling"] = {"fraction": sampling}
    return {
        "apiVersion": "edgefed.io/v1alpha1",
        "kind": "FederatedTask",
        "metadata": {"name": name},
        "spec": spec,
    }
