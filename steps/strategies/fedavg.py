"""FedAvg: example-weighted federated averaging. Streaming.

McMahan, Moore, Ramage, Hampson, Agüera y Arcas: "Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS 2017. https://arxiv.org/abs/1602.05629

``w_new = Σ_k n_k w_k / Σ_k n_k`` over the accepted updates, ``n_k`` the edge's example count.
The kernel is :class:`edgefed.steps.fedavg.WeightedMean` (one BLAS axpy per update into one
float32 accumulator), so memory is one model whatever the number of edges.

Parameters: none. A round whose updates all report 0 examples has nothing to average and fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgefed.steps.fedavg import WeightedMean
from edgefed.steps.strategies.base import ServerState, Strategy


@dataclass(kw_only=True)
class FedAvg(Strategy):
    """Example-weighted mean of the updates (McMahan et al. 2017)."""

    name: ClassVar[str] = "fedavg"
    streaming: ClassVar[bool] = True

    def _begin(self, global_weights: list[np.ndarray], state: ServerState) -> None:
        self._mean = WeightedMean()

    def _add(self, update: Sequence[np.ndarray], examples: int, edge: str) -> None:
        self._mean.add(update, examples)

    def _finish(self, global_weights: list[np.ndarray], state: ServerState) -> list[np.ndarray]:
        try:
            weights = self._mean.result()
        except ValueError as err:
            raise self._fail(str(err)) from None
        self.report = {"examples": int(self._mean.total_weight)}
        return weights

    def close(self) -> None:
        self._mean = None


__all__ = ["FedAvg"]
