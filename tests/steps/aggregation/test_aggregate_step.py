"""Aggregation strategies wired into the task (the spec's section: test_aggregation_spec.py): the aggregate
step's screening and quorum, server state beside the model (and across a resume), FedProx at the edge, DP
accounting in the manifest. The end-to-end rounds are real: generated workflows on the embedded engine,
the real S3 store, TensorFlow training on the heart data of real hospitals (small and short)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from scipy import stats

from edgefed.steps import codec, layout
from edgefed.steps.aggregate import AggregationError, QuorumError, aggregate
from edgefed.steps.context import StepContext
from edgefed.steps.interface import Env
from edgefed.steps.registry import ModelRegistry
from edgefed.steps.store import Endpoint, put_bytes
from edgefed.steps.strategies import (
    ServerState,
    epsilon_spent,
    from_config,
    noise_for_target,
    screen,
)
from edgefed.workflows.build import step_config
from edgefed.workflows.embedded.runtime import EmbeddedRuntime
from edgefed.workflows.errors import RoundFailedError
from edgefed.workflows.spec import parse_task
from tests.helpers import interrupt_after, run_task, seeded_runtime, task_doc

HOSPITALS = ("cleveland", "hungary", "switzerland")


@pytest.mark.parametrize(
    "aggregation",
    [
        {"algorithm": "fedavg"},
        {"algorithm": "fedadam"},
        {"algorithm": "fedavgm"},
        {"algorithm": "dp-fedavg", "clientsPerRound": 20, "seed": 1},
        {"algorithm": "median"},
        {"algorithm": "krum", "f": 1},
    ],
    ids=lambda a: a["algorithm"],
)
def test_peak_memory_does_not_grow_with_the_number_of_edges(aggregation):
    """As the aggregate step runs a strategy (zero-copy decode, screening, add, finish), over updates
    that arrive one at a time: streaming strategies hold O(model), spooled ones O(model + n x block)."""
    import gc
    import tracemalloc

    size = 1 << 20  # 4 MB of float32 per update
    start = [np.zeros(size, np.float32)]
    config = {"maxUpdateNorm": 1e6, **aggregation}

    def peak(n: int) -> int:
        gc.collect()
        tracemalloc.start()
        strategy = from_config(config)
        strategy.begin(start)
        for i in range(n):
            blob = codec.encode([np.full(size, i / n, np.float32)], {"examples": 1 + i})
            weights = codec.decode_views(blob)[0]
            assert screen(weights, start, max_norm=config["maxUpdateNorm"]) is None
            strategy.add(weights, 1 + i, f"e{i}")
            del weights, blob
        strategy.finish()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    few, many = peak(5), peak(20)  # the encoding of each update is counted too: ~2 models
    model_bytes = 4 * size
    print(
        f"{aggregation['algorithm']}: peak {few / model_bytes:.2f} (5 edges) {many / model_bytes:.2f} (20) models"
    )
    assert many <= 1.1 * few
    assert from_config(config).streaming == (aggregation["algorithm"] not in ("median", "krum"))


# -- the aggregate step against the real store, with hand-made updates ---------------------------

SCREEN_EDGES = ("s-good1", "s-good2", "s-good3", "s-nan", "s-shape", "s-dtype", "s-big", "s-junk", "s-stale")


@pytest.fixture(scope="module")
def screen_store(store):
    store.ensure_edges(SCREEN_EDGES)
    store.provision(SCREEN_EDGES)
    return store


@pytest.fixture
def cloud_env(screen_store, monkeypatch):
    creds = screen_store.credentials(layout.CLOUD_IDENTITY)
    monkeypatch.setenv(Env.ACCESS_KEY, creds.access_key)
    monkeypatch.setenv(Env.SECRET_KEY, creds.secret_key)
    return screen_store


def step_context(store, task: str, round_: int, aggregation: dict, tmp_path) -> StepContext:
    return StepContext(
        task=task,
        round=round_,
        workflow="manual",
        store=Endpoint.parse(f"http://{store.endpoint}"),
        config={"aggregation": aggregation, "quorum": 1},
        outputs=tmp_path,
    )


GLOBAL = [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]


def put_update(
    store, edge: str, task: str, round_: int, weights, parent_sha: str, examples: int = 10
) -> None:
    blob = (
        weights
        if isinstance(weights, bytes)
        else codec.encode(
            weights, {"examples": examples, "parentSha256": parent_sha, "metrics": {"loss": 1.0}}
        )
    )
    put_bytes(
        store.client(layout.edge_identity(edge)),
        layout.UPDATES_BUCKET,
        layout.update_key(edge, task, round_, "manual"),
        blob,
    )


def seed_screening_round(store, task: str) -> str:
    registry = ModelRegistry(store.client(layout.CLOUD_IDENTITY))
    parent = registry.commit(task, 0, GLOBAL, {"workflow": "manual", "contributors": [], "missing": []})
    sha = parent["model"]["sha256"]
    rng = np.random.default_rng(0)
    good = [[(g + 0.1 * rng.standard_normal(g.shape)).astype(np.float32) for g in GLOBAL] for _ in range(3)]
    for edge, weights in zip(SCREEN_EDGES[:3], good, strict=True):
        put_update(store, edge, task, 1, weights, sha)
    nan = [g.copy() for g in GLOBAL]
    nan[1][2] = np.nan
    put_update(store, "s-nan", task, 1, nan, sha)
    put_update(store, "s-shape", task, 1, [np.zeros((3, 4), np.float32), GLOBAL[1]], sha)
    put_update(store, "s-dtype", task, 1, [g.astype(np.float64) for g in GLOBAL], sha)
    put_update(store, "s-big", task, 1, [g + 100.0 for g in GLOBAL], sha)
    put_update(store, "s-junk", task, 1, b"not an npz at all", sha)
    put_update(store, "s-stale", task, 1, good[0], "0" * 64)
    return sha


def test_screening_rejects_bad_updates_with_reasons_and_the_strategy_sees_only_the_rest(cloud_env, tmp_path):
    store = cloud_env
    seed_screening_round(store, "screen")
    aggregation = {"algorithm": "median", "maxUpdateNorm": 10.0}
    manifest = aggregate(
        step_context(store, "screen", 1, aggregation, tmp_path), [*SCREEN_EDGES, "s-none"], 3
    )
    assert [c["edge"] for c in manifest["contributors"]] == list(SCREEN_EDGES[:3])
    reasons = {m["edge"]: m["reason"] for m in manifest["missing"]}
    assert reasons["s-nan"].startswith("update rejected: array 1: 1 non-finite value(s)")
    assert reasons["s-shape"] == "update rejected: array 0: shape (3, 4), expected (4, 3)"
    assert reasons["s-dtype"] == "update rejected: array 0: dtype float64, expected float32"
    assert reasons["s-big"].startswith("update rejected: update norm ‖w - w_global‖ = 387.298 ")
    assert reasons["s-big"].endswith("exceeds max_norm 10")
    assert reasons["s-junk"].startswith("update rejected: unreadable update")
    assert reasons["s-stale"] == "update was trained from another model than the round's parent"
    assert reasons["s-none"].startswith("no update and no report: the edge's step did not finish")
    # the model is the median of exactly the three accepted updates
    client = store.client(layout.CLOUD_IDENTITY)
    accepted = [
        codec.decode(client.get_object(layout.UPDATES_BUCKET, c["update"].split("/", 3)[3]).read())[0]
        for c in manifest["contributors"]
    ]
    model = ModelRegistry(client).load("screen", 1).weights
    for i, w in enumerate(model):
        np.testing.assert_array_equal(w, np.median(np.stack([u[i] for u in accepted]), axis=0))
    assert manifest["aggregation"] == aggregation
    assert manifest["serverState"]["key"] == layout.server_state_key("screen", 1)


def test_quorum_and_krums_rule_apply_to_the_updates_that_remain(cloud_env, tmp_path):
    store = cloud_env
    registry = ModelRegistry(store.client(layout.CLOUD_IDENTITY))
    seed_screening_round(store, "screen-q")
    edges = list(SCREEN_EDGES)
    with pytest.raises(QuorumError, match=r"3 usable update\(s\), quorum is 4; missing edges: s-nan: update"):
        aggregate(
            step_context(store, "screen-q", 1, {"algorithm": "fedavg", "maxUpdateNorm": 10.0}, tmp_path),
            edges,
            4,
        )
    # quorum 3 holds, but Krum with f = 1 needs n > 4 of them: refused at round time, nothing committed
    with pytest.raises(AggregationError, match=r"krum: f=1 needs n > 2f \+ 2 = 4 updates, got 3\. No model"):
        aggregate(
            step_context(
                store, "screen-q", 1, {"algorithm": "krum", "f": 1, "maxUpdateNorm": 10.0}, tmp_path
            ),
            edges,
            3,
        )
    assert registry.committed_rounds("screen-q") == [0]
    manifest = aggregate(
        step_context(store, "screen-q", 1, {"algorithm": "krum", "f": 0, "maxUpdateNorm": 10.0}, tmp_path),
        edges,
        3,
    )
    assert len(manifest["aggregationReport"]["selected"]) == 1
    assert registry.committed_rounds("screen-q") == [0, 1]


def test_server_state_is_verified_against_the_manifest(cloud_env, tmp_path):
    store = cloud_env
    sha = seed_screening_round(store, "state-check")
    ctx = step_context(store, "state-check", 1, {"algorithm": "fedadam"}, tmp_path)
    first = aggregate(ctx, list(SCREEN_EDGES[:3]), 3)
    registry = ModelRegistry(store.client(layout.CLOUD_IDENTITY))
    state = ServerState.from_bytes(registry.server_state(first))
    assert state.strategy == "fedadam" and state.rounds == 1 and len(state.get_list("m")) == 2
    assert first["serverState"]["sha256"] == codec.sha256(state.to_bytes())
    # tamper with the state object: the next round refuses it
    put_bytes(
        store.client(layout.ADMIN_IDENTITY),
        layout.MODELS_BUCKET,
        layout.server_state_key("state-check", 1),
        b"x",
    )
    first["serverState"]["versionId"] = None  # read the newest version, the tampered one
    with pytest.raises(Exception, match="server state of round 1 of 'state-check' is corrupt"):
        registry.server_state(first)
    assert sha


def test_switching_algorithm_midway_starts_a_fresh_state_and_dp_covers_only_its_rounds(cloud_env, tmp_path):
    store = cloud_env
    seed_screening_round(store, "switch")
    first = aggregate(
        step_context(store, "switch", 1, {"algorithm": "fedadam"}, tmp_path), list(SCREEN_EDGES[:3]), 3
    )
    rng = np.random.default_rng(1)
    for edge in SCREEN_EDGES[:3]:
        weights = [(g + 0.01 * rng.standard_normal(g.shape)).astype(np.float32) for g in GLOBAL]
        put_update(store, edge, "switch", 2, weights, first["model"]["sha256"])
    dp = {"algorithm": "dp-fedavg", "noiseMultiplier": 1.0, "clientsPerRound": 3, "seed": 0}
    second = aggregate(step_context(store, "switch", 2, dp, tmp_path), list(SCREEN_EDGES[:3]), 3)
    assert second["serverStateFrom"]["round"] == 1
    assert "written by 'fedadam'; dp-fedavg starts from none" in second["serverStateFrom"]["note"]
    privacy = second["privacy"]
    assert privacy["rounds"] == 1 and privacy["coversRounds"] == [2, 2]
    assert privacy["epsilon"] == pytest.approx(epsilon_spent(1.0, 1.0, 1, 1e-5))


# -- real rounds on the embedded engine ----------------------------------------------------------


@pytest.fixture(scope="module")
def runtime(store, tmp_path_factory) -> Iterator[EmbeddedRuntime]:
    with seeded_runtime(store, tmp_path_factory.mktemp("home"), "heart", HOSPITALS) as rt:
        yield rt


def make_task(name: str, aggregation: dict, **spec):
    spec.setdefault("rounds", 1)
    spec.setdefault("quorum", 3)
    return parse_task(task_doc(name, HOSPITALS, aggregation=aggregation, **spec))


def stored_updates(runtime, manifest) -> list[tuple[list[np.ndarray], int, str]]:
    client = runtime.store.client(layout.CLOUD_IDENTITY)
    out = []
    for c in manifest["contributors"]:
        key = c["update"].removeprefix(f"s3://{layout.UPDATES_BUCKET}/")
        blob = client.get_object(layout.UPDATES_BUCKET, key).read()
        assert codec.sha256(blob) == c["sha256"]
        out.append((codec.decode(blob)[0], c["examples"], c["edge"]))
    return out


def recompute(runtime, registry, task: str, round_: int, *, state: ServerState | None = None, fresh=False):
    """The round's model recomputed here from its stored inputs: parent model, parent state, updates."""
    manifest = registry.manifest(task, round_)
    parent = registry.load(task, round_ - 1)
    if state is None and not fresh:
        blob = registry.server_state(parent.manifest)
        state = ServerState.from_bytes(blob) if blob is not None else None
    strategy = from_config(manifest["aggregation"])
    weights, new_state = strategy.run(parent.weights, stored_updates(runtime, manifest), state)
    return weights, new_state, manifest


