"""Krum and Multi-Krum: keep the updates closest to their neighbours. Not streaming (spooled).

Blanchard, El Mhamdi, Guerraoui, Stainer: "Machine Learning with Adversaries: Byzantine Tolerant
Gradient Descent", NeurIPS 2017. https://arxiv.org/abs/1703.02757

With n updates of which at most f are Byzantine (the paper needs n > 2f + 2), each update's score
is the sum of squared L2 distances to its n - f - 2 nearest other updates; Krum keeps the update
with the lowest score, Multi-Krum averages the m lowest (m <= n - f). The composition: SGD with η = 1
over :class:`~edgefed.steps.aggregators.MultiKrum`. Report: ``selected`` (edges, best first) and
every edge's ``scores``.

Parameters: ``f`` (1): faulty updates tolerated, >= 0; ``m`` (1): updates selected, >= 1
(1 is Krum); ``weighted`` (False); ``chunk`` (None): coordinates per block, None means
``2**20 // n``. Rules on the round: n > 2f + 2 and m <= n - f (the spec checks the quorum against them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edgefed.steps.aggregators import KrumParams, MultiKrum
from edgefed.steps.aggregators.krum import krum_scores
from edgefed.steps.aggregators.params import values_of
from edgefed.steps.strategies.base import Composition, Strategy
from edgefed.steps.strategies.fedavg import fedavg_composition


@dataclass(kw_only=True)
class Krum(KrumParams, Strategy):
    """Krum (m = 1) and Multi-Krum (m > 1) selection (Blanchard et al. 2017)."""

    name: ClassVar[str] = "krum"

    def _compose(self) -> Composition:
        return fedavg_composition(MultiKrum(**values_of(self, KrumParams)))


__all__ = ["Krum", "krum_scores"]
