"""Coordinate-wise trimmed mean. Not streaming: updates are spooled to disk, memory is O(n x chunk).

Yin, Chen, Ramchandran, Bartlett: "Byzantine-Robust Distributed Learning: Towards Optimal
Statistical Rates", ICML 2018. https://arxiv.org/abs/1803.01498 (Option II, "trimmed mean").

For each coordinate, the k = ⌊β n⌋ largest and k smallest of the n values are dropped and the
remaining n - 2k averaged (the same cut as :func:`scipy.stats.trim_mean` with
``proportiontocut=β``). Unweighted. β = 0 is the plain (unweighted) mean; with n = 1 nothing is
trimmed. The composition: SGD with η = 1 over :class:`~edgefed.steps.aggregators.CoordinateTrimmedMean`.

Parameters: ``beta`` β (0.1), the fraction trimmed at each end, in [0, 0.5); ``chunk`` (None):
coordinates per block, None means ``2**20 // n``. The same aggregator under FedAdam:
``{algorithm: fedadam, aggregator: {name: trimmed-mean, beta: 0.1}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edgefed.steps.aggregators import CoordinateTrimmedMean, TrimmedMeanParams
from edgefed.steps.aggregators.params import values_of
from edgefed.steps.aggregators.trimmed_mean import trimmed_count
from edgefed.steps.strategies.base import Composition, Strategy
from edgefed.steps.strategies.fedavg import fedavg_composition


@dataclass(kw_only=True)
class TrimmedMean(TrimmedMeanParams, Strategy):
    """Coordinate-wise β-trimmed mean of the updates (Yin et al. 2018)."""

    name: ClassVar[str] = "trimmed-mean"

    def _compose(self) -> Composition:
        return fedavg_composition(CoordinateTrimmedMean(**values_of(self, TrimmedMeanParams)))


__all__ = ["TrimmedMean", "trimmed_count"]
