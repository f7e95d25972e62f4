"""Central differential privacy (DP-FedAvg) against tensorflow_privacy's queries and the analytic Gaussian
mechanism; its accounting against known figures. tensorflow_privacy and TFF are imported only inside the
tests that compare with them."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from edgefed.steps.strategies import DPFedAvg, epsilon_spent, noise_for_target
from edgefed.steps.strategies.dp import adaptive_clip_noise_params
from tests.steps.aggregation.rounds import run

# -- differential privacy -------------------------------------------------------------------------


def test_dp_clipping_bounds_each_update_norm():
    x = [np.zeros((100,), np.float32), np.zeros((), np.float32)]
    big = [np.full(100, 3.0, np.float32), np.array(4.0, np.float32)]  # ‖Δ‖ = √916
    small = [np.full(100, 0.001, np.float32), np.array(0.0, np.float32)]  # ‖Δ‖ = 0.01
    weights, _ = run(DPFedAvg(noise_multiplier=0.0, clip=0.5, clients_per_round=1), x, [big])
    assert math.sqrt(sum(float(np.sum(np.float64(w) ** 2)) for w in weights)) == pytest.approx(0.5, rel=1e-6)
    np.testing.assert_allclose(weights[0], 3.0 * 0.5 / math.sqrt(916), rtol=1e-6)  # direction kept
    weights, _ = run(DPFedAvg(noise_multiplier=0.0, clip=0.5), x, [big, small])
    expected = (np.float64(big[0]) * 0.5 / math.sqrt(916) + small[0]) / 2  # D = n = 2
    np.testing.assert_allclose(weights[0], expected, rtol=1e-6)


def test_dp_noise_std_is_z_c_over_d():
    size = 200_000
    x = [np.zeros(size, np.float32)]
    z, clip, d = 1.5, 0.3, 4
    strategy = DPFedAvg(noise_multiplier=z, clip=clip, clients_per_round=d, seed=5)
    weights, state = run(strategy, x, [x] * 4)  # zero deltas: the result is noise / D
    noise = np.float64(weights[0])
    assert abs(noise.mean()) < 5 * z * clip / d / math.sqrt(size)
    assert noise.std() == pytest.approx(z * clip / d, rel=0.01)
    assert strategy.report["noiseStddev"] == pytest.approx(z * clip)
    again, _ = run(strategy, x, [x] * 4, state=state)  # next round: fresh noise
    assert not np.array_equal(again[0], weights[0])


def test_dp_mean_agrees_with_tensorflow_privacy_queries(tff):
    import tensorflow as tf
    import tensorflow_privacy as tfp

    rng = np.random.default_rng(51)
    x = [np.zeros((20, 3), np.float32), np.zeros(3, np.float32)]
    records = [[rng.standard_normal(a.shape).astype(np.float32) * s for a in x] for s in (0.1, 1.0, 3.0)]

    def tfp_round(query, global_state, recs):
        params = query.derive_sample_params(global_state)
        sample = query.initial_sample_state([tf.constant(a) for a in x])
        for r in recs:
            sample = query.accumulate_record(params, sample, [tf.constant(a) for a in r])
        result, global_state, _ = query.get_noised_result(sample, global_state)
        return [t.numpy() for t in result], global_state

    # Fixed clipping, no noise: exactly TFF's gaussian_fixed mean.
    query = tfp.NormalizedQuery(tfp.GaussianSumQuery(l2_norm_clip=1.5, stddev=0.0), denominator=4.0)
    theirs, _ = tfp_round(query, query.initial_global_state(), records)
    ours, _ = run(DPFedAvg(noise_multiplier=0.0, clip=1.5, clients_per_round=4), x, records)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    # Adaptive clipping without noise: the same clip trajectory and results over 3 rounds.
    query = tfp.NormalizedQuery(
        tfp.QuantileAdaptiveClipSumQuery(
            initial_l2_norm_clip=0.5,
            noise_multiplier=0.0,
            target_unclipped_quantile=0.5,
            learning_rate=0.2,
            clipped_count_stddev=0.0,
            expected_num_records=3.0,
            geometric_update=True,
        ),
        denominator=3.0,
    )
    strategy = DPFedAvg(
        noise_multiplier=0.0, clip=0.5, adaptive=True, clients_per_round=3, clipped_count_stddev=0.0
    )
    global_state, state = query.initial_global_state(), None
    for _ in range(3):
        theirs, global_state = tfp_round(query, global_state, records)
        ours, state = run(strategy, x, records, state=state)
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
        their_clip = float(global_state.numerator_state.sum_state.l2_norm_clip)
        assert state.scalars["clip"] == pytest.approx(their_clip, rel=1e-6)

    # Noise: the same distribution (std z·C on the sum, then / D).
    query = tfp.NormalizedQuery(tfp.GaussianSumQuery(l2_norm_clip=0.3, stddev=0.3 * 1.5), denominator=4.0)
    big = [np.zeros(50_000, np.float32)]
    params = query.derive_sample_params(query.initial_global_state())
    sample = query.initial_sample_state([tf.constant(big[0])])
    sample = query.accumulate_record(params, sample, [tf.constant(big[0])])
    theirs, _, _ = query.get_noised_result(sample, query.initial_global_state())
    ours, _ = run(DPFedAvg(noise_multiplier=1.5, clip=0.3, clients_per_round=4, seed=1), big, [big])
    assert float(np.std(ours[0])) == pytest.approx(float(np.std(theirs[0].numpy())), rel=0.03)

    # Adaptive noise split: TFF's value noise multiplier and default clipped-count stddev.
    from tensorflow_federated.python.aggregators import differential_privacy

    for z, d in [(0.5, 100.0), (1.0, 50.0), (0.0, 10.0)]:
        assert adaptive_clip_noise_params(z, d) == pytest.approx(
            differential_privacy.adaptive_clip_noise_params(z, d)
        )


def analytic_gaussian_epsilon(sigma: float, delta: float) -> float:
    """Exact ε of one Gaussian mechanism of sensitivity 1 (Balle & Wang 2018, Theorem 8)."""
    from scipy.optimize import brentq

    def gap(eps):
        return (
            stats.norm.cdf(-eps * sigma + 1 / (2 * sigma))
            - math.exp(eps) * stats.norm.cdf(-eps * sigma - 1 / (2 * sigma))
            - delta
        )

    return brentq(gap, 0.0, 200.0)


@pytest.mark.parametrize(("z", "rounds"), [(1.0, 1), (2.0, 10), (5.0, 100)])
def test_epsilon_matches_the_analytic_gaussian_mechanism(z, rounds):
    # With every edge in every round, T Gaussian rounds of multiplier z are one of z/√T.
    exact = analytic_gaussian_epsilon(z / math.sqrt(rounds), 1e-5)
    assert epsilon_spent(z, 1.0, rounds, 1e-5, accountant="pld") == pytest.approx(exact, rel=1e-4)
    rdp = epsilon_spent(z, 1.0, rounds, 1e-5)
    assert exact <= rdp <= 1.2 * exact  # RDP is an upper bound, and not a loose one


def test_epsilon_of_a_subsampled_run_is_within_the_moments_accountant_value():
    # Abadi et al. 2016 (arXiv:1607.00133): q = 0.01, σ = 4, 10 000 steps, δ = 1e-5 -> ε ≈ 1.26
    # with the moments accountant; later RDP conversions and PLD are tighter.
    rdp = epsilon_spent(4.0, 0.01, 10_000, 1e-5)
    pld = epsilon_spent(4.0, 0.01, 10_000, 1e-5, accountant="pld")
    assert 0.8 < pld <= rdp <= 1.26


def test_epsilon_decreases_as_noise_grows_and_noise_for_target_round_trips():
    eps = [epsilon_spent(z, 0.1, 200, 1e-5) for z in (0.6, 0.8, 1.0, 1.5, 3.0)]
    assert all(a > b for a, b in itertools.pairwise(eps))
    assert epsilon_spent(0.0, 0.1, 200, 1e-5) == math.inf
    assert epsilon_spent(1.0, 0.1, 0, 1e-5) == 0.0
    for target, q, rounds in [(2.0, 0.1, 200), (8.0, 1.0, 50)]:
        z = noise_for_target(target, 1e-5, rounds, q)
        assert epsilon_spent(z, q, rounds, 1e-5) <= target
        assert epsilon_spent(z - 1e-2, q, rounds, 1e-5) > target  # and it is the smallest such z
    with pytest.raises(ValueError, match=r"sampling_rate=1\.5 breaks 0 < sampling_rate <= 1"):
        epsilon_spent(1.0, 1.5, 10, 1e-5)