def assert_weights_equal(a, b, atol=1e-6):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


@pytest.mark.parametrize(
    "aggregation",
    [
        {"algorithm": "median"},
        {"algorithm": "trimmed-mean", "beta": 0.34},
        {"algorithm": "krum", "f": 0, "m": 1},
        {"algorithm": "fedavgm", "serverLearningRate": 1.0, "momentum": 0.9},
        {"algorithm": "dp-fedavg", "noiseMultiplier": 0.5, "clip": 1.0, "seed": 7, "maxUpdateNorm": 100.0},
    ],
    ids=lambda a: a["algorithm"],
)
def test_a_real_round_of_each_strategy_family_commits_what_its_kernel_computes(runtime, aggregation):
    name = f"agg-{aggregation['algorithm']}"
    result, registry = run_task(runtime, make_task(name, aggregation))
    assert [r.round for r in result.rounds] == [1]
    weights, new_state, manifest = recompute(runtime, registry, name, 1)
    assert [c["edge"] for c in manifest["contributors"]] == list(HOSPITALS) and manifest["missing"] == []
    assert_weights_equal(registry.load(name, 1).weights, weights)
    assert manifest["aggregation"]["algorithm"] == aggregation["algorithm"]
    committed_state = ServerState.from_bytes(registry.server_state(manifest))
    assert committed_state.strategy == aggregation["algorithm"] and committed_state.rounds == 1
    assert sorted(committed_state.arrays) == sorted(new_state.arrays)
    if aggregation["algorithm"] == "krum":
        assert len(manifest["aggregationReport"]["selected"]) == 1
    if aggregation["algorithm"] == "dp-fedavg":
        privacy = manifest["privacy"]
        assert privacy["rounds"] == 1 and privacy["noiseMultiplier"] == 0.5 and privacy["delta"] == 1e-5
        assert privacy["epsilon"] == pytest.approx(epsilon_spent(0.5, 1.0, 1, 1e-5))
        assert manifest["aggregationReport"]["denominator"] == 3
    else:
        assert "privacy" not in manifest
    assert registry.evaluation(name, 1)["accuracy"] > 0.3


