"""Krum and Multi-Krum. Not streaming: updates are spooled to disk, memory is O(n x chunk + n²).

Blanchard, El Mhamdi, Guerraoui, Stainer: "Machine Learning with Adversaries: Byzantine Tolerant
Gradient Descent", NeurIPS 2017. https://arxiv.org/abs/1703.02757

With n updates of which at most f are faulty (Byzantine), each update i gets the score
``s(i) = Σ_{j ∈ N_i} ‖x_i - x_j‖²``, N_i its n - f - 2 nearest other updates. Krum (m = 1)
returns the update with the lowest score; Multi-Krum returns the mean of the m lowest-scoring
updates (the paper's average is unweighted; ``weighted=True`` weights it by example count, as
Flower does). The guarantee needs n > 2f + 2, checked when the round finishes; m may be at most
n - f (beyond that the selection must include a faulty update).

Not streaming: the pairwise squared distances are accumulated chunk by chunk from the spooled
updates (a Gram matrix of the deltas to the global model, in float64), so peak RAM is
O(n x chunk + n²); the selected updates are then averaged chunk by chunk.

Parameters: ``f`` (1): faulty updates tolerated, >= 0; ``m`` (1): updates selected, >= 1
(1 is Krum); ``weighted`` (False); ``chunk`` (None): coordinates per block, None means
``2**20 // n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgefed.steps.strategies.base import ServerState, SpooledStrategy, coordinate_chunks, default_chunk


def krum_scores(sq_distances: np.ndarray, f: int) -> np.ndarray:
    """Each row's sum of its n - f - 2 smallest off-diagonal entries of an (n, n) distance matrix."""
    n = sq_distances.shape[0]
    d = np.array(sq_distances, dtype=np.float64)
    np.fill_diagonal(d, np.inf)  # never one's own neighbour, whatever the ties
    closest = n - f - 2
    return np.sort(d, axis=1)[:, :closest].sum(axis=1)


@dataclass(kw_only=True)
class Krum(SpooledStrategy):
    """Krum (m = 1) and Multi-Krum (m > 1) selection (Blanchard et al. 2017)."""

    name: ClassVar[str] = "krum"
    f: int = 1
    m: int = 1
    weighted: bool = False

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.f, int) or self.f < 0:
            raise self._fail(f"f={self.f!r} breaks f >= 0 (an integer: faulty updates tolerated)", param="f")
        if not isinstance(self.m, int) or self.m < 1:
            raise self._fail(f"m={self.m!r} breaks m >= 1 (an integer: updates selected)", param="m")

    @property
    def min_updates(self) -> int:
        return max(2 * self.f + 3, self.m + self.f)

    def check_count(self, n: int) -> None:
        bound = 2 * self.f + 2
        if n <= bound:
            raise self._fail(f"f={self.f} needs n > 2f + 2 = {bound} updates, got {n}")
        if self.m > n - self.f:
            raise self._fail(f"m={self.m} needs m <= n - f = {n - self.f} with n={n} updates, f={self.f}")

    def _finish(self, global_weights: list[np.ndarray], state: ServerState) -> list[np.ndarray]:
        n = self._spool.rows
        gram = np.zeros((n, n), np.float64)
        for i, start, stop, block in self._blocks(global_weights):
            centred = block.astype(np.float64)
            centred -= global_weights[i].reshape(-1)[start:stop]
            gram += centred @ centred.T
        norms = np.diag(gram)
        distances = np.maximum(norms[:, None] + norms[None, :] - 2.0 * gram, 0.0)
        scores = krum_scores(distances, self.f)
        selected = np.argsort(scores, kind="stable")[: self.m]

        weights = np.array([self._examples[j] for j in selected], np.float64)
        if not self.weighted:
            weights[:] = 1.0
        if weights.sum() <= 0:
            raise self._fail("the selected updates all report 0 examples (weighted=True)")
        weights /= weights.sum()
        out = [np.empty(g.shape, self._spool.dtype) for g in global_weights]
        chunk = default_chunk(len(selected), self.chunk)
        rows = sorted(selected.tolist())
        row_weights = np.array([weights[list(selected).index(r)] for r in rows])
        for i, start, stop, offset in coordinate_chunks([g.shape for g in global_weights], chunk):
            block = self._spool.block(offset + start, offset + stop, rows)
            out[i].reshape(-1)[start:stop] = row_weights @ block.astype(np.float64)
        self.report = {
            "selected": [self._edges[j] for j in selected],
            "scores": {self._edges[j]: float(scores[j]) for j in range(n)},
        }
        return out


__all__ = ["Krum", "krum_scores"]
