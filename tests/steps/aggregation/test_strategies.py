"""Aggregation strategies against independent calculations (NumPy, SciPy, TFF, tensorflow_privacy).

TensorFlow, TFF and tensorflow_privacy are imported only inside the tests (and fixtures) that
compare with them.
"""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from edgefed.steps.strategies import (
    STRATEGIES,
    DPFedAvg,
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedProx,
    FedYogi,
    Krum,
    Median,
    ServerState,
    StrategyError,
    TrimmedMean,
    UpdateRejectedError,
    from_config,
    parameters,
    proximal_term,
    screen,
)
from edgefed.steps.strategies.krum import krum_scores
from tests.steps.aggregation.rounds import round_trip, run, updates_near

SHAPES = [(7, 5), (3,), ()]  # includes a 0-d array


def model(rng: np.random.Generator, shapes=SHAPES, dtype=np.float32) -> list[np.ndarray]:
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


# -- the protocol -------------------------------------------------------------------------------


def default_instance(name):
    return STRATEGIES[name](clients_per_round=5) if name == "dp-fedavg" else STRATEGIES[name]()


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_runs_rounds_on_read_only_views_and_keeps_dtypes(name):
    rng = np.random.default_rng(1)
    x = model(rng)
    strategy = default_instance(name)
    state = None
    for _ in range(2):
        ups = updates_near(rng, x, 5)
        weights, state = run(strategy, x, ups, [3, 1, 4, 1, 5], state)  # read-only views
        assert [w.shape for w in weights] == [a.shape for a in x]
        assert [w.dtype for w in weights] == [a.dtype for a in x]
        assert all(np.isfinite(w).all() for w in weights)
        state = round_trip(state)
        x = weights
    assert state.rounds == 2 and state.strategy == name
    assert isinstance(strategy.streaming, bool)


def test_server_state_round_trips_arrays_and_scalars_without_pickle():
    state = ServerState("fedadam", scalars={"rounds": 3, "clip": 0.25, "note": "x"})
    state.put_list("m", [np.arange(6, dtype=np.float32).reshape(2, 3), np.array(2.5, np.float32)])
    state.arrays["extra"] = np.ones(2)
    back = round_trip(state)
    assert back.strategy == "fedadam" and back.scalars == state.scalars and back.rounds == 3
    assert sorted(back.arrays) == sorted(state.arrays)
    for got, want in zip(back.get_list("m"), state.get_list("m"), strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert back.get_list("v") is None
    from edgefed.steps import codec

    with pytest.raises(codec.CodecError, match="not a server state"):
        ServerState.from_bytes(codec.encode([np.ones(2)], {"examples": 1}))


def test_state_of_another_strategy_and_misuse_are_refused():
    x = [np.zeros(3, np.float32)]
    _, state = FedAdam().run(x, [([np.ones(3, np.float32)], 1, "a")])
    with pytest.raises(StrategyError, match="written by 'fedadam'"):
        FedYogi().begin(x, state)
    with pytest.raises(RuntimeError, match="before begin"):
        FedAvg().add(x, 1, "a")


def test_a_rejected_update_leaves_the_round_intact():
    x = [np.zeros((2, 2), np.float32)]
    strategy = FedAvg()
    strategy.begin(x)
    strategy.add([np.ones((2, 2), np.float32)], 2, "a")
    with pytest.raises(UpdateRejectedError, match=r"array 0: shape \(4,\)"):
        strategy.add([np.ones(4, np.float32)], 5, "b")
    with pytest.raises(UpdateRejectedError, match="has 2 arrays"):
        strategy.add([np.ones((2, 2), np.float32)] * 2, 5, "c")
    weights, _ = strategy.finish()
    np.testing.assert_array_equal(weights[0], 1.0)
    assert strategy.report["updates"] == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FedAdam(beta_1=1.0), r"fedadam: beta_1=1.0 breaks 0 <= beta_1 < 1"),
        (lambda: FedYogi(beta_2=-0.1), r"fedyogi: beta_2=-0.1 breaks 0 <= beta_2 < 1"),
        (lambda: FedAvgM(server_learning_rate=0), r"fedavgm: server_learning_rate=0 breaks 0 < server"),
        (lambda: FedAdagrad(tau=0), r"fedadagrad: tau=0 needs initial_accumulator > 0"),
        (lambda: FedAvgM(momentum=1.5), r"momentum=1.5 breaks 0 <= momentum < 1"),
        (lambda: TrimmedMean(beta=0.5), r"trimmed-mean: beta=0.5 breaks 0 <= beta < 0.5"),
        (lambda: Median(chunk=0), r"median: chunk=0 breaks chunk >= 1"),
        (lambda: Krum(f=-1), r"krum: f=-1 breaks f >= 0"),
        (lambda: Krum(m=0), r"krum: m=0 breaks m >= 1"),
        (lambda: FedProx(mu=-1.0), r"fedprox: mu=-1.0 breaks 0 <= mu"),
        (lambda: DPFedAvg(clip=0), r"dp-fedavg: clip=0 breaks 0 < clip"),
        (lambda: DPFedAvg(adaptive=True), r"adaptive=True needs clients_per_round"),
        (
            lambda: DPFedAvg(adaptive=True, clients_per_round=10, noise_multiplier=1.0),
            r"clipped_count_stddev=0.5 is too low for noise_multiplier=1",
        ),
    ],
)
def test_validation_names_the_parameter_and_the_rule(make, message):
    with pytest.raises(StrategyError, match=message):
        make()


