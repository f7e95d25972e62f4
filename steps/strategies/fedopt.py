"""Server optimizers on the FedAvg pseudo-gradient: FedAvgM, FedAdagrad, FedYogi, FedAdam. Streaming.

Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar, McMahan: "Adaptive Federated
Optimization", ICLR 2021. https://arxiv.org/abs/2003.00295 (Algorithm 2).
FedAvgM: Hsu, Qi, Brown: "Measuring the Effects of Non-Identical Data Distribution for
Federated Visual Classification", 2019. https://arxiv.org/abs/1909.06335

Each round, with ``x`` the global model and ``x_k`` edge k's trained weights::

    Δ   = Σ_k n_k (x_k - x) / Σ_k n_k            (weighted=True; 1/|S| Σ_k when False, as in Alg. 2)
    m   = β1 m + (1 - β1) Δ
    v   = v + Δ²                                  FedAdagrad
    v   = v - (1 - β2) Δ² sign(v - Δ²)            FedYogi
    v   = β2 v + (1 - β2) Δ²                      FedAdam
    x  += η m / (√v + τ)                          (η_t = η √(1-β2^t) / (1-β1^t) with bias_correction)

    FedAvgM:  u = μ u + Δ;  x += η u

``Δ`` points from the global model towards the edges (it is minus a gradient). TFF's server
optimizers take the gradient ``-Δ``: ``tff.learning.optimizers.build_sgdm(η, μ)`` is FedAvgM;
``build_adam(η, β1, β2, ε)`` is FedAdam with ``tau=ε, initial_accumulator=0,
bias_correction=True``; ``build_yogi(η, β1, β2, ε, v0)`` is FedYogi with ``tau=ε,
initial_accumulator=v0, bias_correction=True``; ``build_adagrad(η, v0, ε=0)`` is FedAdagrad
with ``beta_1=0, tau=0, initial_accumulator=v0`` (TFF puts its ε inside the square root).

The moments ``m``, ``v`` (and ``u``) are the server state: model-sized arrays persisted between
rounds. Memory: the state, one delta accumulator and one array-sized scratch, whatever the number
of edges (the mean of deltas is streamed with :class:`~edgefed.steps.strategies.base.DeltaSum`).

Parameters (defaults):

- all: ``server_learning_rate`` η (FedAvgM 1.0, FedAdagrad 0.1, FedAdam/FedYogi 0.01);
  ``weighted`` (True): weight edges by example count, as FedAvg; False is Algorithm 2's 1/|S|.
- FedAvgM: ``momentum`` μ (0.9), in [0, 1). With μ = 0 and η = 1 it is FedAvg.
- FedAdagrad, FedYogi, FedAdam: ``beta_1`` β1 (0.9; FedAdagrad 0.0), in [0, 1); ``tau`` τ, the
  degree of adaptivity (1e-3), >= 0; ``initial_accumulator`` v₀ (None: τ², Algorithm 2's
  ``v_{-1} >= τ²``), >= 0.
- FedYogi, FedAdam: ``beta_2`` β2 (0.99), in [0, 1); ``bias_correction`` (False, as Algorithm 2;
  True as Adam and TFF).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgefed.steps.strategies.base import DeltaSum, ServerState, Strategy, accumulator_dtype


@dataclass(kw_only=True)
class _ServerOptimizer(Strategy):
    """The streaming pseudo-gradient; subclasses apply one optimizer step to it."""

    streaming: ClassVar[bool] = True
    server_learning_rate: float = 1.0
    weighted: bool = True

    def validate(self) -> None:
        self._check_range("server_learning_rate", self.server_learning_rate, low=0, low_open=True)

    def _begin(self, global_weights: list[np.ndarray], state: ServerState) -> None:
        self._deltas = DeltaSum(global_weights)

    def _add(self, update: Sequence[np.ndarray], examples: int, edge: str) -> None:
        self._deltas.add(update, float(examples) if self.weighted else 1.0)

    def _finish(self, global_weights: list[np.ndarray], state: ServerState) -> list[np.ndarray]:
        try:
            delta = self._deltas.mean()
        except ValueError as err:
            raise self._fail(str(err)) from None
        self.report = {"pseudoGradientNorm": float(np.sqrt(sum(float(np.vdot(d, d)) for d in delta)))}
        return self._step(global_weights, delta, state)

    def close(self) -> None:
        self._deltas = None

    def _moment(self, state: ServerState, name: str, global_weights: list[np.ndarray], fill: float):
        """The state's ``name`` arrays (writable, checked against the model), or ``fill`` at round 1."""
        stored = state.get_list(name)
        if stored is None:
            return [np.full(g.shape, fill, accumulator_dtype(g.dtype)) for g in global_weights]
        if len(stored) != len(global_weights) or any(
            s.shape != g.shape for s, g in zip(stored, global_weights, strict=True)
        ):
            raise self._fail(f"server state {name!r} does not match the model's arrays")
        return [
            np.array(s, dtype=accumulator_dtype(g.dtype)) for s, g in zip(stored, global_weights, strict=True)
        ]

    def _step(self, x: list[np.ndarray], delta: list[np.ndarray], state: ServerState) -> list[np.ndarray]:
        raise NotImplementedError


