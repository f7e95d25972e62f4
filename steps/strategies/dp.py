"""Central differential privacy: clipped, noised FedAvg (DP-FedAvg) and its privacy accounting. Streaming.

McMahan, Ramage, Talwar, Zhang: "Learning Differentially Private Recurrent Language Models",
ICLR 2018. https://arxiv.org/abs/1710.06963 (fixed clipping, Gaussian noise).
Andrew, Thakkar, McMahan, Ramaswamy: "Differentially Private Learning with Adaptive Clipping",
NeurIPS 2021. https://arxiv.org/abs/1905.03871 (the clip follows a noised quantile, geometrically).

The same mechanism as TFF's ``tff.aggregators.DifferentiallyPrivateFactory.gaussian_fixed`` /
``gaussian_adaptive`` (tensorflow_privacy's ``NormalizedQuery`` over ``GaussianSumQuery`` /
``QuantileAdaptiveClipSumQuery``), applied to the model deltas ``Δ_k = w_k - w_global``::

    Δ̃_k   = Δ_k · C / max(‖Δ_k‖₂, C)                       (tf.clip_by_global_norm, all arrays at once)
    Δ̄     = (Σ_k Δ̃_k + N(0, (z_v C)² I)) / D             D = clients_per_round, else the count n
    w_new = w_global + η Δ̄

Unweighted, as TFF's DP mean: an edge's example count is not used (it would raise the
sensitivity). Fixed clipping: ``z_v = z``. Adaptive clipping: with b_k = 1[‖Δ_k‖ <= C],
``b̄ = clamp((Σ_k (b_k - ½) + N(0, σ_b²)) / D + ½, 0, 1)`` and ``C ← C · exp(-r (b̄ - γ))``;
``σ_b`` defaults to D/20 and ``z_v = (z⁻² - (2σ_b)⁻²)^(-½)`` so the two releases together have
noise multiplier z (TFF's ``adaptive_clip_noise_params``). The clip is server state.

Privacy: account with ``z`` (the effective total multiplier), the sampling rate q (edges per
round / population; 1.0 when all take part) and the number of rounds: :func:`epsilon_spent`,
:func:`noise_for_target` (``dp_accounting``'s RDP or PLD accountant; sampling is treated as
Poisson, as TFF's tutorials do). For the guarantee to hold, set ``clients_per_round``: dividing by
the actual count n makes the result depend on who took part. Noise comes from NumPy's PCG64
(seed it only in tests); like TF's, it is not a cryptographically secure generator.

Parameters (defaults): ``noise_multiplier`` z (None: 1.0, or the z that spends ``target_epsilon``
over ``planned_rounds``), >= 0; ``clip`` C (0.1), > 0, the clip or, adaptive, the initial clip;
``adaptive`` (False); ``target_unclipped_quantile`` γ (0.5), in [0, 1]; ``clip_learning_rate`` r
(0.2), >= 0; ``clipped_count_stddev`` σ_b (None: 0.05 D, 0 if z = 0); ``clients_per_round`` D
(None: the number of updates; required when adaptive); ``server_learning_rate`` η (1.0), > 0;
``seed`` (None: fresh OS entropy each round).

Accounting parameters: ``target_epsilon`` (None), > 0: the ε budget of ``planned_rounds`` rounds
(set it *or* ``noise_multiplier``, not both; z is then :func:`noise_for_target`'s smallest z that
stays within the budget); ``delta`` δ (1e-5), in (0, 1); ``planned_rounds`` (None; required with
``target_epsilon``), >= 1; ``accountant`` ("rdp"). After each round, :meth:`DPFedAvg.privacy_spent`
gives the (ε, δ) spent by every round aggregated so far: the state keeps a ledger of each round's
z (run-length encoded), composed with ``dp_accounting``, so a task whose z changed between rounds
is still accounted exactly. The sampling rate is 1.0: every edge of the task is asked to train in
every round (an edge that fails to report does not amplify privacy).

What the guarantee covers: the released models (the sequence of global weights). Per-edge lineage
the trusted server keeps beside them (each edge's training metrics, example count, rejection
reasons) is not noised.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from edgefed.steps.strategies.base import (
    KERNEL_CHUNK,
    DeltaSum,
    ServerState,
    Strategy,
    UpdateRejectedError,
    delta_norm,
)

Accountant = Literal["rdp", "pld"]


# -- kernels --------------------------------------------------------------------------------------


def clip_factor(norm: float, clip: float) -> float:
    """The scale ``C / max(‖Δ‖, C)`` that brings a delta of L2 norm ``norm`` within ``clip``."""
    return clip / max(norm, clip)


def adaptive_clip_noise_params(
    noise_multiplier: float, clients_per_round: float, clipped_count_stddev: float | None = None
) -> tuple[float, float]:
    """``(value_noise_multiplier, clipped_count_stddev)`` for adaptive clipping with total noise
    multiplier ``z`` (TFF's ``differential_privacy.adaptive_clip_noise_params``)."""
    if noise_multiplier <= 0:
        return 0.0, 0.0 if clipped_count_stddev is None else clipped_count_stddev
    if clipped_count_stddev is None:
        clipped_count_stddev = 0.05 * clients_per_round
    if noise_multiplier >= 2 * clipped_count_stddev:
        raise ValueError(
            f"clipped_count_stddev={clipped_count_stddev:g} is too low for noise_multiplier="
            f"{noise_multiplier:g}: needs noise_multiplier < 2 * clipped_count_stddev "
            "(raise clipped_count_stddev or clients_per_round, or lower noise_multiplier)"
        )
    value = (noise_multiplier**-2 - (2 * clipped_count_stddev) ** -2) ** -0.5
    return value, clipped_count_stddev


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


def add_gaussian_noise(
    arrays: Sequence[np.ndarray], stddev: float, rng: np.random.Generator, *, chunk: int = KERNEL_CHUNK
) -> None:
    """Add i.i.d. N(0, stddev²) to every element of ``arrays``, in place, a chunk at a time."""
    if stddev == 0:
        return
    for a in arrays:
        flat = a.reshape(-1)
        buf = np.empty(min(chunk, max(flat.size, 1)), a.dtype)
        for start in range(0, flat.size, chunk):
            stop = min(start + chunk, flat.size)
            noise = buf[: stop - start]
            rng.standard_normal(dtype=noise.dtype, out=noise)
            noise *= a.dtype.type(stddev)
            flat[start:stop] += noise


# -- the strategy ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class DPFedAvg(Strategy):
    """Clipped, Gaussian-noised, unweighted mean of the deltas (central DP; fixed or adaptive clip)."""

    name: ClassVar[str] = "dp-fedavg"
    streaming: ClassVar[bool] = True
    noise_multiplier: float | None = None
    clip: float = 0.1
    adaptive: bool = False
    target_unclipped_quantile: float = 0.5
    clip_learning_rate: float = 0.2
    clipped_count_stddev: float | None = None
    clients_per_round: float | None = None
    server_learning_rate: float = 1.0
    seed: int | None = None
    target_epsilon: float | None = None
    delta: float = 1e-5
    planned_rounds: int | None = None
    accountant: Accountant = "rdp"

    def validate(self) -> None:
        if self.noise_multiplier is not None:
            self._check_range("noise_multiplier", self.noise_multiplier, low=0)
            if self.target_epsilon is not None:
                raise self._fail(
                    "set noise_multiplier or target_epsilon, not both (the noise follows from the target)",
                    param="target_epsilon",
                )
        self._check_range("clip", self.clip, low=0, low_open=True)
        self._check_range("target_unclipped_quantile", self.target_unclipped_quantile, low=0, high=1)
        self._check_range("clip_learning_rate", self.clip_learning_rate, low=0)
        self._check_range("server_learning_rate", self.server_learning_rate, low=0, low_open=True)
        if self.clipped_count_stddev is not None:
            self._check_range("clipped_count_stddev", self.clipped_count_stddev, low=0)
        if self.clients_per_round is not None:
            self._check_range("clients_per_round", self.clients_per_round, low=0, low_open=True)
        self._check_range("delta", self.delta, low=0, high=1, low_open=True, high_open=True)
        if self.accountant not in ("rdp", "pld"):
            raise self._fail(f"accountant={self.accountant!r}: expected 'rdp' or 'pld'", param="accountant")
        if self.planned_rounds is not None and (
            not isinstance(self.planned_rounds, int) or self.planned_rounds < 1
        ):
            raise self._fail(
                f"planned_rounds={self.planned_rounds!r} breaks planned_rounds >= 1 (an integer)",
                param="planned_rounds",
            )
        self._z = self._resolve_noise_multiplier()
        if self.adaptive:
            if self.clients_per_round is None:
                raise self._fail(
                    "adaptive=True needs clients_per_round (the expected number of edges per round)",
                    param="clients_per_round",
                )
            try:
                adaptive_clip_noise_params(self._z, self.clients_per_round, self.clipped_count_stddev)
            except ValueError as err:
                param = "noise_multiplier" if self.target_epsilon is None else "target_epsilon"
                raise self._fail(str(err), param=param) from None

    def _resolve_noise_multiplier(self) -> float:
        if self.target_epsilon is None:
            return 1.0 if self.noise_multiplier is None else float(self.noise_multiplier)
        self._check_range("target_epsilon", self.target_epsilon, low=0, low_open=True)
        if self.planned_rounds is None:
            raise self._fail(
                "target_epsilon needs planned_rounds (the rounds the budget is spread over)",
                param="planned_rounds",
            )
        try:
            return _noise_for_target_cached(
                float(self.target_epsilon), float(self.delta), int(self.planned_rounds), 1.0, self.accountant
            )
        except ValueError as err:
            raise self._fail(str(err), param="target_epsilon") from None

    @property
    def effective_noise_multiplier(self) -> float:
        """The total noise multiplier z the accounting uses (given, the default 1.0, or from the target)."""
        return self._z

    @property
    def value_noise_multiplier(self) -> float:
        """The multiplier of the noise on the sum (z, or z_v > z with adaptive clipping)."""
        if not self.adaptive:
            return self._z
        return adaptive_clip_noise_params(self._z, self.clients_per_round, self.clipped_count_stddev)[0]

    def _begin(self, global_weights: list[np.ndarray], state: ServerState) -> None:
        self._clip = float(state.scalars.get("clip", self.clip)) if self.adaptive else self.clip
        self._sum = DeltaSum(global_weights)
        self._unclipped = 0

    def _add(self, update: Sequence[np.ndarray], examples: int, edge: str) -> None:
        norm = delta_norm(update, self._global)
        if not math.isfinite(norm):
            raise UpdateRejectedError(f"{self.name}: edge {edge!r}: the update has non-finite values")
        self._sum.add(update, clip_factor(norm, self._clip))
        self._unclipped += norm <= self._clip

    def _finish(self, global_weights: list[np.ndarray], state: ServerState) -> list[np.ndarray]:
        n = self._sum.count
        denominator = self.clients_per_round if self.clients_per_round is not None else float(n)
        rng = np.random.default_rng(None if self.seed is None else [self.seed, state.rounds])
        stddev = self.value_noise_multiplier * self._clip
        total = self._sum.sum
        add_gaussian_noise(total, stddev, rng)
        scale = self.server_learning_rate / denominator
        out = []
        for t, g in zip(total, global_weights, strict=True):
            t *= t.dtype.type(scale)
            t += g
            out.append(t)
        self.report = {"clip": self._clip, "noiseStddev": stddev, "denominator": denominator}
        if self.adaptive:
            _, count_stddev = adaptive_clip_noise_params(
                self._z, self.clients_per_round, self.clipped_count_stddev
            )
            noise = rng.normal(0.0, count_stddev) if count_stddev > 0 else 0.0
            fraction = (self._unclipped - 0.5 * n + noise) / denominator + 0.5
            state.scalars["clip"] = next_clip(
                self._clip,
                fraction,
                target_unclipped_quantile=self.target_unclipped_quantile,
                learning_rate=self.clip_learning_rate,
            )
            self.report["nextClip"] = state.scalars["clip"]
        state.scalars["privacyLedger"] = ledger_append(state.scalars.get("privacyLedger", []), self._z)
        return out

    def privacy_spent(self, state: ServerState) -> dict[str, Any]:
        """``{epsilon, delta, noiseMultiplier, rounds, accountant, samplingRate}`` of every round the
        state's ledger holds; ``epsilon`` is None when unbounded (a round without noise).
        ``targetEpsilon`` and ``plannedRounds`` are added when the noise came from a target."""
        ledger = state.scalars.get("privacyLedger", [])
        rounds = sum(int(k) for _, k in ledger)
        epsilon = epsilon_of_ledger(ledger, 1.0, self.delta, accountant=self.accountant)
        out: dict[str, Any] = {
            "epsilon": epsilon if math.isfinite(epsilon) else None,
            "delta": self.delta,
            "noiseMultiplier": self._z,
            "rounds": rounds,
            "accountant": self.accountant,
            "samplingRate": 1.0,
        }
        if self.target_epsilon is not None:
            out["targetEpsilon"] = self.target_epsilon
            out["plannedRounds"] = self.planned_rounds
        return out

    def close(self) -> None:
        self._sum = None


def ledger_append(ledger: Sequence[Sequence[float]], noise_multiplier: float) -> list[list[float]]:
    """The run-length ledger ``[[z, rounds], ...]`` with one more round of multiplier ``z``."""
    out = [[float(z), int(k)] for z, k in ledger]
    if out and out[-1][0] == noise_multiplier:
        out[-1][1] += 1
    else:
        out.append([float(noise_multiplier), 1])
    return out


# -- accounting -----------------------------------------------------------------------------------


def _check_accounting(noise_multiplier: float, sampling_rate: float, rounds: int, delta: float) -> None:
    if not noise_multiplier >= 0:
        raise ValueError(f"noise_multiplier={noise_multiplier} breaks noise_multiplier >= 0")
    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling_rate={sampling_rate} breaks 0 < sampling_rate <= 1")
    if not (isinstance(rounds, int) and rounds >= 0):
        raise ValueError(f"rounds={rounds!r} breaks rounds >= 0 (an integer)")
    if not 0 < delta < 1:
        raise ValueError(f"delta={delta} breaks 0 < delta < 1")


def dp_event(noise_multiplier: float, sampling_rate: float, rounds: int) -> Any:
    """The ``dp_accounting`` event of ``rounds`` Gaussian releases, Poisson-subsampled at ``sampling_rate``."""
    import dp_accounting

    event = dp_accounting.GaussianDpEvent(noise_multiplier)
    if sampling_rate < 1:
        event = dp_accounting.PoissonSampledDpEvent(sampling_rate, event)
    return dp_accounting.SelfComposedDpEvent(event, rounds)


def _accountant(kind: Accountant) -> Any:
    from dp_accounting import pld, rdp

    if kind == "rdp":
        return rdp.RdpAccountant()
    if kind == "pld":
        return pld.PLDAccountant()
    raise ValueError(f"accountant={kind!r}: expected 'rdp' or 'pld'")


def epsilon_spent(
    noise_multiplier: float,
    sampling_rate: float,
    rounds: int,
    delta: float,
    *,
    accountant: Accountant = "rdp",
) -> float:
    """ε of ``rounds`` rounds of DP-FedAvg at ``delta`` (``inf`` when ``noise_multiplier`` is 0).

    ``sampling_rate``: edges per round / edge population (1.0 when every edge takes part).
    ``accountant``: "rdp" (Rényi DP, the usual and conservative choice) or "pld" (privacy loss
    distributions: tighter, slower).
    """
    _check_accounting(noise_multiplier, sampling_rate, rounds, delta)
    if rounds == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    acc = _accountant(accountant)
    return float(acc.compose(dp_event(noise_multiplier, sampling_rate, rounds)).get_epsilon(delta))


def epsilon_of_ledger(
    ledger: Sequence[Sequence[float]],
    sampling_rate: float,
    delta: float,
    *,
    accountant: Accountant = "rdp",
) -> float:
    """ε at ``delta`` of the rounds in a ``[[z, rounds], ...]`` ledger, composed (``inf`` if some z is 0)."""
    ledger = [(float(z), int(k)) for z, k in ledger if int(k) > 0]
    if not ledger:
        return 0.0
    if len({z for z, _ in ledger}) == 1:
        z = ledger[0][0]
        return epsilon_spent(z, sampling_rate, sum(k for _, k in ledger), delta, accountant=accountant)
    for z, k in ledger:
        _check_accounting(z, sampling_rate, k, delta)
    if any(z == 0 for z, _ in ledger):
        return math.inf
    import dp_accounting

    events = [dp_event(z, sampling_rate, k) for z, k in ledger]
    acc = _accountant(accountant)
    return float(acc.compose(dp_accounting.ComposedDpEvent(events)).get_epsilon(delta))


@functools.lru_cache(maxsize=64)
def _noise_for_target_cached(
    epsilon: float, delta: float, rounds: int, sampling_rate: float, accountant: Accountant
) -> float:
    return noise_for_target(epsilon, delta, rounds, sampling_rate, accountant=accountant)


def noise_for_target(
    epsilon: float,
    delta: float,
    rounds: int,
    sampling_rate: float = 1.0,
    *,
    accountant: Accountant = "rdp",
    tol: float = 1e-4,
) -> float:
    """The smallest noise multiplier (within ``tol``) whose ``epsilon_spent`` is at most ``epsilon``.

    Brackets the answer by doubling/halving, then bisects (``dp_accounting.calibrate_dp_mechanism``
    with an explicit bracket); the returned value never exceeds the ε budget.
    """
    from dp_accounting import mechanism_calibration

    if not epsilon > 0:
        raise ValueError(f"epsilon={epsilon} breaks epsilon > 0")
    _check_accounting(1.0, sampling_rate, rounds, delta)
    if rounds == 0:
        return 0.0

    def eps(z: float) -> float:
        return epsilon_spent(z, sampling_rate, rounds, delta, accountant=accountant)

    low, high = 0.5, 1.0
    while eps(high) > epsilon:
        low, high = high, high * 2
        if high > 2**20:
            raise ValueError(f"no noise multiplier below 2**20 reaches epsilon={epsilon} at delta={delta}")
    while eps(low) <= epsilon:
        low, high = low / 2, low
        if low < 1e-6:
            return high
    return float(
        mechanism_calibration.calibrate_dp_mechanism(
            lambda: _accountant(accountant),
            lambda z: dp_event(z, sampling_rate, rounds),
            epsilon,
            delta,
            mechanism_calibration.ExplicitBracketInterval(low, high),
            tol=tol,
        )
    )


__all__ = [
    "DPFedAvg",
    "adaptive_clip_noise_params",
    "add_gaussian_noise",
    "clip_factor",
    "dp_event",
    "epsilon_of_ledger",
    "epsilon_spent",
    "ledger_append",
    "next_clip",
    "noise_for_target",
]
