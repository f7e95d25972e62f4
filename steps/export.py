"""Export a committed global model for serving: Keras ``.keras``, a TensorFlow SavedModel, optionally TFLite.

The SavedModel is laid out for TensorFlow Serving (``<out>/saved_model/<version>/``, the version being the
round, so ``--model_base_path=<out>/saved_model`` serves it) and has two signatures:

* ``serving_default``: one input per feature column of the dataset, by name (``age``, ``sex``, ... as the
  edges' Parquet files hold them, each ``float32 [batch]``), so a REST ``{"instances": [{"age": 0.63, ...}]}``
  needs no knowledge of the column order;
* ``predict_features``: one ``features`` tensor ``float32 [batch, n_features]`` in the dataset's column order.

Both return ``logits`` (what the model outputs), ``probabilities`` (softmax) and ``classes`` (argmax, int64):
the classes the federated evaluation counts. The TFLite file converts ``predict_features``.

Run as ``python -m edgefed.steps.export`` (the control plane calls it in a subprocess: it never imports
TensorFlow); its input is the verified weights file the registry returned and the task's model section.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from edgefed.steps import codec
from edgefed.steps.interface import StepExit

__all__ = ["SIGNATURES", "export", "main"]

#: Signature names of the SavedModel.
SIGNATURES = ("serving_default", "predict_features")
OUTPUTS = ("logits", "probabilities", "classes")


class ExportError(Exception):
    """The model cannot be exported in a format (a user factory's layers Keras cannot save, TFLite ops)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def export(
    model_spec: dict[str, Any],
    weights_file: Path,
    feature_columns: list[str],
    out: Path,
    *,
    version: int,
    tflite: bool = False,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``out/model.keras``, ``out/saved_model/<version>/`` (and ``out/model.tflite``) and
    ``out/export.json`` describing them; returns that description. ``out`` must not exist."""
    import numpy as np
    import tensorflow as tf

    from edgefed.steps.models import build_model

    weights, _ = codec.decode(weights_file.read_bytes())
    model = build_model(model_spec)
    model.set_weights(weights)
    n_features = int(np.prod(model_spec["inputShape"]))
    if len(feature_columns) != n_features:
        raise ExportError(
            f"the dataset has {len(feature_columns)} feature columns, the model's inputShape "
            f"{model_spec['inputShape']} needs {n_features}"
        )
    shape = tuple(model_spec["inputShape"])
    regression = model_spec.get("task") == "regression"
    outputs = ("prediction",) if regression else OUTPUTS
    out.mkdir(parents=True)

    class Served(tf.Module):
        def __init__(self, keras_model: tf.keras.Model) -> None:
            super().__init__()
            self.model = keras_model

        def _answer(self, features: tf.Tensor) -> dict[str, tf.Tensor]:
            logits = self.model(tf.reshape(features, (-1, *shape)), training=False)
            if regression:
                return {"prediction": logits[:, 0]}
            return {
                "logits": logits,
                "probabilities": tf.nn.softmax(logits, axis=-1),
                "classes": tf.argmax(logits, axis=-1, output_type=tf.int64),
            }

        @tf.function(input_signature=[tf.TensorSpec((None, n_features), tf.float32, name="features")])
        def predict_features(self, features: tf.Tensor) -> dict[str, tf.Tensor]:
            return self._answer(features)

    served = Served(model)
    # Named columns as keyword arguments: a tf.function's signature can be a dict of named TensorSpecs.
    column_specs = {name: tf.TensorSpec((None,), tf.float32, name=name) for name in feature_columns}

    @tf.function(input_signature=[column_specs])
    def by_columns(columns: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return served._answer(tf.stack([columns[name] for name in feature_columns], axis=1))

    serving_default = by_columns.get_concrete_function()
    features_fn = served.predict_features.get_concrete_function()
    saved = out / "saved_model" / str(version)
    tf.saved_model.save(
        served, str(saved), signatures={"serving_default": serving_default, "predict_features": features_fn}
    )
    files: dict[str, dict[str, Any]] = {
        "savedModel": {"path": str(saved.relative_to(out)), "sha256": _sha256(saved)}
    }
    keras_path = out / "model.keras"
    try:
        model.save(keras_path)
    except Exception as err:  # Keras raises many types for layers it cannot serialise
        raise ExportError(f"Keras cannot save the model as .keras: {err}") from None
    files["keras"] = {"path": keras_path.name, "sha256": _sha256(keras_path)}
    if tflite:
        try:
            converter = tf.lite.TFLiteConverter.from_concrete_functions([features_fn], served)
            (out / "model.tflite").write_bytes(converter.convert())
        except Exception as err:  # the converter's errors are of several types (ConverterError, ValueError)
            raise ExportError(f"TFLite cannot convert the model: {err}") from None
        files["tflite"] = {"path": "model.tflite", "sha256": _sha256(out / "model.tflite")}
    description = {
        **(provenance or {}),
        "version": version,
        "model": model_spec,
        "featureColumns": list(feature_columns),
        "signatures": {
            "serving_default": {"inputs": list(feature_columns), "outputs": list(outputs)},
            "predict_features": {"inputs": ["features"], "outputs": list(outputs)},
        },
        "files": files,
        "tensorflow": tf.__version__,
    }
    (out / "export.json").write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")
    return description


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edgefed.steps.export", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--weights", type=Path, required=True, help="the verified .npz weights file")
    parser.add_argument("--model", required=True, help="the task's model section (JSON)")
    parser.add_argument("--features", required=True, help="JSON list of the dataset's feature columns")
    parser.add_argument("--out", type=Path, required=True, help="directory to create")
    parser.add_argument("--version", type=int, required=True, help="the SavedModel's version (the round)")
    parser.add_argument(
        "--provenance", default="{}", help="JSON recorded in export.json (task, round, hashes)"
    )
    parser.add_argument("--tflite", action="store_true")
    args = parser.parse_args(argv)
    try:
        description = export(
            json.loads(args.model),
            args.weights,
            json.loads(args.features),
            args.out,
            version=args.version,
            tflite=args.tflite,
            provenance=json.loads(args.provenance),
        )
    except ExportError as err:
        print(f"export: error: {err}", file=sys.stderr)
        return StepExit.FAILED
    print(json.dumps(description))
    return StepExit.OK


if __name__ == "__main__":
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
