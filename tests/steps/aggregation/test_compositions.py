"""Composed aggregation (edgefed.steps.aggregators) against independent NumPy/SciPy calculations.

FedAdam over a trimmed mean and DP (clip + Gaussian noise) over a median, written out here in float64;
a wrapper test double whose effect is visible proves that each wrapper really calls its inner part;
edge cases (one edge, zero weights, 0-d arrays); and the declarations: every range a strategy declares is
enforced the same way by the steps and by the spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from scipy import stats

from edgefed.steps.aggregators import (
    SGD,
    Aggregator,
    Contribution,
    CoordinateMedian,
    GaussianNoise,
    Mean,
    NormClip,
    RoundRandom,
    Screen,
    ServerState,
    UpdateRejectedError,
    params,
)
from edgefed.steps.aggregators.clipping import next_clip
from edgefed.steps.strategies import (
    STRATEGIES,
    Composition,
    DPFedAvg,
    FedAdam,
    FedAvg,
    Strategy,
    StrategyError,
    epsilon_spent,
    from_config,
)
from edgefed.workflows.errors import SpecError
from edgefed.workflows.spec import parse_task
from tests.helpers import task_doc
from tests.steps.aggregation.rounds import round_trip, run, updates_near

SHAPES = [(6, 4), (5,), ()]  # includes a 0-d array


def model(rng, dtype=np.float64):
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def deltas(ups, x, i):
    return np.stack([np.float64(u[i]) - np.float64(x[i]) for u in ups])


def global_norm(ups, x, k):
    return math.sqrt(sum(float(np.sum((np.float64(ups[k][i]) - x[i]) ** 2)) for i in range(len(x))))


# -- FedAdam over a trimmed mean ----------------------------------------------------------------------


def reference_adam(x, rounds, *, beta, lr, b1, b2, tau, v0, bias_correction):
    """Reddi et al.'s Algorithm 2 (Adam) with Δ_t the coordinate-wise β-trimmed mean of the deltas."""
    x = [np.float64(a) for a in x]
    m = [np.zeros_like(a) for a in x]
    v = [np.full_like(a, v0) for a in x]
    for t, ups in enumerate(rounds, start=1):
        new = []
        for i in range(len(x)):
            d = stats.trim_mean(deltas(ups, x, i), beta, axis=0)
            m[i] = b1 * m[i] + (1 - b1) * d
            v[i] = b2 * v[i] + (1 - b2) * d**2
            step = lr * math.sqrt(1 - b2**t) / (1 - b1**t) if bias_correction else lr
            new.append(x[i] + step * m[i] / (np.sqrt(v[i]) + tau))
        x = new
    return x


