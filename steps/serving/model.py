"""A served model: a committed version loaded (hash checked), and batched prediction with confidences.

Where the weights come from: at an edge, the version deployed into the edge's own store
(``edge-<e>/models/<task>/current.json``, :mod:`edgefed.steps.deploy`), else the task's served version
read from the cloud registry; in the cloud, the registry's served (or a named) version. The architecture is
the one the version's manifest records (``modelSpec``), the input the dataset's feature columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from minio import Minio

from edgefed.steps import codec, datasets, layout
from edgefed.steps.registry import ModelRegistry
from edgefed.steps.store import DataUnavailableError, StepError, get_bytes

__all__ = ["ServedModel", "from_edge_store", "from_registry"]


@dataclass
class ServedModel:
    """A version ready to predict: ``predict`` returns class probabilities for a batch of feature rows."""

    task: str
    round: int
    sha256: str
    version_id: str | None
    source: str  # where the weights were read (an s3:// URL)
    feature_columns: list[str]
    classes: int
    _predict: Any  # the traced prediction function

    def describe(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "round": self.round,
            "sha256": self.sha256,
            "versionId": self.version_id,
            "source": self.source,
        }

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``[n, classes]`` for ``x`` ``[n, features]`` (float32)."""
        import tensorflow as tf

        return self._predict(tf.constant(x, tf.float32)).numpy()


def _build(
    task: str, round_: int, manifest: dict[str, Any], weights_bytes: bytes, source: str
) -> ServedModel:
    import tensorflow as tf

    from edgefed.steps.models import build_model

    spec = manifest.get("modelSpec")
    if not spec:
        raise StepError(
            f"{source}: the manifest of round {round_} of {task!r} records no model spec to rebuild"
        )
    digest = codec.sha256(weights_bytes)
    if digest != manifest["model"]["sha256"]:
        raise StepError(
            f"{source} is corrupt: SHA-256 {digest} does not match the manifest's {manifest['model']['sha256']}"
        )
    weights, _ = codec.decode(weights_bytes)
    model = build_model(spec)
    model.set_weights(weights)
    n = int(np.prod(spec["inputShape"]))
    shape = tuple(spec["inputShape"])
    try:
        recorded = manifest.get("columns")
        columns = (
            list(recorded["features"])
            if recorded
            else list(datasets.info(manifest.get("datasetName") or "").feature_columns)
        )
    except datasets.DatasetError:
        columns = [f"x{i}" for i in range(n)]

    @tf.function(input_signature=[tf.TensorSpec((None, n), tf.float32)])
    def predict(x: tf.Tensor) -> tf.Tensor:
        return tf.nn.softmax(model(tf.reshape(x, (-1, *shape)), training=False), axis=-1)

    return ServedModel(
        task,
        round_,
        digest,
        manifest["model"].get("versionId"),
        source,
        columns,
        int(spec["classes"]),
        predict,
    )


def from_registry(registry: ModelRegistry, task: str, version: int | None = None) -> ServedModel:
    """Round ``version`` of ``task`` (default: the served one, else the latest), from the cloud registry."""
    from edgefed.steps.promotions import served

    if version is None:
        record = served(registry, task)
        version = int(record["round"]) if record else registry.last_committed(task)
        if version is None:
            raise DataUnavailableError(f"task {task!r} has no committed model")
    manifest = registry.manifest(task, version)
    data = registry.model_bytes(task, version)
    return _build(task, version, manifest, data, f"s3://{registry.bucket}/{manifest['model']['key']}")


def from_edge_store(site: Minio, edge: str, task: str) -> ServedModel:
    """The version deployed at ``edge`` (its ``current.json``), read from the edge's own store."""
    bucket = layout.edge_bucket(edge)
    current = json.loads(get_bytes(site, bucket, layout.deployed_current_key(task)))
    round_ = int(current["round"])
    manifest = json.loads(get_bytes(site, bucket, layout.deployed_manifest_key(task, round_)))
    data = get_bytes(site, bucket, layout.deployed_model_key(task, round_))
    if codec.sha256(data) != current["sha256"]:
        raise StepError(
            f"s3://{bucket}/{layout.deployed_model_key(task, round_)} does not match its current.json"
        )
    return _build(task, round_, manifest, data, f"s3://{bucket}/{layout.deployed_model_key(task, round_)}")
