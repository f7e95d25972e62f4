"""Gaussian noise on the aggregate of clipped deltas, with its privacy ledger: a wrapper around a clip.

McMahan, Ramage, Talwar, Zhang: "Learning Differentially Private Recurrent Language Models",
ICLR 2018. https://arxiv.org/abs/1710.06963 (DP-FedAvg: clipped deltas, Gaussian noise, fixed D).

The noise half of TFF's ``DifferentiallyPrivateFactory.gaussian_fixed`` / ``gaussian_adaptive``
(tensorflow_privacy's ``NormalizedQuery`` over ``GaussianSumQuery``): around a
:class:`~edgefed.steps.aggregators.clipping.NormClip` (whose clip C is the sensitivity of a sum of
clipped deltas), it adds ``N(0, (z_v C / D)² I)`` to the inner aggregate, i.e. noise of std ``z_v C``
on the sum, normalised by D (``denominator``: the expected number of edges, else the count n). After
the round it appends the accounting multiplier z to the state's ledger (``scalars["privacyLedger"]``),
and :meth:`GaussianNoise.privacy_spent` gives the (ε, δ) of every round the ledger holds.

Over the mean this is DP-FedAvg and the guarantee is the Gaussian mechanism's: replacing one edge's
delta moves the mean by at most C / D. Over another aggregator (a median, a trimmed mean, Krum) the
noise is calibrated the same way, and the accounting states that it assumes the same sensitivity C / D;
it is not proven for them.

Parameters (given by the code that builds it, e.g. the ``dp-fedavg`` strategy): ``noise_multiplier``
z_v, the multiplier of the noise on the sum; ``accounting_multiplier`` z, the total multiplier the
ledger records (z_v = z without adaptive clipping); ``denominator`` D; ``delta`` δ and ``accountant``
("rdp" or "pld") for :meth:`GaussianNoise.privacy_spent`; ``random``, the round's generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgefed.steps.aggregators.accounting import Accountant, epsilon_of_ledger, ledger_append
from edgefed.steps.aggregators.base import Contribution, Wrapper
from edgefed.steps.aggregators.clipping import NormClip
from edgefed.steps.aggregators.kernels import RoundRandom, add_gaussian_noise
from edgefed.steps.aggregators.mean import Mean
from edgefed.steps.aggregators.state import ServerState


@dataclass(kw_only=True)
class GaussianNoise(Wrapper):
    """``N(0, (z_v C / D)²)`` added to a clipped aggregate; the round's z recorded for accounting."""

    name: ClassVar[str] = "gaussian-noise"
    inner: NormClip
    noise_multiplier: float
    accounting_multiplier: float
    denominator: float | None
    delta: float
    accountant: Accountant
    random: RoundRandom

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.inner, NormClip):
            raise TypeError(
                f"gaussian noise wraps a clip (its clip is the sensitivity the noise is scaled to), "
                f"found {type(self.inner).__name__}"
            )
        self._count = 0

    @property
    def over_mean(self) -> bool:
        """Whether the clipped aggregate is a mean (the case the Gaussian mechanism's guarantee covers)."""
        return isinstance(self.inner.inner, Mean)

    def _begin(self, state: ServerState) -> None:
        self._count = 0
        self.random.start(state.rounds)

    def add(self, item: Contribution) -> None:
        self.inner.add(item)
        self._count += 1

    def finish(self) -> list[np.ndarray]:
        out = self.inner.finish()
        denominator = self.denominator if self.denominator is not None else float(self._count)
        stddev = self.noise_multiplier * self.inner.current_clip  # on the sum of clipped deltas
        add_gaussian_noise(out, stddev / denominator, self.random.generator)
        self.report = {"noiseStddev": stddev, "denominator": denominator}
        return out

    def commit(self, state: ServerState) -> None:
        state.scalars["privacyLedger"] = ledger_append(
            state.scalars.get("privacyLedger", []), self.accounting_multiplier
        )
        self.inner.commit(state)

    def privacy_spent(self, state: ServerState) -> dict[str, Any]:
        """``{epsilon, delta, noiseMultiplier, rounds, accountant, samplingRate}`` of every round the
        state's ledger holds; ``epsilon`` is None when unbounded (a round without noise). Over another
        aggregator than the mean, ``sensitivity`` says what the figure assumes."""
        ledger = state.scalars.get("privacyLedger", [])
        rounds = sum(int(k) for _, k in ledger)
        epsilon = epsilon_of_ledger(ledger, 1.0, self.delta, accountant=self.accountant)
        out: dict[str, Any] = {
            "epsilon": epsilon if math.isfinite(epsilon) else None,
            "delta": self.delta,
            "noiseMultiplier": self.accounting_multiplier,
            "rounds": rounds,
            "accountant": self.accountant,
            "samplingRate": 1.0,
        }
        if not self.over_mean:
            out["sensitivity"] = (
                f"assumed clip / denominator for the {self.inner.inner.name} aggregator "
                "(proven for the mean only)"
            )
        return out


__all__ = ["GaussianNoise"]