@pytest.mark.parametrize("bias_correction", [False, True])
@pytest.mark.parametrize("n", [1, 5, 9])
def test_fedadam_over_a_trimmed_mean_follows_adam_on_scipys_trim_mean(n, bias_correction):
    rng = np.random.default_rng(60 + n)
    x = model(rng)
    section = {
        "algorithm": "fedadam",
        "serverLearningRate": 0.05,
        "beta1": 0.9,
        "beta2": 0.99,
        "tau": 1e-3,
        "biasCorrection": bias_correction,
        "aggregator": {"name": "trimmed-mean", "beta": 0.2},
    }
    strategy = from_config(section)
    assert not strategy.streaming and strategy.composition.form == "delta"
    current, state, rounds = x, None, []
    for _ in range(3):
        ups = updates_near(rng, current, n, scale=0.05)
        ups[0] = [(a + 50.0).astype(a.dtype) for a in current]  # one wild edge: trimmed away when n >= 5
        rounds.append(ups)
        current, state = run(strategy, current, ups, rng.integers(0, 100, n).tolist(), state)
        state = round_trip(state)  # the moments survive serialisation
    expected = reference_adam(
        x, rounds, beta=0.2, lr=0.05, b1=0.9, b2=0.99, tau=1e-3, v0=1e-6, bias_correction=bias_correction
    )
    for got, want in zip(current, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert state.strategy == "fedadam" and state.rounds == 3 and len(state.get_list("v")) == len(SHAPES)
    assert strategy.report["trimmedPerEnd"] == int(0.2 * n)
    assert strategy.report["pseudoGradientNorm"] > 0 and strategy.report["updates"] == n


def test_trimmed_mean_needs_no_example_counts_but_the_mean_fails_on_zero_weights():
    rng = np.random.default_rng(61)
    x = model(rng)
    ups = updates_near(rng, x, 4)
    weights, _ = run(FedAdam(aggregator={"name": "trimmed-mean", "beta": 0.0}), x, ups, [0, 0, 0, 0])
    assert all(np.isfinite(w).all() for w in weights)
    with pytest.raises(StrategyError, match=r"^fedadam: no update with a positive weight to average$"):
        run(FedAdam(), x, ups, [0, 0, 0, 0])
    with pytest.raises(StrategyError, match="fedadam: the selected updates all report 0 examples"):
        run(FedAdam(aggregator={"name": "krum", "f": 0, "weighted": True}), x, ups, [0, 0, 0, 0])


# -- DP (clip + Gaussian noise) over a median ---------------------------------------------------------


def clipped_median(ups, x, clip):
    """Coordinate-wise median of each delta scaled by C / max(‖Δ_k‖, C), ‖·‖ over all arrays."""
    factors = [clip / max(global_norm(ups, x, k), clip) for k in range(len(ups))]
    return [
        np.median(deltas(ups, x, i) * np.array(factors).reshape(-1, *([1] * x[i].ndim)), axis=0)
        for i in range(len(x))
    ]


@pytest.mark.parametrize("n", [1, 4, 7])
def test_dp_over_a_median_is_the_median_of_clipped_deltas_plus_gaussian_noise(n):
    rng = np.random.default_rng(70 + n)
    x = model(rng)
    ups = updates_near(rng, x, n, scale=1.0)  # norms ~3: the clip of 1.0 binds
    z, clip, lr, seed = 1.3, 1.0, 0.5, 11
    strategy = DPFedAvg(
        noise_multiplier=z,
        clip=clip,
        server_learning_rate=lr,
        clients_per_round=10,
        seed=seed,
        aggregator={"name": "median"},
    )
    weights, state = run(strategy, x, ups, list(range(n)))
    # independently: the same seeded stream draws one standard normal per coordinate, array by array
    rng_noise = np.random.default_rng([seed, 0])
    median = clipped_median(ups, x, clip)
    for i, (w, a) in enumerate(zip(weights, x, strict=True)):
        noise = rng_noise.standard_normal(a.size, dtype=np.float64).reshape(a.shape) * z * clip / 10
        np.testing.assert_allclose(w, a + lr * (median[i] + noise), rtol=1e-12, atol=1e-12)
    assert strategy.report == {"clip": 1.0, "noiseStddev": z * clip, "denominator": 10, "updates": n}
    privacy = strategy.privacy_spent(state)
    assert privacy["epsilon"] == pytest.approx(epsilon_spent(z, 1.0, 1, 1e-5))
    assert privacy["rounds"] == 1 and "median" in privacy["sensitivity"]
    assert "sensitivity" not in DPFedAvg(noise_multiplier=z).privacy_spent(state)  # over the mean: proven


def test_adaptive_clip_over_a_median_moves_the_clip_towards_the_quantile():
    rng = np.random.default_rng(72)
    x = model(rng)
    ups = updates_near(rng, x, 5, scale=1.0)
    strategy = DPFedAvg(
        noise_multiplier=0.0,
        clip=2.5,
        adaptive=True,
        clients_per_round=5,
        clipped_count_stddev=0.0,
        aggregator={"name": "median"},
    )
    weights, state = run(strategy, x, ups)
    unclipped = sum(global_norm(ups, x, k) <= 2.5 for k in range(5))
    expected_clip = next_clip(
        2.5, (unclipped - 2.5) / 5 + 0.5, target_unclipped_quantile=0.5, learning_rate=0.2
    )
    assert state.scalars["clip"] == pytest.approx(expected_clip, rel=1e-12)
    for w, a, m in zip(weights, x, clipped_median(ups, x, 2.5), strict=True):
        np.testing.assert_allclose(w, a + m, rtol=1e-12, atol=1e-12)
    _, state = run(strategy, weights, ups, state=state)  # round 2 starts from round 1's clip
    assert strategy.report["clip"] == pytest.approx(expected_clip)


def test_dp_over_a_median_of_one_edge_is_its_clipped_delta():
    rng = np.random.default_rng(73)
    x = model(rng, dtype=np.float32)
    ups = updates_near(rng, x, 1, scale=2.0)
    weights, _ = run(DPFedAvg(noise_multiplier=0.0, clip=0.5, aggregator={"name": "median"}), x, ups)
    factor = 0.5 / global_norm(ups, [np.float64(a) for a in x], 0)
    for w, a, u in zip(weights, x, ups[0], strict=True):
        assert w.dtype == np.float32
        np.testing.assert_allclose(w, a + factor * (np.float64(u) - a), rtol=1e-5, atol=1e-6)


def test_dp_refuses_a_weighted_aggregator():
    with pytest.raises(StrategyError, match="dp-fedavg: aggregator mean with weighted=True") as info:
        DPFedAvg(aggregator={"name": "mean"})
    assert info.value.param == "aggregator"
    DPFedAvg(aggregator={"name": "mean", "weighted": False})  # the unweighted mean is DP-FedAvg itself


# -- wrappers call their inner part -------------------------------------------------------------------


@dataclass(kw_only=True)
class SumPlusOne(Aggregator):
    """Test double (TFF's ``SumPlusOneFactory``): the sum of the scaled deltas plus 1, every call recorded."""

    name: ClassVar[str] = "sum-plus-one"
    point_form: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.calls: list[str] = []
        self.scales: list[float] = []
        self.norms: list[float | None] = []

    def _begin(self, state: ServerState) -> None:
        self.calls.append("begin")
        self._sum = [np.zeros(r.shape) for r in self.reference]

    def add(self, item: Contribution) -> None:
        self.calls.append(f"add {item.edge}")
        self.scales.append(item.scale)
        self.norms.append(item.norm)
        for s, u, r in zip(self._sum, item.arrays, self.reference, strict=True):
            s += item.scale * (np.float64(u) - r)

    def finish(self) -> list[np.ndarray]:
        self.calls.append("finish")
        return [s + 1.0 for s in self._sum]

    def commit(self, state: ServerState) -> None:
        self.calls.append("commit")
        state.scalars["sumPlusOne"] = state.rounds


@dataclass(kw_only=True)
class Composed(Strategy):
    """A strategy over any composition (what a preset is), for the wrapper tests."""

    name: ClassVar[str] = "composed"
    built: ClassVar[Composition]

    def _compose(self) -> Composition:
        return self.built


def composed(aggregator: Aggregator, learning_rate: float = 1.0) -> Strategy:
    Composed.built = Composition(SGD(learning_rate=learning_rate), aggregator)
    return Composed()


def noise_around(inner: Aggregator, z: float) -> GaussianNoise:
    """Gaussian noise of multiplier ``z`` around ``inner`` (the denominator: the number of updates)."""
    return GaussianNoise(
        inner=inner,
        noise_multiplier=z,
        accounting_multiplier=z,
        denominator=None,
        delta=1e-5,
        accountant="rdp",
        random=RoundRandom(0),
    )


def test_clip_hands_its_inner_part_the_clip_factors_and_returns_what_it_finishes():
    x = [np.zeros(3), np.zeros(())]
    big, small = [np.array([3.0, 0.0, 4.0]), np.array(0.0)], [np.array([0.1, 0.0, 0.0]), np.array(0.0)]
    double = SumPlusOne()
    strategy = composed(NormClip(inner=double, clip=1.0))
    weights, state = run(strategy, x, [big, small])
    assert double.calls == ["begin", "add edge-0", "add edge-1", "finish", "commit"]
    assert double.scales == pytest.approx([1 / 5, 1.0]) and double.norms == pytest.approx([1.0, 0.1])
    np.testing.assert_allclose(weights[0], [0.6 + 0.1 + 1, 1, 0.8 + 1])  # Σ clipped deltas + 1, then x + that
    assert state.scalars["sumPlusOne"] == 0 and strategy.report["clip"] == 1.0


def test_noise_and_screen_wrap_their_inner_parts():
    x = [np.zeros(4)]
    ups = [[np.full(4, 0.5)], [np.full(4, 2.0)]]
    double = SumPlusOne()
    noise = noise_around(NormClip(inner=double, clip=10.0), 0.0)
    strategy = composed(Screen(inner=noise, max_norm=5.0))
    weights, state = run(strategy, x, ups)
    np.testing.assert_allclose(weights[0], 2.5 + 1.0)  # no noise at z = 0: exactly the double's result
    assert double.norms == pytest.approx([1.0, 4.0])  # the screen's norms reach the clip and its inner part
    assert state.scalars["privacyLedger"] == [[0.0, 1]] and strategy.report["denominator"] == 2
    strategy.begin(x)
    with pytest.raises(UpdateRejectedError, match="exceeds max_norm 5"):
        strategy.add([np.full(4, 10.0)], 1, "wild")  # ‖Δ‖ = 20: refused before any inner part sees it
    assert double.calls[-1] == "begin"
    with pytest.raises(TypeError, match="gaussian noise wraps a clip"):
        noise_around(double, 1.0)


def test_point_form_is_chosen_only_for_plain_application_over_a_point_aggregator():
    assert FedAvg().composition.form == "point"  # FedAvg: one axpy per update, as before
    assert from_config({"algorithm": "fedavg", "aggregator": {"name": "median"}}).composition.form == "point"
    assert FedAdam().composition.form == "delta"
    assert DPFedAvg(aggregator={"name": "median"}).composition.form == "delta"
    assert composed(CoordinateMedian(), learning_rate=0.5).composition.form == "delta"


def test_fedavg_over_a_median_is_the_median_strategy():
    rng = np.random.default_rng(74)
    x = model(rng, dtype=np.float32)
    ups = updates_near(rng, x, 6)
    a, _ = run(from_config({"algorithm": "fedavg", "aggregator": {"name": "median"}}), x, ups)
    b, _ = run(STRATEGIES["median"](), x, ups)
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p, q)


