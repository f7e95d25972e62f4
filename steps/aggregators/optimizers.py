"""Server optimizers: how the round's aggregate delta Δ moves the global model x. On top of any aggregator.

Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar, McMahan: "Adaptive Federated
Optimization", ICLR 2021. https://arxiv.org/abs/2003.00295 (Algorithm 2).
Hsu, Qi, Brown: "Measuring the Effects of Non-Identical Data Distribution for Federated Visual
Classification", 2019. https://arxiv.org/abs/1909.06335 (server momentum).

With Δ the aggregate of the deltas ``x_k - x`` (a mean for FedOpt; any aggregator here)::

    SGD       x += η Δ                               (η = 1 is plain FedAvg application)
    Momentum  u = μ u + Δ;  x += η u                  (FedAvgM)
    m   = β1 m + (1 - β1) Δ
    v   = v + Δ²                                      Adagrad
    v   = v - (1 - β2) Δ² sign(v - Δ²)                Yogi
    v   = β2 v + (1 - β2) Δ²                          Adam
    x  += η m / (√v + τ)                              (η_t = η √(1-β2^t) / (1-β1^t) with bias_correction)

``Δ`` points from the global model towards the edges (it is minus a gradient); TFF's server
optimizers take the gradient ``-Δ`` (see ``edgefed.steps.strategies.fedopt`` for the matching TFF
builders). The moments ``m``, ``v`` (``u``) are server state, model-sized arrays persisted between
rounds (``ServerState`` keys ``m``/``v``, ``momentum``). Memory: the state and one array-sized scratch.

SGD with η = 1 asks for the aggregate in point form (``x + Δ`` computed directly by the aggregator) and
returns it as is. Parameters are given by the strategy that builds the optimizer (it declares them,
with their defaults and ranges); here they are plain required fields.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefed.steps.aggregators.base import Form
from edgefed.steps.aggregators.errors import AggregatorError
from edgefed.steps.aggregators.kernels import accumulator_dtype
from edgefed.steps.aggregators.state import ServerState


class ServerOptimizer(ABC):
    """Applies the round's aggregate to the global weights. ``report`` holds facts about the step."""

    report: dict[str, Any]

    @property
    def point_form(self) -> bool:
        """Whether the optimizer takes the aggregate as the new weights (``x + Δ``) rather than Δ."""
        return False

    @abstractmethod
    def apply(
        self, x: list[np.ndarray], aggregate: list[np.ndarray], state: ServerState, form: Form
    ) -> list[np.ndarray]:
        """The new weights (accumulator dtype; ``aggregate`` may be overwritten); state updated in place."""


@dataclass(kw_only=True)
class SGD(ServerOptimizer):
    """``x += η Δ``: FedAvg's application of the aggregate (η = 1) or a scaled step (DP-FedAvg's η)."""

    learning_rate: float

    def __post_init__(self) -> None:
        self.report = {}

    @property
    def point_form(self) -> bool:
        return self.learning_rate == 1.0

    def apply(
        self, x: list[np.ndarray], aggregate: list[np.ndarray], state: ServerState, form: Form
    ) -> list[np.ndarray]:
        if form == "point":
            return aggregate
        for d, xi in zip(aggregate, x, strict=True):
            if self.learning_rate != 1.0:
                d *= d.dtype.type(self.learning_rate)
            d += xi
        return aggregate


@dataclass(kw_only=True)
class _PseudoGradient(ServerOptimizer):
    """The FedOpt family: a step on the pseudo-gradient Δ, reporting its norm."""

    learning_rate: float

    def __post_init__(self) -> None:
        self.report = {}

    def apply(
        self, x: list[np.ndarray], aggregate: list[np.ndarray], state: ServerState, form: Form
    ) -> list[np.ndarray]:
        if form != "delta":
            raise RuntimeError(f"{type(self).__name__} steps on deltas")
        self.report = {"pseudoGradientNorm": float(np.sqrt(sum(float(np.vdot(d, d)) for d in aggregate)))}
        return self._step(x, aggregate, state)

    @abstractmethod
    def _step(self, x: list[np.ndarray], delta: list[np.ndarray], state: ServerState) -> list[np.ndarray]:
        """The new weights; the moments updated in ``state``."""

    @staticmethod
    def _moment(state: ServerState, name: str, x: list[np.ndarray], fill: float) -> list[np.ndarray]:
        """The state's ``name`` arrays (writable, checked against the model), or ``fill`` at round 1."""
        stored = state.get_list(name)
        if stored is None:
            return [np.full(g.shape, fill, accumulator_dtype(g.dtype)) for g in x]
        if len(stored) != len(x) or any(s.shape != g.shape for s, g in zip(stored, x, strict=True)):
            raise AggregatorError(f"server state {name!r} does not match the model's arrays")
        return [np.array(s, dtype=accumulator_dtype(g.dtype)) for s, g in zip(stored, x, strict=True)]