def numpy_noise(seed: int, shapes, stddev: float) -> list[np.ndarray]:
    """The noise a seeded round draws: one float32 standard normal per coordinate, array by array."""
    rng = np.random.default_rng([seed, 0])
    return [
        rng.standard_normal(math.prod(s), dtype=np.float32).reshape(s) * np.float32(stddev) for s in shapes
    ]


@pytest.mark.parametrize(
    "aggregation",
    [
        {"algorithm": "fedadam", "aggregator": {"name": "trimmed-mean", "beta": 0.34}},
        {
            "algorithm": "dp-fedavg",
            "noiseMultiplier": 0.5,
            "clip": 0.05,
            "seed": 7,
            "maxUpdateNorm": 100.0,
            "aggregator": {"name": "median"},
        },
    ],
    ids=lambda a: f"{a['algorithm']}-over-{a['aggregator']['name']}",
)
def test_a_real_round_of_a_composed_aggregation_commits_what_numpy_computes(runtime, aggregation):
    name = f"comp-{aggregation['algorithm']}"
    result, registry = run_task(runtime, make_task(name, aggregation))
    assert [r.round for r in result.rounds] == [1]
    manifest = registry.manifest(name, 1)
    assert manifest["aggregation"]["aggregator"]["name"] == aggregation["aggregator"]["name"]
    x = [np.float64(w) for w in registry.load(name, 0).weights]
    ups = [[np.float64(a) for a in u] for u, _, _ in stored_updates(runtime, manifest)]
    committed = registry.load(name, 1).weights
    if aggregation["algorithm"] == "fedadam":  # Adam's first step on the trimmed mean of the deltas
        for i, got in enumerate(committed):
            delta = stats.trim_mean(np.stack([u[i] - x[i] for u in ups]), 0.34, axis=0)
            m, v = 0.1 * delta, 0.99 * 1e-6 + 0.01 * delta**2
            np.testing.assert_allclose(got, x[i] + 0.01 * m / (np.sqrt(v) + 1e-3), rtol=0, atol=1e-5)
        assert (
            manifest["aggregationReport"]["trimmedPerEnd"] == 1
            and "pseudoGradientNorm" in manifest["aggregationReport"]
        )
        assert "privacy" not in manifest
    else:  # the median of the clipped deltas plus N(0, (z C / D)²), D = the three edges
        norms = [math.sqrt(sum(float(np.sum((a - b) ** 2)) for a, b in zip(u, x, strict=True))) for u in ups]
        factors = [0.05 / max(n, 0.05) for n in norms]
        noise = numpy_noise(7, [a.shape for a in x], 0.5 * 0.05 / 3)
        for i, got in enumerate(committed):
            clipped = np.stack([f * (u[i] - x[i]) for f, u in zip(factors, ups, strict=True)])
            np.testing.assert_allclose(got, x[i] + np.median(clipped, axis=0) + noise[i], rtol=0, atol=1e-5)
        assert manifest["aggregationReport"]["denominator"] == 3
        privacy = manifest["privacy"]
        assert (
            privacy["epsilon"] == pytest.approx(epsilon_spent(0.5, 1.0, 1, 1e-5))
            and "median" in privacy["sensitivity"]
        )
    weights, _, _ = recompute(runtime, registry, name, 1)  # and the steps' own kernels agree
    assert_weights_equal(committed, weights)
    assert ServerState.from_bytes(registry.server_state(manifest)).strategy == aggregation["algorithm"]