def test_from_config_takes_the_spec_camel_case_and_refuses_unknown_keys():
    strategy = from_config(
        {"algorithm": "fedadam", "serverLearningRate": 0.1, "beta1": 0.8, "maxUpdateNorm": 5.0}
    )
    assert isinstance(strategy, FedAdam) and strategy.server_learning_rate == 0.1 and strategy.beta_1 == 0.8
    assert isinstance(from_config({}), FedAvg)
    assert from_config({"algorithm": "krum", "f": 2, "m": 3}).min_updates == 7
    with pytest.raises(
        StrategyError, match=r"krum: unknown parameter 'g' \(parameters: chunk, f, m, weighted\)"
    ):
        from_config({"algorithm": "krum", "g": 1})
    with pytest.raises(StrategyError, match=r"aggregation\.algorithm 'fedmagic'"):
        from_config({"algorithm": "fedmagic"})
    assert parameters(FedProx) == {"mu": 0.01}


# -- FedAvg -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7])
def test_fedavg_matches_numpy_average(n):
    rng = np.random.default_rng(n)
    x = model(rng)
    ups = updates_near(rng, x, n, scale=1.0)
    examples = rng.integers(1, 500, n).tolist()
    weights, _ = run(FedAvg(), x, ups, examples)
    for i in range(len(SHAPES)):
        expected = np.average(np.stack([u[i] for u in ups]), axis=0, weights=examples)
        np.testing.assert_allclose(weights[i], expected, rtol=1e-5, atol=1e-6)


def test_fedavg_with_only_zero_example_updates_fails_by_name():
    with pytest.raises(StrategyError, match="fedavg: no update with a positive weight"):
        FedAvg().run([np.zeros(2, np.float32)], [([np.ones(2, np.float32)], 0, "a")])


def test_fedprox_server_is_fedavg_and_its_term_is_half_mu_squared_distance():
    rng = np.random.default_rng(3)
    x = model(rng)
    ups = updates_near(rng, x, 4)
    a, _ = run(FedProx(mu=0.1), x, ups, [1, 2, 3, 4])
    b, _ = run(FedAvg(), x, ups, [1, 2, 3, 4])
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p, q)
    expected = (
        0.1
        / 2
        * sum(float(np.sum((np.float64(u) - np.float64(g)) ** 2)) for u, g in zip(ups[0], x, strict=True))
    )
    assert proximal_term(ups[0], x, 0.1) == pytest.approx(expected, rel=1e-12)
    assert FedProx(mu=0.1).edge_settings() == {"proximalMu": 0.1}


def test_fedprox_tf_loss_adds_mu_times_the_distance_to_the_gradient():
    import tensorflow as tf

    from edgefed.steps.strategies.fedprox_tf import fedprox_loss

    rng = np.random.default_rng(4)
    w = [tf.Variable(rng.standard_normal((3, 2)).astype(np.float32)), tf.Variable(np.float32(0.5))]
    g = [tf.constant(rng.standard_normal((3, 2)).astype(np.float32)), tf.constant(np.float32(-1.0))]
    data = tf.constant(rng.standard_normal((3, 2)).astype(np.float32))
    mu = 0.3
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(w[0] * data) + 2.0 * w[1]
        total = fedprox_loss(loss, w, g, mu)
    grads = tape.gradient(total, w)
    np.testing.assert_allclose(grads[0], data + mu * (w[0] - g[0]), rtol=1e-6)
    np.testing.assert_allclose(grads[1], 2.0 + mu * (w[1] - g[1]), rtol=1e-6)
    prox = proximal_term([v.numpy() for v in w], [c.numpy() for c in g], mu)
    assert float(total - loss) == pytest.approx(prox, rel=1e-5)
    assert fedprox_loss(loss, w, g, 0.0) is loss


