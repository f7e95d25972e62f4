"""Coordinate-wise trimmed mean. Not streaming: updates are spooled to disk, memory is O(n x chunk).

Yin, Chen, Ramchandran, Bartlett: "Byzantine-Robust Distributed Learning: Towards Optimal
Statistical Rates", ICML 2018. https://arxiv.org/abs/1803.01498 (Option II, "trimmed mean").

For each coordinate, the k = ⌊β n⌋ largest and k smallest of the n values are dropped and the
remaining n - 2k averaged (the same cut as :func:`scipy.stats.trim_mean` with
``proportiontocut=β``: it never trims more than β n from an end). Unweighted: example counts are
ignored. Robust when fewer than β n updates per end are arbitrary (Byzantine). β = 0 is the plain
(unweighted) mean; with n = 1 nothing is trimmed.

Not streaming: ``add`` spools each update to a temporary file; ``finish`` partitions one ``(n, chunk)``
block of coordinates at a time. Peak RAM O(n x chunk).

Parameters: ``beta`` β (0.1), the fraction trimmed at each end, in [0, 0.5); ``chunk`` (None):
coordinates per block, None means ``2**20 // n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field

from edgefed.steps.aggregators.base import SpooledAggregator, SpooledParams


def trimmed_count(beta: float, n: int) -> int:
    """Values dropped at each end of ``n``: ⌊β n⌋ (scipy's ``int(proportiontocut * nobs)``)."""
    return int(beta * n)


@dataclass(kw_only=True)
class TrimmedMeanParams(SpooledParams):
    """The trimmed mean's parameters (also the ``trimmed-mean`` strategy's)."""

    beta: Annotated[float, Field(ge=0, lt=0.5, description="fraction trimmed at each end")] = 0.1


@dataclass(kw_only=True)
class CoordinateTrimmedMean(TrimmedMeanParams, SpooledAggregator):
    """Coordinate-wise β-trimmed mean of the updates (Yin et al. 2018)."""

    name: ClassVar[str] = "trimmed-mean"

    def finish(self) -> list[np.ndarray]:
        n = self.spool.rows
        k = trimmed_count(self.beta, n)
        out = self._empty_result()
        for i, start, stop, block in self._blocks():
            if k:
                block.partition((k, n - k - 1), axis=0)  # in place: rows k..n-k-1 are the middle
            out[i].reshape(-1)[start:stop] = block[k : n - k].mean(axis=0, dtype=np.float64)
        self.report = {"trimmedPerEnd": k}
        return out


__all__ = ["CoordinateTrimmedMean", "TrimmedMeanParams", "trimmed_count"]
