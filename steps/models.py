"""Keras models and the local trainer every edge runs.

Built-in architectures (``logistic``, ``mlp``, ``cnn``) or a user factory ``module:function``
called as ``factory(input_shape, classes, **params)`` returning an uncompiled ``tf.keras.Model``
that outputs logits.

Speed: Keras ``fit()`` per edge per round costs ~15x a cached ``tf.function`` step on small models,
so :func:`trainer_for` keeps one :class:`Trainer` per (model, training) configuration per process.
In a warm worker the graph is traced once and reused by every later round and edge.

Training settings (the spec's ``training`` section, plus what the aggregation strategy asks of the
edges, see ``Strategy.edge_settings``): ``batchSize``, ``learningRate``, ``localEpochs``,
``optimizer`` (sgd, adam), ``shuffle`` (True: a seeded permutation each epoch; False: the dataset's
row order, the same batches every epoch) and ``proximalMu`` (FedProx, Li et al. 2020,
arXiv:1812.06127: the local objective is ``loss + mu/2 ||w - w_global||²`` over the trainable
weights, ``w_global`` the round's starting weights, held in non-trainable variables that each
:meth:`Trainer.fit` assigns, so the traced step is reused across rounds). The term follows the paper;
TFF 0.87's ``build_weighted_fed_prox`` adds ``mu (w_global - w)`` to the gradient, the opposite sign.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from edgefed.steps.store import StepError
from edgefed.steps.strategies.fedprox_tf import fedprox_loss


def _logistic(input_shape: Sequence[int], classes: int) -> tf.keras.Model:
    return tf.keras.Sequential(
        [tf.keras.layers.Input(tuple(input_shape)), tf.keras.layers.Flatten(), tf.keras.layers.Dense(classes)]
    )


def _mlp(input_shape: Sequence[int], classes: int, hidden: Sequence[int] = (32,)) -> tf.keras.Model:
    layers: list[tf.keras.layers.Layer] = [
        tf.keras.layers.Input(tuple(input_shape)),
        tf.keras.layers.Flatten(),
    ]
    layers += [tf.keras.layers.Dense(int(units), activation="relu") for units in hidden]
    layers.append(tf.keras.layers.Dense(classes))
    return tf.keras.Sequential(layers)


def _cnn(
    input_shape: Sequence[int], classes: int, side: int | None = None, filters: Sequence[int] = (16, 32)
) -> tf.keras.Model:
    """Small convnet for square grey images given flat (``side`` x ``side`` pixels) or as HxWxC."""
    shape = tuple(input_shape)
    layers: list[tf.keras.layers.Layer] = [tf.keras.layers.Input(shape)]
    if len(shape) == 1:
        side = side or round(shape[0] ** 0.5)
        if side * side != shape[0]:
            raise ValueError(f"cnn: input of {shape[0]} features is not a square image; set params.side")
        layers.append(tf.keras.layers.Reshape((side, side, 1)))
    for n in filters:
        layers += [
            tf.keras.layers.Conv2D(int(n), 3, padding="same", activation="relu"),
            tf.keras.layers.MaxPooling2D(2, padding="same"),
        ]
    layers += [tf.keras.layers.Flatten(), tf.keras.layers.Dense(classes)]
    return tf.keras.Sequential(layers)


BUILTINS = {"logistic": _logistic, "mlp": _mlp, "cnn": _cnn}


def is_regression(model: dict[str, Any]) -> bool:
    return model.get("task") == "regression"


def build_model(model: dict[str, Any]) -> tf.keras.Model:
    """Build the model described by a spec's ``model`` section (camelCase keys, as in YAML)."""
    name, shape = model["name"], model["inputShape"]
    classes = 1 if is_regression(model) else model["classes"]  # a regression model has one output
    params = model.get("params") or {}
    if name in BUILTINS:
        factory = BUILTINS[name]
    else:
        module, _, function = name.partition(":")
        factory = getattr(importlib.import_module(module), function)
    built = factory(shape, classes, **params)
    if not isinstance(built, tf.keras.Model):
        raise TypeError(f"model factory {name!r} returned {type(built).__name__}, not a tf.keras.Model")
    return built


