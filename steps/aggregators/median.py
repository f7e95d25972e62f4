"""Coordinate-wise median. Not streaming: updates are spooled to disk, memory is O(n x chunk).

Yin, Chen, Ramchandran, Bartlett: "Byzantine-Robust Distributed Learning: Towards Optimal
Statistical Rates", ICML 2018. https://arxiv.org/abs/1803.01498 (Option I, "median").

Each coordinate of the aggregate is the median of that coordinate over the n updates (for even n, the
mean of the two middle values, as :func:`numpy.median`). Unweighted: example counts are ignored, since
an edge could inflate its count to gain influence. Robust to fewer than n/2 arbitrary (Byzantine)
updates. In point form the median of the weights themselves; in delta form of the (scaled) deltas.

Not streaming: a median needs every update at once, so ``add`` appends each update to a temporary file
and ``finish`` reads back one ``(n, chunk)`` block of coordinates at a time. Peak RAM is O(n x chunk)
plus the result, not O(n x model); disk is n x model.

Parameters: ``chunk`` (None): coordinates per block; None means ``2**20 // n`` (a ~4 MB block of
float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgefed.steps.aggregators.base import SpooledAggregator


@dataclass(kw_only=True)
class CoordinateMedian(SpooledAggregator):
    """Coordinate-wise median of the updates (Yin et al. 2018)."""

    name: ClassVar[str] = "median"

    def finish(self) -> list[np.ndarray]:
        out = self._empty_result()
        for i, start, stop, block in self._blocks():
            out[i].reshape(-1)[start:stop] = np.median(block, axis=0, overwrite_input=True)
        return out


__all__ = ["CoordinateMedian"]
