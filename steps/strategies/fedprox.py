"""FedProx: FedAvg on the server, a proximal term in each edge's local objective. Streaming.

Li, Sahu, Zaheer, Sanjabi, Talwalkar, Smith: "Federated Optimization in Heterogeneous
Networks", MLSys 2020. https://arxiv.org/abs/1812.06127

Edge k minimises ``h_k(w) = F_k(w) + μ/2 ‖w - w_global‖²`` from ``w = w_global`` (the
proximal term keeps heterogeneous edges from drifting), and the server averages the results
exactly as FedAvg (example-weighted). So the server side is FedAvg's composition; the edge side is
:func:`edgefed.steps.strategies.fedprox_tf.fedprox_loss` (TensorFlow, the only module here that
imports it), whose gradient adds ``μ (w - w_global)`` to the data gradient. μ = 0 is FedAvg.

The term is over the trainable weights (as TFF's ``build_weighted_fed_prox``); non-trainable
state (batch-norm statistics) is averaged but not pulled back. The sign follows the paper: TFF 0.87's
``proximal_client_work`` adds ``μ (w_global - w)`` to the gradient (``delta_l2_regularizer * (y - x)``
with x the current and y the initial weights), which pushes local training *away* from the global
model; edgefed does not reproduce that.

The edges get μ through :meth:`FedProx.edge_settings` (``proximalMu``), which the train step merges
into the training settings; ``edgefed.steps.models.Trainer`` applies the term.

Parameters: ``mu`` μ (0.01), >= 0; the paper tunes it in {0.001, 0.01, 0.1, 1}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from edgefed.steps.aggregators.params import NonNegative
from edgefed.steps.strategies.fedavg import AveragingServer


def proximal_term(weights: Sequence[np.ndarray], global_weights: Sequence[np.ndarray], mu: float) -> float:
    """``μ/2 Σ_arrays ‖w - w_global‖²``: the value FedProx adds to an edge's loss (float64)."""
    total = 0.0
    for w, g in zip(weights, global_weights, strict=True):
        d = np.subtract(w, g, dtype=np.float64)
        total += float(np.vdot(d, d))
    return 0.5 * mu * total


@dataclass(kw_only=True)
class FedProx(AveragingServer):
    """FedAvg on the server; edges train with the proximal term ``μ/2 ‖w - w_global‖²``."""

    name: ClassVar[str] = "fedprox"
    mu: Annotated[NonNegative, Field(description="weight of the proximal term mu/2 ||w - w_global||²")] = 0.01

    def edge_settings(self) -> dict[str, Any]:
        return {"proximalMu": self.mu}


__all__ = ["FedProx", "proximal_term"]
