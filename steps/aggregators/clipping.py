"""L2 norm clipping of each delta, fixed or adaptive: a wrapper around any aggregator. Streaming if its inner is.

McMahan, Ramage, Talwar, Zhang: "Learning Differentially Private Recurrent Language Models",
ICLR 2018. https://arxiv.org/abs/1710.06963 (fixed clipping).
Andrew, Thakkar, McMahan, Ramaswamy: "Differentially Private Learning with Adaptive Clipping",
NeurIPS 2021. https://arxiv.org/abs/1905.03871 (the clip follows a noised quantile, geometrically).

As TFF's ``tff.aggregators.clipping_factory`` (and the clip inside ``DifferentiallyPrivateFactory``):
each delta is projected onto the L2 ball of radius C before the inner aggregator sees it, all arrays
at once (``tf.clip_by_global_norm``)::

    Δ̃_k = Δ_k · C / max(‖Δ_k‖₂, C)

The inner aggregator gets the update with ``scale = C / max(‖Δ_k‖, C)``; its weight is unchanged.
Adaptive clipping: with b_k = 1[‖Δ_k‖ <= C], ``b̄ = clamp((Σ_k (b_k - ½) + N(0, σ_b²)) / D + ½, 0, 1)``
and ``C ← C · exp(-r (b̄ - γ))`` after the round; the clip is server state (``scalars["clip"]``).

Parameters (all given by the code that builds it, e.g. the ``dp-fedavg`` strategy): ``clip`` C, the
clip or, adaptive, the initial clip; ``adaptive``; ``target_unclipped_quantile`` γ and ``learning_rate``
r (adaptive only); ``count_stddev`` σ_b (the noise on the unclipped count; 0 for none); ``denominator`` D (None: the
number of updates); ``random``, the round's generator for the count noise (needed when σ_b > 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgefed.steps.aggregators.base import Contribution, Wrapper
from edgefed.steps.aggregators.errors import UpdateRejectedError
from edgefed.steps.aggregators.kernels import RoundRandom, clip_factor, delta_norm
from edgefed.steps.aggregators.state import ServerState


def next_clip(
    clip: float,
    unclipped_fraction: float,
    *,
    target_unclipped_quantile: float,
    learning_rate: float,
) -> float:
    """Geometric clip update of Andrew et al.: ``C · exp(-r (clamp(b̄, 0, 1) - γ))``."""
    below = min(1.0, max(0.0, unclipped_fraction))
    return clip * math.exp(-learning_rate * (below - target_unclipped_quantile))


@dataclass(kw_only=True)
class NormClip(Wrapper):
    """Clip each delta to L2 norm C (fixed, or adapted each round towards a quantile of the norms)."""

    name: ClassVar[str] = "clip"
    clip: float
    adaptive: bool = False
    target_unclipped_quantile: float | None = None
    learning_rate: float | None = None
    count_stddev: float = 0.0
    denominator: float | None = None
    random: RoundRandom | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.adaptive and (self.target_unclipped_quantile is None or self.learning_rate is None):
            raise ValueError("adaptive clipping needs target_unclipped_quantile and learning_rate")
        if self.adaptive and self.count_stddev > 0 and self.random is None:
            raise ValueError("adaptive clipping with count noise needs a RoundRandom")
        self.current_clip = self.clip
        self._unclipped = 0
        self._count = 0

    def _begin(self, state: ServerState) -> None:
        self.current_clip = float(state.scalars.get("clip", self.clip)) if self.adaptive else self.clip
        self._unclipped = 0
        self._count = 0
        if self.random is not None:
            self.random.start(state.rounds)

    def add(self, item: Contribution) -> None:
        norm = item.scale * delta_norm(item.arrays, self.reference) if item.norm is None else item.norm
        if not math.isfinite(norm):
            raise UpdateRejectedError(
                f"edge {item.edge!r}: the update has non-finite values (its norm cannot be clipped)"
            )
        factor = clip_factor(norm, self.current_clip)
        self.inner.add(item.scaled(factor, norm * factor))
        self._unclipped += norm <= self.current_clip
        self._count += 1

    def finish(self) -> list[np.ndarray]:
        out = self.inner.finish()
        self.report = {"clip": self.current_clip}
        return out

    def commit(self, state: ServerState) -> None:
        if self.adaptive:
            noise = self.random.generator.normal(0.0, self.count_stddev) if self.count_stddev > 0 else 0.0
            denominator = self.denominator if self.denominator is not None else float(self._count)
            fraction = (self._unclipped - 0.5 * self._count + noise) / denominator + 0.5
            state.scalars["clip"] = next_clip(
                self.current_clip,
                fraction,
                target_unclipped_quantile=self.target_unclipped_quantile,
                learning_rate=self.learning_rate,
            )
            self.report["nextClip"] = state.scalars["clip"]
        self.inner.commit(state)


__all__ = ["NormClip", "next_clip"]