def initial_weights(model: dict[str, Any]) -> list[np.ndarray]:
    """Deterministic initial weights for ``model``: seeded by ``model.seed``, or read from the ``.npz`` file
    ``model.initialWeights`` names (its arrays in key order, ``w0, w1, ...`` or numpy's ``arr_0, ...``: the
    model's weight order), checked against the model's shapes."""
    import re

    tf.keras.utils.set_random_seed(int(model.get("seed", 0)))
    built = build_model(model).get_weights()
    path = model.get("initialWeights")
    if not path:
        return built
    try:
        with np.load(path) as archive:
            keys = sorted(
                archive.files, key=lambda k: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", k)]
            )
            weights = [archive[k] for k in keys]
    except (OSError, ValueError) as err:
        raise StepError(f"model.initialWeights {path}: cannot be read as .npz ({err})") from None
    expected = [w.shape for w in built]
    if [w.shape for w in weights] != expected:
        raise StepError(
            f"model.initialWeights {path}: arrays of shapes {[w.shape for w in weights]} ({', '.join(keys)}), "
            f"the model's weights are {expected}"
        )
    return [w.astype(b.dtype) for w, b in zip(weights, built, strict=True)]


#: From this size of features on, an epoch's batches gather their rows from one tensor instead of the
#: whole matrix being permuted first: below it, the copies cost less than a gather a batch (digits'
#: 183 x 64 rows: 3.9 ms a fit either way, 0.2 ms more with gathers).
_GATHER_FROM = 1 << 20