def test_fedadam_state_survives_an_interrupt_and_the_resumed_round_uses_round_ones(runtime):
    aggregation = {
        "algorithm": "fedadam",
        "serverLearningRate": 0.05,
        "initialAccumulator": 0.0,
        "biasCorrection": True,
    }
    task = make_task("adam-resume", aggregation, rounds=2)

    with pytest.raises(KeyboardInterrupt):
        run_task(runtime, task, on_round=interrupt_after(1))
    registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
    assert registry.committed_rounds("adam-resume") == [0, 1]
    first = registry.manifest("adam-resume", 1)
    state1 = ServerState.from_bytes(registry.server_state(first))
    assert state1.rounds == 1 and state1.get_list("m") is not None

    result, _ = run_task(runtime, task)
    assert result.resumed_from == 1 and [r.round for r in result.rounds] == [2]
    second = registry.manifest("adam-resume", 2)
    assert second["serverStateFrom"] == {"round": 1, "sha256": first["serverState"]["sha256"]}
    committed = registry.load("adam-resume", 2).weights
    # the committed round 2 is FedAdam from round 1's moments ...
    expected, state2, _ = recompute(runtime, registry, "adam-resume", 2, state=state1)
    assert_weights_equal(committed, expected)
    assert ServerState.from_bytes(registry.server_state(second)).rounds == state2.rounds == 2
    # ... and not what a fresh state (the moments lost on resume) would have given
    fresh, _, _ = recompute(runtime, registry, "adam-resume", 2, fresh=True)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(committed, fresh, strict=True)) > 1e-4


