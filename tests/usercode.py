"""A user's own code, as the README documents it: a Keras model factory and a training step.

The factory: ``factory(input_shape, classes, **params) -> tf.keras.Model`` (uncompiled, outputs logits).
The step: ``step(weights, x, y, *, model, training, seed) -> (weights, metrics)``: here softmax regression by
full-batch gradient descent in NumPy, with an L2 penalty the built-in trainer does not have.
"""

from __future__ import annotations

import numpy as np


def linear(input_shape, classes, *, l2: float = 0.0):
    import tensorflow as tf

    return tf.keras.Sequential(
        [tf.keras.layers.Input(tuple(input_shape)), tf.keras.layers.Flatten(), tf.keras.layers.Dense(classes)]
    )


def l2_softmax_step(weights, x, y, *, model, training, seed):
    kernel, bias = weights
    l2 = float(model.get("params", {}).get("l2", 0.0))
    rate = float(training["learningRate"])
    onehot = np.eye(kernel.shape[1], dtype=np.float32)[y]
    loss = float("nan")
    for _ in range(int(training["localEpochs"]) * 5):
        logits = x @ kernel + bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        loss = float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)) + 0.5 * l2 * np.sum(kernel**2))
        grad = (p - onehot) / len(y)
        kernel = kernel - rate * (x.T @ grad + l2 * kernel)
        bias = bias - rate * grad.sum(axis=0)
    accuracy = float(np.mean((x @ kernel + bias).argmax(axis=1) == y))
    return [kernel.astype(np.float32), bias.astype(np.float32)], {"loss": loss, "accuracy": accuracy}


def wrong_shapes_step(weights, x, y, *, model, training, seed):
    return [w[:1] for w in weights], {"loss": 0.0}
