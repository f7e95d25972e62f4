"""Krum and Multi-Krum: keep the updates closest to their neighbours. Not streaming (spooled).

Blanchard, El Mhamdi, Guerraoui, Stainer: "Machine Learning with Adversaries: Byzantine Tolerant
Gradient Descent", NeurIPS 2017. https://arxiv.org/abs/1703.02757

With n updates of which at most f are Byzantine (the paper needs n > 2f + 2), each update's score
is the sum of squared L2 distances to its n - f - 2 nearest other updates; Krum keeps the update
with the lowest score, Multi-Krum averages the m lowest (m <= n - f). Distances come from one Gram
matrix of the deltas ``w_k - w_global`` built block by block from the spool (O(n²) memory, O(n x
chunk) for the blocks); the selected updates are then averaged chunk by chunk. In point form the
result is the average of the selected weights; in delta form of their (scaled) deltas.

Parameters: ``f`` (1): faulty updates tolerated, >= 0; ``m`` (1): updates selected, >= 1
(1 is Krum); ``weighted`` (False): average the selected by example count; ``chunk`` (None):
coordinates per block, None means ``2**20 // n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field

from edgefed.steps.aggregators.base import SpooledAggregator, SpooledParams
from edgefed.steps.aggregators.errors import AggregatorError
from edgefed.steps.aggregators.kernels import coordinate_chunks, default_chunk


def krum_scores(sq_distances: np.ndarray, f: int) -> np.ndarray:
    """Each row's sum of its n - f - 2 smallest off-diagonal entries of an (n, n) distance matrix."""
    n = sq_distances.shape[0]
    d = np.array(sq_distances, dtype=np.float64)
    np.fill_diagonal(d, np.inf)  # never one's own neighbour, whatever the ties
    closest = n - f - 2
    return np.sort(d, axis=1)[:, :closest].sum(axis=1)


@dataclass(kw_only=True)
class KrumParams(SpooledParams):
    """Krum's parameters (also the ``krum`` strategy's)."""

    f: Annotated[int, Field(ge=0, description="faulty (Byzantine) updates tolerated")] = 1
    m: Annotated[int, Field(ge=1, description="updates selected and averaged (1: Krum)")] = 1
    weighted: Annotated[bool, Field(description="average the selected updates by example count")] = False


@dataclass(kw_only=True)
class MultiKrum(KrumParams, SpooledAggregator):
    """Krum (m = 1) and Multi-Krum (m > 1) selection (Blanchard et al. 2017)."""

    name: ClassVar[str] = "krum"

    @property
    def min_updates(self) -> int:
        return max(2 * self.f + 3, self.m + self.f)

    def check_count(self, n: int) -> None:
        bound = 2 * self.f + 2
        if n <= bound:
            raise AggregatorError(f"f={self.f} needs n > 2f + 2 = {bound} updates, got {n}")
        if self.m > n - self.f:
            raise AggregatorError(
                f"m={self.m} needs m <= n - f = {n - self.f} with n={n} updates, f={self.f}"
            )

    def finish(self) -> list[np.ndarray]:
        n = self.spool.rows
        gram = np.zeros((n, n), np.float64)
        for i, start, stop, block in self._blocks():
            centred = block.astype(np.float64)
            if self.form == "point":
                centred -= self.reference[i].reshape(-1)[start:stop]
            gram += centred @ centred.T
        norms = np.diag(gram)
        distances = np.maximum(norms[:, None] + norms[None, :] - 2.0 * gram, 0.0)
        scores = krum_scores(distances, self.f)
        selected = np.argsort(scores, kind="stable")[: self.m]

        weights = np.array([self.weights[j] for j in selected], np.float64)
        if not self.weighted:
            weights[:] = 1.0
        if weights.sum() <= 0:
            raise AggregatorError("the selected updates all report 0 examples (weighted=True)")
        weights /= weights.sum()
        out = self._empty_result()
        chunk = default_chunk(len(selected), self.chunk)
        rows = sorted(selected.tolist())
        row_weights = np.array([weights[list(selected).index(r)] for r in rows])
        for i, start, stop, offset in coordinate_chunks([g.shape for g in self.reference], chunk):
            block = self.spool.block(offset + start, offset + stop, rows)
            out[i].reshape(-1)[start:stop] = row_weights @ block.astype(np.float64)
        self.report = {
            "selected": [self.edges[j] for j in selected],
            "scores": {self.edges[j]: float(scores[j]) for j in range(n)},
        }
        return out


__all__ = ["KrumParams", "MultiKrum", "krum_scores"]