def test_fedprox_mu_reaches_the_edges_training(runtime):
    """Each edge's update is what the Trainer computes with the proximal term, not without it."""
    from edgefed.steps.models import Trainer
    from edgefed.steps.store import read_frame
    from edgefed.steps.train import frame_to_arrays

    task = make_task("prox", {"algorithm": "fedprox", "mu": 5.0})
    _, registry = run_task(runtime, task)
    manifest = registry.manifest("prox", 1)
    config = step_config(task)
    start = registry.load("prox", 0).weights
    admin = runtime.store.client(layout.ADMIN_IDENTITY)
    with_mu = Trainer(config["model"], {**config["training"], "proximalMu": 5.0})
    without = Trainer(config["model"], config["training"])
    for weights, _, edge in stored_updates(runtime, manifest):
        frame = read_frame(admin, layout.edge_bucket(edge), "heart/train.parquet")
        x, y = frame_to_arrays(frame, config["model"]["inputShape"], where=edge)
        seed = zlib.crc32(f"{config['model'].get('seed', 0)}/1/{edge}".encode())  # as the train step
        epochs = config["training"]["localEpochs"]
        prox, _ = with_mu.fit(start, x, y, epochs=epochs, seed=seed)
        plain, _ = without.fit(start, x, y, epochs=epochs, seed=seed)
        assert_weights_equal(weights, prox, atol=1e-5)

        def distance(ws):
            return math.sqrt(sum(float(np.sum((w - s) ** 2)) for w, s in zip(ws, start, strict=True)))

        assert distance(prox) < 0.9 * distance(plain)  # the term pulls towards the global model
    # the proximal trainer traced its step once, however many fits (rounds, edges) it ran
    assert with_mu._epoch.experimental_get_tracing_count() == 1