@dataclass(kw_only=True)
class Momentum(_PseudoGradient):
    """Server momentum (Hsu et al. 2019): ``u = μu + Δ; x += ηu``."""

    momentum: float

    def _step(self, x: list[np.ndarray], delta: list[np.ndarray], state: ServerState) -> list[np.ndarray]:
        u = self._moment(state, "momentum", x, 0.0)
        out = []
        for ui, di, xi in zip(u, delta, x, strict=True):
            ui *= ui.dtype.type(self.momentum)
            ui += di
            np.multiply(ui, ui.dtype.type(self.learning_rate), out=di)
            di += xi
            out.append(di)
        state.put_list("momentum", u)
        return out


@dataclass(kw_only=True)
class _Adaptive(_PseudoGradient):
    """Algorithm 2 of Reddi et al.; subclasses say how the second moment ``v`` is updated."""

    beta_1: float
    tau: float
    initial_accumulator: float  # v0 (Algorithm 2's v_{-1}), resolved by the strategy

    def _learning_rate(self, step: int) -> float:
        return self.learning_rate

    @abstractmethod
    def _second_moment(self, v: np.ndarray, sq: np.ndarray, scratch: np.ndarray) -> None:
        """Update ``v`` in place from ``sq`` = Δ² (``scratch`` is free to overwrite)."""

    def _step(self, x: list[np.ndarray], delta: list[np.ndarray], state: ServerState) -> list[np.ndarray]:
        m = self._moment(state, "m", x, 0.0)
        v = self._moment(state, "v", x, self.initial_accumulator)
        lr = self._learning_rate(state.rounds + 1)
        out = []
        for mi, vi, di, xi in zip(m, v, delta, x, strict=True):
            t = mi.dtype.type
            s = np.empty_like(di)  # the one array-sized scratch
            np.multiply(di, t(1.0 - self.beta_1), out=s)
            mi *= t(self.beta_1)
            mi += s
            np.multiply(di, di, out=s)  # Δ²; di is free from here on
            self._second_moment(vi, s, di)
            np.sqrt(vi, out=s)
            s += t(self.tau)
            np.divide(mi, s, out=s)
            s *= t(lr)
            s += xi
            out.append(s)
        state.put_list("m", m)
        state.put_list("v", v)
        return out


@dataclass(kw_only=True)
class Adagrad(_Adaptive):
    """``v += Δ²`` (Reddi et al. 2021, Algorithm 2)."""

    def _second_moment(self, v: np.ndarray, sq: np.ndarray, scratch: np.ndarray) -> None:
        v += sq


@dataclass(kw_only=True)
class _WithBeta2(_Adaptive):
    beta_2: float
    bias_correction: bool

    def _learning_rate(self, step: int) -> float:
        if not self.bias_correction:
            return self.learning_rate
        return self.learning_rate * np.sqrt(1.0 - self.beta_2**step) / (1.0 - self.beta_1**step)


@dataclass(kw_only=True)
class Yogi(_WithBeta2):
    """``v -= (1-β2) Δ² sign(v - Δ²)`` (Reddi et al. 2021, Algorithm 2)."""

    def _second_moment(self, v: np.ndarray, sq: np.ndarray, scratch: np.ndarray) -> None:
        np.subtract(v, sq, out=scratch)
        np.sign(scratch, out=scratch)
        scratch *= sq
        scratch *= scratch.dtype.type(1.0 - self.beta_2)
        v -= scratch


@dataclass(kw_only=True)
class Adam(_WithBeta2):
    """``v = β2 v + (1-β2) Δ²`` (Reddi et al. 2021, Algorithm 2)."""

    def _second_moment(self, v: np.ndarray, sq: np.ndarray, scratch: np.ndarray) -> None:
        v *= v.dtype.type(self.beta_2)
        sq_scaled = np.multiply(sq, sq.dtype.type(1.0 - self.beta_2), out=scratch)
        v += sq_scaled


__all__ = ["SGD", "Adagrad", "Adam", "Momentum", "ServerOptimizer", "Yogi"]