@dataclass(kw_only=True)
class FedAvgM(_ServerOptimizer):
    """Server momentum on the pseudo-gradient (Hsu et al. 2019): ``u = μu + Δ; x += ηu``."""

    name: ClassVar[str] = "fedavgm"
    server_learning_rate: float = 1.0
    momentum: float = 0.9

    def validate(self) -> None:
        super().validate()
        self._check_range("momentum", self.momentum, low=0, high=1, high_open=True)

    def _step(self, x: list[np.ndarray], delta: list[np.ndarray], state: ServerState) -> list[np.ndarray]:
        u = self._moment(state, "momentum", x, 0.0)
        out = []
        for ui, di, xi in zip(u, delta, x, strict=True):
            ui *= ui.dtype.type(self.momentum)
            ui += di
            np.multiply(ui, ui.dtype.type(self.server_learning_rate), out=di)
            di += xi
            out.append(di)
        state.put_list("momentum", u)
        return out


@dataclass(kw_only=True)
class _Adaptive(_ServerOptimizer):
    """Algorithm 2 of Reddi et al.; subclasses say how the second moment ``v`` is updated."""

    server_learning_rate: float = 0.01
    beta_1: float = 0.9
    tau: float = 1e-3
    initial_accumulator: float | None = None

    def validate(self) -> None:
        super().validate()
        self._check_range("beta_1", self.beta_1, low=0, high=1, high_open=True)
        self._check_range("tau", self.tau, low=0)
        if self.initial_accumulator is not None:
            self._check_range("initial_accumulator", self.initial_accumulator, low=0)
        if self.tau == 0 and not self.initial_accumulator:
            raise self._fail(
                "tau=0 needs initial_accumulator > 0 (√v + τ would be 0 where the pseudo-gradient is 0)",
                param="tau",
            )

    @property
    def _v0(self) -> float:
        return self.tau**2 if self.initial_accumulator is None else self.initial_accumulator

    def _learning_rate(self, step: int) -> float:
        return self.server_learning_rate

    def _second_moment(self, v: np.ndarray, sq: np.ndarray, scratch: np.ndarray) -> None:
        """Update ``v`` in place from ``sq`` = Δ² (``scratch`` is free to overwrite)."""
        raise NotImplementedError

    def _step(self, x: list[np.ndarray], delta: list[np.ndarray], state: ServerState) -> list[np.ndarray]:
        m = self._moment(state, "m", x, 0.0)
        v = self._moment(state, "v", x, self._v0)
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
class FedAdagrad(_Adaptive):
    """Adagrad on the pseudo-gradient: ``v += Δ²`` (Reddi et al. 2021, Algorithm 2)."""

    name: ClassVar[str] = "fedadagrad"
    server_learning_rate: float = 0.1
    beta_1: float = 0.0

    def _second_moment(self, v: np.ndarray, sq: np.ndarray, scratch: np.ndarray) -> None:
        v += sq


@dataclass(kw_only=True)
class _WithBeta2(_Adaptive):
    beta_2: float = 0.99
    bias_correction: bool = False

    def validate(self) -> None:
        super().validate()
        self._check_range("beta_2", self.beta_2, low=0, high=1, high_open=True)

    def _learning_rate(self, step: int) -> float:
        if not self.bias_correction:
            return self.server_learning_rate
        return self.server_learning_rate * np.sqrt(1.0 - self.beta_2**step) / (1.0 - self.beta_1**step)


@dataclass(kw_only=True)
class FedYogi(_WithBeta2):
    """Yogi on the pseudo-gradient: ``v -= (1-β2) Δ² sign(v - Δ²)`` (Reddi et al. 2021, Algorithm 2)."""

    name: ClassVar[str] = "fedyogi"

    def _second_moment(self, v: np.ndarray, sq: np.ndarray, scratch: np.ndarray) -> None:
        np.subtract(v, sq, out=scratch)
        np.sign(scratch, out=scratch)
        scratch *= sq
        scratch *= scratch.dtype.type(1.0 - self.beta_2)
        v -= scratch


@dataclass(kw_only=True)
class FedAdam(_WithBeta2):
    """Adam on the pseudo-gradient: ``v = β2 v + (1-β2) Δ²`` (Reddi et al. 2021, Algorithm 2)."""

    name: ClassVar[str] = "fedadam"

    def _second_moment(self, v: np.ndarray, sq: np.ndarray, scratch: np.ndarray) -> None:
        v *= v.dtype.type(self.beta_2)
        sq_scaled = np.multiply(sq, sq.dtype.type(1.0 - self.beta_2), out=scratch)
        v += sq_scaled


__all__ = ["FedAdagrad", "FedAdam", "FedAvgM", "FedYogi"]
