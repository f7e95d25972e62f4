"""FedAvg: example-weighted federated averaging. Streaming.

McMahan, Moore, Ramage, Hampson, Agüera y Arcas: "Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS 2017. https://arxiv.org/abs/1602.05629

``w_new = Σ_k n_k w_k / Σ_k n_k`` over the accepted updates, ``n_k`` the edge's example count: SGD with
η = 1 over the weighted :class:`~edgefed.steps.aggregators.Mean`, which computes it in point form (one
BLAS axpy per update into one float32 accumulator), so memory is one model whatever the number of edges.

Parameters: ``aggregator`` (None: the weighted mean), another aggregator over the updates, e.g.
``{name: median}`` (then FedAvg applies the median: the ``median`` strategy). A round whose updates all
report 0 examples has nothing to average and fails. Report: ``examples``, the total weight averaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from edgefed.steps.aggregators import SGD, Aggregator, Mean
from edgefed.steps.strategies.base import Composition, InnerAggregator, Strategy


def fedavg_composition(aggregator: Aggregator) -> Composition:
    """FedAvg's server: the aggregate applied as it is (SGD with η = 1)."""
    return Composition(SGD(learning_rate=1.0), aggregator)


@dataclass(kw_only=True)
class AveragingServer(Strategy):
    """The server side FedAvg and FedProx share: the example-weighted mean, applied with η = 1."""

    def _compose(self) -> Composition:
        return fedavg_composition(self._inner(Mean(weighted=True)))

    def _report(self, report: dict[str, Any]) -> dict[str, Any]:
        mean = next((p for p in self.composition.aggregator.parts() if isinstance(p, Mean)), None)
        if mean is not None and mean.weighted:
            report = {"examples": int(mean.total_weight), **report}
        return report


@dataclass(kw_only=True)
class FedAvg(AveragingServer):
    """Example-weighted mean of the updates (McMahan et al. 2017)."""

    name: ClassVar[str] = "fedavg"
    aggregator: InnerAggregator = None


__all__ = ["AveragingServer", "FedAvg", "fedavg_composition"]