def test_dp_round_records_epsilon_spent_from_a_target(runtime):
    aggregation = {"algorithm": "dp-fedavg", "targetEpsilon": 30.0, "clip": 0.5, "seed": 3}
    task = make_task("dp-target", aggregation, rounds=2)
    _, registry = run_task(runtime, task)
    z = noise_for_target(30.0, 1e-5, 2)
    spent = []
    for round_ in (1, 2):
        privacy = registry.manifest("dp-target", round_)["privacy"]
        assert privacy["rounds"] == round_ and privacy["plannedRounds"] == 2
        assert privacy["coversRounds"] == [1, round_]
        assert privacy["noiseMultiplier"] == pytest.approx(z)
        assert privacy["epsilon"] == pytest.approx(epsilon_spent(z, 1.0, round_, 1e-5), rel=1e-9)
        spent.append(privacy["epsilon"])
    assert spent[0] < spent[1] <= 30.0


def test_a_round_whose_updates_all_exceed_max_update_norm_fails_with_the_reasons(runtime):
    task = make_task("norm", {"algorithm": "fedavg", "maxUpdateNorm": 1e-6}, quorum=1)
    with pytest.raises(RoundFailedError) as info:
        run_task(runtime, task)
    message = str(info.value)
    assert "0 usable update(s), quorum is 1" in message
    assert "cleveland: update rejected: update norm ‖w - w_global‖ = " in message
    assert ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY)).committed_rounds("norm") == [0]
