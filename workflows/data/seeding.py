"""``edgefed data seed``: write each edge's partition into that edge's own bucket, and the test set.

A setup tool for the embedded default (in production each site already holds its data). Frames
come from :mod:`edgefed.steps.datasets`; they are written with the ``admin`` identity as Parquet to
``s3://edge-<edge>/<dataset>/train.parquet`` (or the key the task's spec names), and the held-out
test set to ``s3://edgefed-eval/<dataset>/test.parquet`` for central evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from minio import Minio

from edgefed.steps import datasets, layout
from edgefed.steps.store import parquet_bytes, put_bytes


@dataclass(frozen=True)
class SeededObject:
    edge: str | None  # None: the central test set
    url: str
    rows: int
    label_rate: dict[int, float]


def seed(
    client: Minio,
    dataset: str,
    *,
    edges: Sequence[str] | None = None,
    split: str | None = None,
    seed: int = 0,
    limit: int | None = None,
    locations: dict[str, tuple[str, str]] | None = None,
    on_object: Callable[[SeededObject], None] | None = None,
) -> tuple[datasets.Partitioned, list[SeededObject]]:
    """Partition ``dataset`` across ``edges`` and write every partition and the test set.

    ``locations`` maps an edge to its ``(bucket, key)``; by default ``(edge-<edge>, <dataset>/train.parquet)``.
    Buckets must exist (the store provisions them). Returns the partitioning and what was written.
    """
    parts = datasets.partition(dataset, edges=edges, split=split, seed=seed, limit=limit)
    written: list[SeededObject] = []

    def _put(edge: str | None, bucket: str, key: str, frame) -> None:
        put_bytes(client, bucket, key, parquet_bytes(frame))
        rates = frame["label"].value_counts(normalize=True).sort_index()
        obj = SeededObject(
            edge, f"s3://{bucket}/{key}", len(frame), {int(k): float(v) for k, v in rates.items()}
        )
        written.append(obj)
        if on_object:
            on_object(obj)

    for edge, frame in parts.edges.items():
        bucket, key = (locations or {}).get(edge, (layout.edge_bucket(edge), layout.train_set_key(dataset)))
        _put(edge, bucket, key, frame)
    _put(None, layout.EVAL_BUCKET, layout.test_set_key(dataset), parts.test)
    return parts, written


__all__ = ["SeededObject", "seed"]