# -- FedOpt: Reddi et al. 2021, Algorithm 2 -------------------------------------------------------


def reference_fedopt(kind, params, x, rounds_updates, rounds_examples):
    """Algorithm 2 of Reddi et al. (and FedAvgM), written out in float64, state kept here."""
    x = [np.float64(a) for a in x]
    eta = params["server_learning_rate"]
    m = [np.zeros_like(a) for a in x]
    tau = params.get("tau", 1e-3)
    v0 = params.get("initial_accumulator")
    v = [np.full_like(a, tau**2 if v0 is None else v0) for a in x]
    for t, (ups, ex) in enumerate(zip(rounds_updates, rounds_examples, strict=True), start=1):
        p = np.array(ex, np.float64) if params.get("weighted", True) else np.ones(len(ups))
        p = p / p.sum()
        delta = [
            sum(pk * (np.float64(u[i]) - x[i]) for pk, u in zip(p, ups, strict=True)) for i in range(len(x))
        ]
        new = []
        for i, d in enumerate(delta):
            if kind == "fedavgm":
                m[i] = params["momentum"] * m[i] + d
                new.append(x[i] + eta * m[i])
                continue
            b1 = params.get("beta_1", 0.0 if kind == "fedadagrad" else 0.9)
            b2 = params.get("beta_2", 0.99)
            m[i] = b1 * m[i] + (1 - b1) * d
            if kind == "fedadagrad":
                v[i] = v[i] + d**2
            elif kind == "fedyogi":
                v[i] = v[i] - (1 - b2) * d**2 * np.sign(v[i] - d**2)
            else:
                v[i] = b2 * v[i] + (1 - b2) * d**2
            lr = eta
            if params.get("bias_correction"):
                lr = eta * math.sqrt(1 - b2**t) / (1 - b1**t)
            new.append(x[i] + lr * m[i] / (np.sqrt(v[i]) + tau))
        x = new
    return x


FEDOPT_CASES = [
    (FedAvgM, {"server_learning_rate": 0.7, "momentum": 0.9}),
    (FedAvgM, {"server_learning_rate": 1.0, "momentum": 0.5, "weighted": False}),
    (FedAdagrad, {"server_learning_rate": 0.1, "tau": 1e-2}),
    (FedAdagrad, {"server_learning_rate": 0.1, "beta_1": 0.9, "tau": 1e-3, "initial_accumulator": 0.5}),
    (FedYogi, {"server_learning_rate": 0.05, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-3}),
    (FedYogi, {"server_learning_rate": 0.05, "tau": 1e-2, "bias_correction": True, "weighted": False}),
    (FedAdam, {"server_learning_rate": 0.02, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-3}),
    (FedAdam, {"server_learning_rate": 0.02, "beta_2": 0.999, "tau": 1e-4, "bias_correction": True}),
]