class Trainer:
    """A model with its optimizer and traced train/eval functions, reused across calls."""

    def __init__(self, model: dict[str, Any], training: dict[str, Any]) -> None:
        self.model = build_model(model)
        self.input_shape = tuple(model["inputShape"])
        self.batch_size = int(training.get("batchSize", 32))
        self.shuffle = bool(training.get("shuffle", True))
        self.proximal_mu = float(training.get("proximalMu", 0.0))
        lr = float(training.get("learningRate", 0.05))
        if training.get("optimizer", "sgd") == "adam":
            self.optimizer = tf.keras.optimizers.Adam(lr)
        else:
            self.optimizer = tf.keras.optimizers.SGD(lr)
        self.optimizer.build(self.model.trainable_variables)
        # FedProx: the round's starting weights, assigned by fit(); variables, not constants, so the
        # traced step is not retraced every round.
        self._anchor = (
            [tf.Variable(v, trainable=False) for v in self.model.trainable_variables]
            if self.proximal_mu > 0
            else []
        )
        self.regression = is_regression(model)
        if self.regression:  # mean squared error on the one output
            self.loss_fn = tf.keras.losses.MeanSquaredError()
        else:
            self.loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.label_dtype = np.float32 if self.regression else np.int64
        spec = (
            tf.TensorSpec((None, *self.input_shape), tf.float32),
            tf.TensorSpec((None,), tf.float32 if self.regression else tf.int64),
        )
        self._epoch = tf.function(self._epoch_py, input_signature=spec)
        order = tf.TensorSpec((None,), tf.int64)
        self._epoch_gathered = tf.function(self._epoch_py, input_signature=(*spec, order))
        self._eval_step = tf.function(self._eval_step_py, input_signature=spec)
        weights = [tf.TensorSpec(v.shape, v.dtype) for v in self.model.weights]
        self._start = tf.function(self._start_py, input_signature=(weights,))

    def _train_step_py(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            logits = self.model(x, training=True)
            loss = self.loss_fn(y[:, None] if self.regression else y, logits)
            objective = (
                fedprox_loss(loss, self.model.trainable_variables, self._anchor, self.proximal_mu)
                if self._anchor
                else loss
            )
        grads = tape.gradient(objective, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables, strict=True))
        return loss, self._second(logits, y)

    def _epoch_py(
        self, x: tf.Tensor, y: tf.Tensor, order: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """One epoch over ``(x, y)`` in consecutive batches, inside one traced call: a Python loop of
        per-batch calls costs ~1 ms a batch in call overhead and host syncs, more than the batch's
        arithmetic on small models. Returns the sums of the batch losses (weighted by batch size) and of
        the second metric.

        ``order`` (row indices): the batches take the examples in that order, each gathering its rows here
        (the same batches as permuting ``x`` first, without two copies of the whole matrix an epoch:
        6,000 x 784, 39 -> 33 ms a fit); without it, ``x`` is already in the epoch's order."""
        n = tf.shape(y)[0] if order is None else tf.shape(order)[0]
        size = self.batch_size
        loss_sum = tf.constant(0.0)
        second = tf.constant(0.0)
        for i in tf.range((n + size - 1) // size):
            start = i * size
            if order is None:
                xb, yb = x[start : start + size], y[start : start + size]
            else:
                rows = order[start : start + size]
                xb, yb = tf.gather(x, rows), tf.gather(y, rows)
            loss, ok = self._train_step_py(xb, yb)
            loss_sum += loss * tf.cast(tf.shape(yb)[0], tf.float32)
            second += ok
        return loss_sum, second

    def _second(self, outputs: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        """The batch's sum of the second metric: correct predictions, or (regression) absolute errors."""
        if self.regression:
            return tf.reduce_sum(tf.abs(outputs[:, 0] - y))
        return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(outputs, axis=-1), y), tf.float32))

    def _eval_step_py(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        outputs = self.model(x, training=False)
        target = y[:, None] if self.regression else y
        loss = self.loss_fn(target, outputs) * tf.cast(tf.shape(y)[0], tf.float32)
        return loss, self._second(outputs, y)

    def _metrics(self, loss_sum: float, second: float, n: int) -> dict[str, float]:
        n = max(n, 1)
        if self.regression:
            return {"loss": loss_sum / n, "mse": loss_sum / n, "mae": second / n}
        return {"loss": loss_sum / n, "accuracy": second / n}

    def _start_py(self, weights: list[tf.Tensor]) -> None:
        """Set the model's weights (``model.weights`` order, as ``get_weights`` gives them), the FedProx
        anchor, and zero the optimizer's state, in one traced call: Keras's ``set_weights`` and a
        per-variable reset in eager mode cost ~2 ms a round per edge, more than a small model's epoch."""
        for var, value in zip(self.model.weights, weights, strict=True):
            var.assign(value)
        if self._anchor:
            for anchor, var in zip(self._anchor, self.model.trainable_variables, strict=True):
                anchor.assign(var)
        # Every round starts local training afresh (FedAvg's clients keep no optimizer state).
        for var in self.optimizer.variables:
            var.assign(tf.zeros_like(var))

    def fit(
        self,
        weights: list[np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int,
        seed: int | Sequence[int],
    ) -> tuple[list[np.ndarray], dict[str, float]]:
        """Train from ``weights`` on ``(x, y)``; returns new weights and last-epoch metrics. ``seed`` seeds
        the epochs' permutations (an int, or a sequence as numpy's ``default_rng`` takes).

        The loss reported is the data loss (without FedProx's proximal term).
        """
        self._start(
            [np.asarray(w, v.dtype.as_numpy_dtype) for w, v in zip(weights, self.model.weights, strict=True)]
        )
        x = np.asarray(x.reshape((-1, *self.input_shape)), dtype=np.float32)
        y = y.astype(self.label_dtype, copy=False)
        rng = np.random.default_rng(seed)
        n = len(y)
        gathered = self.shuffle and x.nbytes >= _GATHER_FROM
        if gathered:
            # one tensor for every epoch; a column-major matrix (as pandas and the Arrow path give it) is
            # made row-major by this conversion itself, cheaper than NumPy's copy and then a second one
            # (10 ms against 16 for 6,000 x 784)
            x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
        loss_sum = correct = 0.0
        for _ in range(epochs):
            if gathered:
                loss, ok = self._epoch_gathered(x, y, rng.permutation(n))
            elif self.shuffle:
                order = rng.permutation(n)
                loss, ok = self._epoch(x[order], y[order])
            else:
                loss, ok = self._epoch(x, y)
            loss_sum, correct = float(loss), float(ok)
        return [v.numpy() for v in self.model.weights], self._metrics(loss_sum, correct, n)

    def evaluate(self, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        self.model.set_weights(weights)
        x = x.reshape((-1, *self.input_shape)).astype(np.float32, copy=False)
        y = y.astype(self.label_dtype, copy=False)
        loss_sum = correct = 0.0
        step = 4096
        for start in range(0, len(y), step):
            loss, ok = self._eval_step(x[start : start + step], y[start : start + step])
            loss_sum += float(loss)
            correct += float(ok)
        return {**self._metrics(loss_sum, correct, len(y)), "examples": len(y)}


_TRAINERS: dict[str, Trainer] = {}


def trainer_for(model: dict[str, Any], training: dict[str, Any]) -> Trainer:
    """The process-wide cached :class:`Trainer` for this configuration."""
    key = json.dumps([model, training], sort_keys=True)
    trainer = _TRAINERS.get(key)
    if trainer is None:
        trainer = _TRAINERS[key] = Trainer(model, training)
    return trainer


__all__ = ["BUILTINS", "Trainer", "build_model", "initial_weights", "is_regression", "trainer_for"]
