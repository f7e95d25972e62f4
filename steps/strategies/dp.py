"""Central differential privacy: clipped, noised FedAvg (DP-FedAvg) and its privacy accounting. Streaming.

McMahan, Ramage, Talwar, Zhang: "Learning Differentially Private Recurrent Language Models",
ICLR 2018. https://arxiv.org/abs/1710.06963 (fixed clipping, Gaussian noise).
Andrew, Thakkar, McMahan, Ramaswamy: "Differentially Private Learning with Adaptive Clipping",
NeurIPS 2021. https://arxiv.org/abs/1905.03871 (the clip follows a noised quantile, geometrically).

The same mechanism as TFF's ``tff.aggregators.DifferentiallyPrivateFactory.gaussian_fixed`` /
``gaussian_adaptive`` (tensorflow_privacy's ``NormalizedQuery`` over ``GaussianSumQuery`` /
``QuantileAdaptiveClipSumQuery``), applied to the model deltas ``Δ_k = w_k - w_global``; as a
composition of :mod:`edgefed.steps.aggregators`, SGD(η) over GaussianNoise over NormClip over the
unweighted Mean with denominator D::

    Δ̃_k   = Δ_k · C / max(‖Δ_k‖₂, C)                       (tf.clip_by_global_norm, all arrays at once)
    Δ̄     = (Σ_k Δ̃_k + N(0, (z_v C)² I)) / D             D = clients_per_round, else the count n
    w_new = w_global + η Δ̄

Unweighted, as TFF's DP mean: an edge's example count is not used (it would raise the
sensitivity). Fixed clipping: ``z_v = z``. Adaptive clipping: with b_k = 1[‖Δ_k‖ <= C],
``b̄ = clamp((Σ_k (b_k - ½) + N(0, σ_b²)) / D + ½, 0, 1)`` and ``C ← C · exp(-r (b̄ - γ))``;
``σ_b`` defaults to D/20 and ``z_v = (z⁻² - (2σ_b)⁻²)^(-½)`` so the two releases together have
noise multiplier z (TFF's ``adaptive_clip_noise_params``). The clip is server state.

With ``aggregator`` (``{name: median}``, ``{name: trimmed-mean, ...}``, ``{name: krum, ...}``; never
weighted) the clipped deltas go to that aggregator instead of the mean and the noise is calibrated as
for the mean (std z_v C / D on the aggregate); the privacy entry then says the figure assumes the
mean's sensitivity C / D, which is not proven for those aggregators.

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
``seed`` (None: fresh OS entropy each round); ``aggregator`` (None: the unweighted mean).

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

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from edgefed.steps.aggregators import SGD, GaussianNoise, Mean, NormClip, RoundRandom, ServerState
from edgefed.steps.aggregators.accounting import (
    dp_event,
    epsilon_of_ledger,
    epsilon_spent,
    ledger_append,
    noise_for_target,
    noise_for_target_cached,
)
from edgefed.steps.aggregators.clipping import next_clip
from edgefed.steps.aggregators.kernels import add_gaussian_noise, clip_factor
from edgefed.steps.aggregators.params import NonNegative, Positive
from edgefed.steps.strategies.base import Composition, InnerAggregator, Strategy


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


@dataclass(kw_only=True)
class DPFedAvg(Strategy):
    """Clipped, Gaussian-noised, unweighted mean of the deltas (central DP; fixed or adaptive clip)."""

    name: ClassVar[str] = "dp-fedavg"
    noise_multiplier: Annotated[
        float | None, Field(ge=0, description="z; default 1.0 unless targetEpsilon")
    ] = None
    clip: Annotated[Positive, Field(description="L2 clip of each delta (initial clip when adaptive)")] = 0.1
    adaptive: Annotated[bool, Field(description="adapt the clip towards a quantile of the norms")] = False
    target_unclipped_quantile: Annotated[
        float, Field(ge=0, le=1, description="adaptive: the fraction of deltas the clip should leave alone")
    ] = 0.5
    clip_learning_rate: Annotated[NonNegative, Field(description="adaptive: the clip's geometric step")] = 0.2
    clipped_count_stddev: Annotated[
        float | None, Field(ge=0, description="adaptive: noise on the unclipped count; default 0.05 D")
    ] = None
    clients_per_round: Annotated[
        float | None, Field(gt=0, description="D, the fixed denominator; default the number of updates")
    ] = None
    server_learning_rate: Annotated[Positive, Field(description="the server's step size η")] = 1.0
    seed: Annotated[int | None, Field(description="noise seed (tests only); default fresh entropy")] = None
    target_epsilon: Annotated[
        float | None, Field(gt=0, description="the ε budget over plannedRounds (instead of noiseMultiplier)")
    ] = None
    delta: Annotated[float, Field(gt=0, lt=1, description="δ of the (ε, δ) guarantee")] = 1e-5
    planned_rounds: Annotated[
        int | None, Field(gt=0, description="the rounds the ε budget is spread over")
    ] = None
    accountant: Annotated[
        Literal["rdp", "pld"], Field(description="Rényi DP or privacy loss distributions")
    ] = "rdp"
    aggregator: InnerAggregator = None

    def _rules(self) -> None:
        if self.noise_multiplier is not None and self.target_epsilon is not None:
            raise self._fail(
                "set noise_multiplier or target_epsilon, not both (the noise follows from the target)",
                param="target_epsilon",
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
        if self.planned_rounds is None:
            raise self._fail(
                "target_epsilon needs planned_rounds (the rounds the budget is spread over)",
                param="planned_rounds",
            )
        try:
            return noise_for_target_cached(
                float(self.target_epsilon), float(self.delta), int(self.planned_rounds), 1.0, self.accountant
            )
        except ValueError as err:
            raise self._fail(str(err), param="target_epsilon") from None

    def _compose(self) -> Composition:
        denominator = self.clients_per_round
        inner = self._inner(Mean(weighted=False))
        if getattr(inner, "weighted", False):
            raise self._fail(
                f"aggregator {inner.name} with weighted=True: a DP aggregate must not weight edges by their "
                "example counts (that raises the sensitivity); set weighted: false",
                param="aggregator",
            )
        if isinstance(inner, Mean):
            inner = dataclasses.replace(inner, denominator=denominator)
        random = RoundRandom(self.seed)
        value_multiplier, count_stddev = self._z, 0.0
        if self.adaptive:
            value_multiplier, count_stddev = adaptive_clip_noise_params(
                self._z, self.clients_per_round, self.clipped_count_stddev
            )
        clip = NormClip(
            inner=inner,
            clip=self.clip,
            adaptive=self.adaptive,
            target_unclipped_quantile=self.target_unclipped_quantile,
            learning_rate=self.clip_learning_rate,
            count_stddev=count_stddev,
            denominator=denominator,
            random=random,
        )
        noise = GaussianNoise(
            inner=clip,
            noise_multiplier=value_multiplier,
            accounting_multiplier=self._z,
            denominator=denominator,
            delta=self.delta,
            accountant=self.accountant,
            random=random,
        )
        return Composition(SGD(learning_rate=self.server_learning_rate), noise)

    @property
    def effective_noise_multiplier(self) -> float:
        """The total noise multiplier z the accounting uses (given, the default 1.0, or from the target)."""
        return self._z

    @property
    def value_noise_multiplier(self) -> float:
        """The multiplier of the noise on the sum (z, or z_v > z with adaptive clipping)."""
        return self._noise.noise_multiplier

    @property
    def _noise(self) -> GaussianNoise:
        return next(p for p in self.composition.aggregator.parts() if isinstance(p, GaussianNoise))

    def privacy_spent(self, state: ServerState) -> dict[str, Any]:
        """``{epsilon, delta, noiseMultiplier, rounds, accountant, samplingRate}`` of every round the
        state's ledger holds; ``epsilon`` is None when unbounded (a round without noise).
        ``targetEpsilon`` and ``plannedRounds`` are added when the noise came from a target."""
        out = self._noise.privacy_spent(state)
        if self.target_epsilon is not None:
            out["targetEpsilon"] = self.target_epsilon
            out["plannedRounds"] = self.planned_rounds
        return out


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
