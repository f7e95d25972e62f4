"""Adaptive federated optimization: FedAvgM, FedAdagrad, FedYogi, FedAdam. Streaming over the mean.

Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar, McMahan: "Adaptive Federated
Optimization", ICLR 2021. https://arxiv.org/abs/2003.00295 (Algorithm 2).
FedAvgM: Hsu, Qi, Brown: "Measuring the Effects of Non-Identical Data Distribution for
Federated Visual Classification", 2019. https://arxiv.org/abs/1909.06335

Each strategy is a server optimizer of :mod:`edgefed.steps.aggregators.optimizers` (Momentum, Adagrad,
Yogi, Adam) over the pseudo-gradient ``Δ = Σ_k n_k (x_k - x) / Σ_k n_k`` (``weighted``; ``1/|S|`` when
False, as in Algorithm 2), or over the aggregate of another ``aggregator`` (FedAdam over a trimmed mean:
``{algorithm: fedadam, aggregator: {name: trimmed-mean, beta: 0.1}}``).

TFF's server optimizers take the gradient ``-Δ``: ``tff.learning.optimizers.build_sgdm(η, μ)`` is
FedAvgM; ``build_adam(η, β1, β2, ε)`` is FedAdam with ``tau=ε, initial_accumulator=0,
bias_correction=True``; ``build_yogi(η, β1, β2, ε, v0)`` is FedYogi with ``tau=ε,
initial_accumulator=v0, bias_correction=True``; ``build_adagrad(η, v0, ε=0)`` is FedAdagrad with
``beta_1=0, tau=0, initial_accumulator=v0`` (TFF puts its ε inside the square root).

The moments are server state, persisted between rounds. Memory over the mean: the state, one delta
accumulator and one array-sized scratch, whatever the number of edges.

Parameters (defaults):

- all: ``server_learning_rate`` η (FedAvgM 1.0, FedAdagrad 0.1, FedAdam/FedYogi 0.01), > 0;
  ``weighted`` (True): weight edges by example count, as FedAvg; ``aggregator`` (None: the mean).
- FedAvgM: ``momentum`` μ (0.9), in [0, 1). With μ = 0 and η = 1 it is FedAvg.
- FedAdagrad, FedYogi, FedAdam: ``beta_1`` β1 (0.9; FedAdagrad 0.0), in [0, 1); ``tau`` τ, the
  degree of adaptivity (1e-3), >= 0; ``initial_accumulator`` v₀ (None: τ², Algorithm 2's
  ``v_{-1} >= τ²``), >= 0. Rule: τ = 0 needs v₀ > 0.
- FedYogi, FedAdam: ``beta_2`` β2 (0.99), in [0, 1); ``bias_correction`` (False, as Algorithm 2;
  True as Adam and TFF).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

from pydantic import Field

from edgefed.steps.aggregators import Adagrad, Adam, Mean, MeanParams, Momentum, ServerOptimizer, Yogi
from edgefed.steps.aggregators.params import NonNegative, Positive, UnitInterval
from edgefed.steps.strategies.base import Composition, InnerAggregator, Strategy

ServerLearningRate = Annotated[Positive, Field(description="the server's step size η")]


@dataclass(kw_only=True)
class _FedOpt(MeanParams, Strategy):
    """A server optimizer over the mean of the deltas (or over the ``aggregator``'s aggregate)."""

    server_learning_rate: ServerLearningRate = 1.0
    aggregator: InnerAggregator = None

    def _rules(self) -> None:
        if self.aggregator is not None and not self.weighted:
            raise self._fail(
                "weighted=False is the default mean's; with an aggregator section, set the aggregator's own "
                "weighted (mean, krum)",
                param="weighted",
            )

    def _compose(self) -> Composition:
        return Composition(self._optimizer(), self._inner(Mean(weighted=self.weighted)))

    def _optimizer(self) -> ServerOptimizer:
        raise NotImplementedError


@dataclass(kw_only=True)
class FedAvgM(_FedOpt):
    """Server momentum on the pseudo-gradient (Hsu et al. 2019): ``u = μu + Δ; x += ηu``."""

    name: ClassVar[str] = "fedavgm"
    server_learning_rate: ServerLearningRate = 1.0
    momentum: UnitInterval = 0.9

    def _optimizer(self) -> ServerOptimizer:
        return Momentum(learning_rate=self.server_learning_rate, momentum=self.momentum)


@dataclass(kw_only=True)
class _Adaptive(_FedOpt):
    """Algorithm 2 of Reddi et al."""

    server_learning_rate: ServerLearningRate = 0.01
    beta_1: UnitInterval = 0.9
    tau: Annotated[NonNegative, Field(description="degree of adaptivity (TFF's epsilon)")] = 1e-3
    initial_accumulator: Annotated[float | None, Field(ge=0, description="v0; default tau**2")] = None

    def _rules(self) -> None:
        super()._rules()
        if self.tau == 0 and not self.initial_accumulator:
            raise self._fail(
                "tau=0 needs initial_accumulator > 0 (√v + τ would be 0 where the pseudo-gradient is 0)",
                param="tau",
            )

    @property
    def _v0(self) -> float:
        return self.tau**2 if self.initial_accumulator is None else self.initial_accumulator

    def _adaptive(self) -> dict[str, float]:
        return {
            "learning_rate": self.server_learning_rate,
            "beta_1": self.beta_1,
            "tau": self.tau,
            "initial_accumulator": self._v0,
        }


@dataclass(kw_only=True)
class FedAdagrad(_Adaptive):
    """Adagrad on the pseudo-gradient: ``v += Δ²`` (Reddi et al. 2021, Algorithm 2)."""

    name: ClassVar[str] = "fedadagrad"
    server_learning_rate: ServerLearningRate = 0.1
    beta_1: UnitInterval = 0.0

    def _optimizer(self) -> ServerOptimizer:
        return Adagrad(**self._adaptive())


@dataclass(kw_only=True)
class _WithBeta2(_Adaptive):
    beta_2: UnitInterval = 0.99
    bias_correction: Annotated[bool, Field(description="Adam's bias correction of the step size")] = False


@dataclass(kw_only=True)
class FedYogi(_WithBeta2):
    """Yogi on the pseudo-gradient: ``v -= (1-β2) Δ² sign(v - Δ²)`` (Reddi et al. 2021, Algorithm 2)."""

    name: ClassVar[str] = "fedyogi"

    def _optimizer(self) -> ServerOptimizer:
        return Yogi(**self._adaptive(), beta_2=self.beta_2, bias_correction=self.bias_correction)


@dataclass(kw_only=True)
class FedAdam(_WithBeta2):
    """Adam on the pseudo-gradient: ``v = β2 v + (1-β2) Δ²`` (Reddi et al. 2021, Algorithm 2)."""

    name: ClassVar[str] = "fedadam"

    def _optimizer(self) -> ServerOptimizer:
        return Adam(**self._adaptive(), beta_2=self.beta_2, bias_correction=self.bias_correction)


__all__ = ["FedAdagrad", "FedAdam", "FedAvgM", "FedYogi"]
