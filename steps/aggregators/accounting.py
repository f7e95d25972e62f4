"""Privacy accounting of Gaussian-noised rounds: ε spent, the noise for an ε budget, the round ledger.

Mironov: "Rényi Differential Privacy", CSF 2017. https://arxiv.org/abs/1702.07476 (the RDP accountant);
Koskela, Jälkö, Honkela: "Computing Tight Differential Privacy Guarantees Using FFT", AISTATS 2020.
https://arxiv.org/abs/1906.03049 (privacy loss distributions, the PLD accountant).

Each round releases one Gaussian mechanism of noise multiplier z (noise std z · C on a sum of deltas
clipped to C), Poisson-subsampled at rate q (edges per round / population; 1.0 when all take part);
``dp_accounting`` composes the rounds. The ledger ``[[z, rounds], ...]`` (run-length encoded, in the
server state) lets a task whose z changed between rounds be accounted exactly.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, Literal

Accountant = Literal["rdp", "pld"]


def ledger_append(ledger: Sequence[Sequence[float]], noise_multiplier: float) -> list[list[float]]:
    """The run-length ledger ``[[z, rounds], ...]`` with one more round of multiplier ``z``."""
    out = [[float(z), int(k)] for z, k in ledger]
    if out and out[-1][0] == noise_multiplier:
        out[-1][1] += 1
    else:
        out.append([float(noise_multiplier), 1])
    return out


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
def noise_for_target_cached(
    epsilon: float, delta: float, rounds: int, sampling_rate: float, accountant: Accountant
) -> float:
    """:func:`noise_for_target` remembered (a task's spec is validated, and its strategy built, often)."""
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
    "Accountant",
    "dp_event",
    "epsilon_of_ledger",
    "epsilon_spent",
    "ledger_append",
    "noise_for_target",
    "noise_for_target_cached",
]
