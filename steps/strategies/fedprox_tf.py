"""FedProx's proximal term in TensorFlow, for the edge's train step (the only TF module here).

Li et al. 2020, https://arxiv.org/abs/1812.06127; see :mod:`edgefed.steps.strategies.fedprox`.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def proximal_penalty(
    weights: Sequence[tf.Variable | tf.Tensor], global_weights: Sequence[tf.Tensor]
) -> tf.Tensor:
    """``½ Σ ‖w - w_global‖²`` over paired tensors (a scalar, in the weights' dtype)."""
    if len(weights) != len(global_weights):
        raise ValueError(f"{len(weights)} weights but {len(global_weights)} global weights")
    terms = [
        tf.reduce_sum(tf.square(w - tf.cast(g, w.dtype)))
        for w, g in zip(weights, global_weights, strict=True)
    ]
    return 0.5 * tf.add_n(terms) if terms else tf.constant(0.0)


def fedprox_loss(
    loss: tf.Tensor,
    weights: Sequence[tf.Variable | tf.Tensor],
    global_weights: Sequence[tf.Tensor],
    mu: float | tf.Tensor,
) -> tf.Tensor:
    """``loss + μ/2 Σ ‖w - w_global‖²``; its gradient in ``w`` is the loss's plus ``μ (w - w_global)``.

    ``weights`` are the model's trainable variables (inside the ``GradientTape``), ``global_weights``
    the round's starting values of the same variables (non-trainable ``tf.Variable`` copies, so a
    traced ``tf.function`` is not retraced each round). ``mu == 0`` returns ``loss`` unchanged.
    """
    if isinstance(mu, int | float) and mu == 0:
        return loss
    return loss + tf.cast(mu, loss.dtype) * tf.cast(proximal_penalty(weights, global_weights), loss.dtype)


__all__ = ["fedprox_loss", "proximal_penalty"]