def test_mean_with_a_fixed_denominator_accepts_zero_weights():
    x = [np.zeros(2)]
    mean = Mean(weighted=True, denominator=4.0)
    weights, _ = run(composed(mean), x, [[np.ones(2)], [np.full(2, 3.0)]], [0, 0])
    np.testing.assert_allclose(weights[0], 0.0)  # weights 0: nothing counts, and nothing fails
    weights, _ = run(composed(Mean(weighted=False, denominator=4.0)), x, [[np.ones(2)], [np.full(2, 3.0)]])
    np.testing.assert_allclose(weights[0], 1.0)  # (1 + 3) / 4


# -- parameters declared once -------------------------------------------------------------------------


def test_every_strategy_parameter_is_declared_with_its_range():
    for cls in STRATEGIES.values():
        assert params.undeclared(cls) == [], cls.__name__


def out_of_range(param: params.Param) -> object | None:
    b = param.bounds
    if "lt" in b:
        return b["lt"]
    if "le" in b:
        return b["le"] + 1
    if "gt" in b:
        return b["gt"]
    if "ge" in b:
        return b["ge"] - 1
    return None


CASES = [
    (name, p) for name, cls in STRATEGIES.items() for p in params.declared(cls) if out_of_range(p) is not None
]


@pytest.mark.parametrize(("name", "param"), CASES, ids=[f"{n}.{p.camel}" for n, p in CASES])
def test_a_declared_range_is_enforced_by_the_steps_and_by_the_spec(name, param):
    """The same declaration rejects the same value in both planes, at the same parameter."""
    value = out_of_range(param)
    base = {"clientsPerRound": 5} if name == "dp-fedavg" else {}
    with pytest.raises(StrategyError) as info:
        from_config({"algorithm": name, **base, param.camel: value})
    assert info.value.param == param.name and str(info.value).startswith(f"{name}: {param.name}={value}")
    with pytest.raises(SpecError) as spec_info:
        parse_task(task_doc(aggregation={"algorithm": name, param.camel: value}))
    assert any(
        p.startswith(f"spec.aggregation.{param.camel}: Input should be") for p in spec_info.value.problems
    )
