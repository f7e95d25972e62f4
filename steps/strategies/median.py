"""Coordinate-wise median. Not streaming: updates are spooled to disk, memory is O(n x chunk).

Yin, Chen, Ramchandran, Bartlett: "Byzantine-Robust Distributed Learning: Towards Optimal
Statistical Rates", ICML 2018. https://arxiv.org/abs/1803.01498 (Option I, "median").

Each coordinate of the new model is the median of that coordinate over the n accepted updates
(for even n, the mean of the two middle values, as :func:`numpy.median`). Unweighted: example
counts are ignored, since an edge could inflate its count to gain influence. Robust to fewer
than n/2 arbitrary (Byzantine) updates. The composition: SGD with η = 1 over
:class:`~edgefed.steps.aggregators.CoordinateMedian` (the median of the weights, computed directly).

Parameters: ``chunk`` (None): coordinates per block; None means ``2**20 // n`` (a ~4 MB block of
float32). The same aggregator under another optimizer or DP: ``aggregator: {name: median}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edgefed.steps.aggregators import CoordinateMedian, SpooledParams
from edgefed.steps.aggregators.params import values_of
from edgefed.steps.strategies.base import Composition, Strategy
from edgefed.steps.strategies.fedavg import fedavg_composition


@dataclass(kw_only=True)
class Median(SpooledParams, Strategy):
    """Coordinate-wise median of the updates (Yin et al. 2018)."""

    name: ClassVar[str] = "median"

    def _compose(self) -> Composition:
        return fedavg_composition(CoordinateMedian(**values_of(self, SpooledParams)))


__all__ = ["Median"]