@pytest.mark.parametrize(("cls", "params"), FEDOPT_CASES)
def test_server_optimizers_follow_reddi_algorithm_2_over_three_rounds(cls, params):
    rng = np.random.default_rng(11)
    x = model(rng, dtype=np.float64)
    strategy = cls(**params)
    rounds_updates, rounds_examples, state = [], [], None
    current = x
    for _ in range(3):
        ups = updates_near(rng, current, 4, scale=0.05)
        ex = rng.integers(1, 100, 4).tolist()
        rounds_updates.append(ups)
        rounds_examples.append(ex)
        current, state = run(strategy, current, ups, ex, state)
        state = round_trip(state)  # the state survives serialisation between rounds
    expected = reference_fedopt(cls.name, params, x, rounds_updates, rounds_examples)
    for got, want in zip(current, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert state.rounds == 3


def test_fedavgm_without_momentum_and_unit_rate_is_fedavg():
    rng = np.random.default_rng(5)
    x = model(rng)
    ups = updates_near(rng, x, 3)
    a, _ = run(FedAvgM(server_learning_rate=1.0, momentum=0.0), x, ups, [1, 2, 3])
    b, _ = run(FedAvg(), x, ups, [1, 2, 3])
    for p, q in zip(a, b, strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-6)


def tff_rounds(tff_optimizer, x, rounds_updates, rounds_examples):
    """TFF's optimizer fed the gradient -Δ, Δ the example-weighted mean of (w_k - x), for each round."""
    import tensorflow as tf

    state = tff_optimizer.initialize([tf.TensorSpec(a.shape, tf.float32) for a in x])
    weights = [tf.constant(a) for a in x]
    for ups, ex in zip(rounds_updates, rounds_examples, strict=True):
        p = np.array(ex, np.float64) / sum(ex)
        current = [w.numpy() for w in weights]
        delta = [
            sum(pk * (np.float64(u[i]) - current[i]) for pk, u in zip(p, ups, strict=True)).astype(np.float32)
            for i in range(len(x))
        ]
        state, weights = tff_optimizer.next(state, weights, [tf.constant(-d) for d in delta])
        weights = list(weights)
    return [w.numpy() for w in weights]


TFF_CASES = [
    ("build_adam", {"learning_rate": 0.02, "beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-3}),
    ("build_yogi", {"learning_rate": 0.05, "beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-3}),
    ("build_adagrad", {"learning_rate": 0.1, "initial_preconditioner_value": 0.1, "epsilon": 0.0}),
    ("build_sgdm", {"learning_rate": 0.7, "momentum": 0.9}),
]


def ours_for(builder, p):
    if builder == "build_adam":
        return FedAdam(
            server_learning_rate=p["learning_rate"],
            beta_1=p["beta_1"],
            beta_2=p["beta_2"],
            tau=p["epsilon"],
            initial_accumulator=0.0,
            bias_correction=True,
        )
    if builder == "build_yogi":
        return FedYogi(
            server_learning_rate=p["learning_rate"],
            beta_1=p["beta_1"],
            beta_2=p["beta_2"],
            tau=p["epsilon"],
            initial_accumulator=1e-6,  # TFF's initial_preconditioner_value default
            bias_correction=True,
        )
    if builder == "build_adagrad":
        return FedAdagrad(
            server_learning_rate=p["learning_rate"],
            beta_1=0.0,
            tau=0.0,
            initial_accumulator=p["initial_preconditioner_value"],
        )
    return FedAvgM(server_learning_rate=p["learning_rate"], momentum=p["momentum"])


@pytest.mark.parametrize(("builder", "params"), TFF_CASES)
def test_server_optimizers_agree_with_tff_to_1e_6(tff, builder, params):
    rng = np.random.default_rng(21)
    x = model(rng, shapes=[(40, 10), (10,), ()])
    strategy = ours_for(builder, params)
    rounds_updates, rounds_examples, state, current = [], [], None, x
    for _ in range(3):
        ups = updates_near(rng, current, 5, scale=0.05)
        ex = rng.integers(1, 100, 5).tolist()
        rounds_updates.append(ups)
        rounds_examples.append(ex)
        current, state = run(strategy, current, ups, ex, state)
        state = round_trip(state)
    # TFF is fed the same edge updates; its Δ is taken against its own trajectory's weights.
    optimizer = getattr(tff.learning.optimizers, builder)(**params)
    theirs = tff_rounds(optimizer, x, rounds_updates, rounds_examples)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(current, theirs, strict=True))
    print(f"{builder}: max |ours - TFF| over 3 rounds = {diff:.3g}")
    assert diff <= 1e-6


# -- median and trimmed mean (Yin et al. 2018) ----------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 8])
@pytest.mark.parametrize("chunk", [None, 3, 1000])
def test_median_matches_numpy_median(n, chunk):
    rng = np.random.default_rng(100 + n)
    x = model(rng)
    ups = updates_near(rng, x, n, scale=1.0)
    weights, _ = run(Median(chunk=chunk), x, ups, list(range(1, n + 1)))
    for i in range(len(SHAPES)):
        expected = np.median(np.stack([u[i] for u in ups]), axis=0)
        np.testing.assert_array_equal(weights[i], expected.astype(np.float32))


def test_scipy_trim_mean_cuts_floor_beta_n_per_end():
    data = np.arange(10.0)
    data[9] = 1000.0  # one huge value: trimmed iff at least one value is cut per end
    assert stats.trim_mean(data, 0.15) == pytest.approx(np.mean(data[1:9]))  # ⌊1.5⌋ = 1 per end
    assert stats.trim_mean(data, 0.09) == pytest.approx(np.mean(data))  # ⌊0.9⌋ = 0
    assert stats.trim_mean(data, 0.2) == pytest.approx(np.mean(data[2:8]))


@pytest.mark.parametrize("n", [1, 2, 5, 8, 11])
@pytest.mark.parametrize("beta", [0.0, 0.1, 0.2, 0.45])
@pytest.mark.parametrize("chunk", [None, 4])
def test_trimmed_mean_matches_scipy_trim_mean(n, beta, chunk):
    rng = np.random.default_rng(200 + n)
    x = model(rng)
    ups = updates_near(rng, x, n, scale=1.0)
    strategy = TrimmedMean(beta=beta, chunk=chunk)
    weights, _ = run(strategy, x, ups)
    assert strategy.report["trimmedPerEnd"] == int(beta * n)
    for i in range(len(SHAPES)):
        expected = stats.trim_mean(np.stack([np.float64(u[i]) for u in ups]), beta, axis=0)
        np.testing.assert_allclose(weights[i], expected, rtol=1e-6, atol=1e-6)


def test_robust_strategies_ignore_a_wild_update():
    rng = np.random.default_rng(7)
    x = model(rng)
    ups = updates_near(rng, x, 6, scale=0.01)
    ups.append([(a + 1e6).astype(a.dtype) for a in x])
    for strategy in (Median(), TrimmedMean(beta=0.2), Krum(f=1)):
        weights, _ = run(strategy, x, ups)
        assert max(float(np.max(np.abs(w - a))) for w, a in zip(weights, x, strict=True)) < 0.1


def test_median_peak_memory_is_a_block_not_the_updates():
    n, size = 50, 1 << 20  # 50 updates of 4 MB: 200 MB if held
    x = [np.zeros(size, np.float32)]
    strategy = Median()
    probe = np.arange(0, size, size // 64)  # a sample of coordinates to check the result on
    samples = []
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        strategy.begin(x)
        for k in range(n):
            update = [np.random.default_rng(k).standard_normal(size, dtype=np.float32)]
            samples.append(update[0][probe])
            strategy.add(update, 1, f"e{k}")
            del update
        weights, _ = strategy.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    held = n * size * 4
    print(f"median of {n} x {size * 4 / 2**20:.0f} MB updates: tracemalloc peak {peak / 2**20:.1f} MB")
    assert peak < held / 8  # well under the 200 MB the updates would take (x, result, one update, blocks)
    np.testing.assert_array_equal(weights[0][probe], np.median(np.stack(samples), axis=0))


# -- Krum / Multi-Krum (Blanchard et al. 2017) ----------------------------------------------------


def krum_setup(rng, honest=7, byzantine=2):
    x = model(rng)
    ups = updates_near(rng, x, honest, scale=0.1)
    ups += [[(a + 5.0 + rng.standard_normal(a.shape)).astype(a.dtype) for a in x] for _ in range(byzantine)]
    return x, ups


def flat(update):
    return np.concatenate([np.float64(a).reshape(-1) for a in update])


def brute_force_scores(ups, f):
    vectors = [flat(u) for u in ups]
    n = len(vectors)
    scores = []
    for i in range(n):
        d = sorted(float(np.sum((vectors[i] - vectors[j]) ** 2)) for j in range(n) if j != i)
        scores.append(sum(d[: n - f - 2]))
    return np.array(scores)


@pytest.mark.parametrize("chunk", [None, 2])
def test_krum_selects_an_honest_update_by_the_papers_score(chunk):
    rng = np.random.default_rng(31)
    x, ups = krum_setup(rng)
    strategy = Krum(f=2, chunk=chunk)
    weights, _ = run(strategy, x, ups)
    expected_scores = brute_force_scores(ups, 2)
    best = int(np.argmin(expected_scores))
    assert best < 7 and strategy.report["selected"] == [f"edge-{best}"]
    got = np.array([strategy.report["scores"][f"edge-{i}"] for i in range(len(ups))])
    np.testing.assert_allclose(got, expected_scores, rtol=1e-6)
    for w, a in zip(weights, ups[best], strict=True):
        np.testing.assert_array_equal(w, a)


def test_multi_krum_averages_the_m_best_updates():
    rng = np.random.default_rng(32)
    x, ups = krum_setup(rng)
    strategy = Krum(f=2, m=4)
    weights, _ = run(strategy, x, ups, [1, 2, 3, 4, 5, 6, 7, 8, 9])
    chosen = np.argsort(brute_force_scores(ups, 2), kind="stable")[:4]
    assert all(c < 7 for c in chosen)
    assert strategy.report["selected"] == [f"edge-{c}" for c in chosen]
    for i in range(len(SHAPES)):
        expected = np.mean(np.stack([ups[c][i] for c in chosen]), axis=0)  # unweighted, as the paper
        np.testing.assert_allclose(weights[i], expected, rtol=1e-6, atol=1e-6)
    weighted, _ = run(Krum(f=2, m=4, weighted=True), x, ups, [1, 2, 3, 4, 5, 6, 7, 8, 9])
    w = np.array([c + 1 for c in chosen], np.float64)
    expected = np.average(np.stack([ups[c][0] for c in chosen]), axis=0, weights=w)
    np.testing.assert_allclose(weighted[0], expected, rtol=1e-6, atol=1e-6)


def test_krum_scores_exclude_self_even_with_ties():
    d = np.zeros((4, 4))
    assert krum_scores(d, 0).tolist() == [0.0, 0.0, 0.0, 0.0]
    d = np.array([[0, 1, 4, 9], [1, 0, 1, 4], [4, 1, 0, 1], [9, 4, 1, 0]], float)
    assert krum_scores(d, 0).tolist() == [5.0, 2.0, 2.0, 5.0]  # n - f - 2 = 2 nearest others


def test_krum_checks_n_greater_than_2f_plus_2_and_removes_its_spool():
    rng = np.random.default_rng(33)
    x = model(rng)
    strategy = Krum(f=3)
    strategy.begin(x)
    for i, update in enumerate(updates_near(rng, x, 7)):
        strategy.add(update, 1, f"e{i}")
    spool = Path(strategy.composition.aggregator.spool.path)
    assert spool.exists()
    with pytest.raises(StrategyError, match=r"^krum: f=3 needs n > 2f \+ 2 = 8 updates, got 7$"):
        strategy.finish()
    assert not spool.parent.exists()
    with pytest.raises(StrategyError, match=r"krum: m=6 needs m <= n - f = 5 with n=6 updates, f=1"):
        run(Krum(f=1, m=6), x, updates_near(rng, x, 6))
    assert Krum(f=3).min_updates == 9
    weights, _ = run(Krum(f=3), x, updates_near(rng, x, 9))  # n = 9 > 8: fine
    assert weights[0].shape == (7, 5)


# -- screening ------------------------------------------------------------------------------------


def test_screen_accepts_a_normal_update_and_rejects_bad_ones():
    rng = np.random.default_rng(41)
    x = model(rng)
    good = updates_near(rng, x, 1, scale=0.01)[0]
    assert screen(good, x, max_norm=None) is None
    assert screen(good, x, max_norm=1.0) is None

    nan = [a.copy() for a in good]
    nan[0][3, 2] = np.nan
    assert screen(nan, x, max_norm=None) == "array 0: 1 non-finite value(s) (NaN or inf) in elements 0..34"
    inf = [a.copy() for a in good]
    inf[2] = np.array(np.inf, np.float32)
    assert "array 2: 1 non-finite value(s)" in screen(inf, x, max_norm=None)

    assert screen(good[:2], x, max_norm=None) == "update has 2 arrays, the model has 3"
    wrong_shape = [good[0].reshape(5, 7), good[1], good[2]]
    assert screen(wrong_shape, x, max_norm=None) == "array 0: shape (5, 7), expected (7, 5)"
    wrong_dtype = [good[0].astype(np.float64), good[1], good[2]]
    assert screen(wrong_dtype, x, max_norm=None) == "array 0: dtype float64, expected float32"

    big = [(a + 1.0).astype(a.dtype) for a in x]  # ‖Δ‖ = √(35 + 3 + 1)
    reason = screen(big, x, max_norm=6.0)
    assert reason is not None and reason.startswith("update norm ‖w - w_global‖ = 6.245 exceeds max_norm 6")
    assert screen(big, x, max_norm=6.3) is None


def test_screen_works_in_chunks():
    x = [np.zeros(1000, np.float32)]
    bad = [np.zeros(1000, np.float32)]
    bad[0][999] = np.nan
    assert screen(bad, x, max_norm=None, chunk=64) == (
        "array 0: 1 non-finite value(s) (NaN or inf) in elements 960..999"
    )
    ones = [np.ones(1000, np.float32)]
    assert screen(ones, x, max_norm=31.6, chunk=7) is not None  # √1000 = 31.62
    assert screen(ones, x, max_norm=31.7, chunk=7) is None
