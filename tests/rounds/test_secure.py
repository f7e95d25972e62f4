"""Secure aggregation end to end: the generated secure round Workflow, executed by the embedded engine, with
real training and the real store; the cloud's sum equals plain FedAvg, dropouts included.

6 edges hold an iid split of the digits data. Each task runs 2 rounds; a secure task and a plain one with
the same edges (and the same edges failing) train the same way (the local shuffles depend on the model's
seed, the round and the edge, not on the task's name), so their models must agree to the fixed-point
error. The dropouts are edges that shared their keys, trained and masked their input, and dropped before
it reached the store (:mod:`tests.rounds.faults`' ``dropAfterMasking``): their masks are removed with the
other edges' shares of their keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from scipy import stats

from edgefed.steps import codec, layout
from edgefed.steps.registry import ModelRegistry
from edgefed.workflows.embedded.runtime import EmbeddedRuntime
from edgefed.workflows.spec import parse_task
from tests.helpers import digits_task_doc, run_task
from tests.rounds.faults import script, scripted_runtime

pytestmark = pytest.mark.slow

EDGES = tuple(f"s{i}" for i in range(6))
ROUNDS = 2


@pytest.fixture(scope="module")
def runtime(store, tmp_path_factory) -> Iterator[EmbeddedRuntime]:
    with scripted_runtime(store, tmp_path_factory.mktemp("home"), "digits", EDGES, split="iid") as rt:
        yield rt


def _run(
    runtime: EmbeddedRuntime, name: str, *, secure: bool, dropped: tuple[str, ...] = ()
) -> ModelRegistry:
    faults = [
        {"step": "train", "task": name, "edge": e, **({"dropAfterMasking": True} if secure else {"exit": 3})}
        for e in dropped
    ]
    script(runtime.faults, faults)
    doc = digits_task_doc(
        name,
        EDGES,
        hidden=16,
        seed=3,
        training={"batchSize": 16, "learningRate": 0.1, "localEpochs": 1},
        aggregation={"algorithm": "fedavg", **({"secure": True} if secure else {})},
        rounds=ROUNDS,
        quorum=3,
        evaluation={"everyRounds": ROUNDS},
    )
    try:
        result, registry = run_task(runtime, parse_task(doc))
    finally:
        script(runtime.faults, [])
    assert [r.round for r in result.rounds] == list(range(1, ROUNDS + 1)), result
    return registry


def _max_difference(registry: ModelRegistry, a: str, b: str, round_: int) -> float:
    left, right = registry.load(a, round_).weights, registry.load(b, round_).weights
    return max(float(np.abs(x.astype(np.float64) - y).max()) for x, y in zip(left, right, strict=True))


@pytest.mark.parametrize(
    "dropped", [(), ("s2",), ("s1", "s4")], ids=["0-dropouts", "1-dropout", "2-dropouts"]
)
def test_the_masked_sum_is_fedavg_with_dropouts(runtime, dropped):
    tag = f"d{len(dropped)}"
    _run(runtime, f"plain-{tag}", secure=False, dropped=dropped)
    registry = _run(runtime, f"secure-{tag}", secure=True, dropped=dropped)
    for round_ in range(1, ROUNDS + 1):
        difference = _max_difference(registry, f"plain-{tag}", f"secure-{tag}", round_)
        assert difference <= 1e-5, (round_, difference)
        manifest = registry.manifest(f"secure-{tag}", round_)
        report = manifest["secureAggregation"]
        assert report["droppedAfterSharing"] == sorted(dropped)
        assert report["survivors"] == len(EDGES) - len(dropped)
        assert report["threshold"] == 4  # ceil(2/3 of 6)
        assert sorted(c["edge"] for c in manifest["contributors"]) == sorted(set(EDGES) - set(dropped))
        assert all(
            c["masked"] and c["update"].startswith(f"s3://{layout.SECAGG_BUCKET}/")
            for c in manifest["contributors"]
        )
        reasons = {m["edge"]: m["reason"] for m in manifest["missing"]}
        assert set(reasons) == set(dropped)
        assert all("dropped after masking" in r for r in reasons.values()), reasons
    # nothing plain of a secure round's edges reached the cloud
    client = runtime.store.client(layout.CLOUD_IDENTITY)
    plain_updates = [
        o.object_name
        for e in EDGES
        for o in client.list_objects(layout.UPDATES_BUCKET, prefix=f"{e}/secure-{tag}/", recursive=True)
        if o.object_name.endswith("update.npz")
    ]
    assert plain_updates == []


def _uniform(words: np.ndarray) -> float:
    """The p-value of ``words`` (uint64) being uniform over [0, 2^64): Kolmogorov-Smirnov."""
    return float(stats.kstest(words.astype(np.float64) / 2.0**64, "uniform").pvalue)


def test_each_stored_masked_input_is_indistinguishable_from_noise(runtime):
    """What the cloud holds of each edge is uniform noise, unrelated to the edge's update; the update
    itself (the same training, from the plain run of the same task) is anything but."""
    _run(runtime, "plain-noise", secure=False)
    registry = _run(runtime, "secure-noise", secure=True)
    client = runtime.store.client(layout.CLOUD_IDENTITY)
    parent = registry.load("secure-noise", 0).weights
    plain = {c["edge"]: c for c in registry.manifest("plain-noise", 1)["contributors"]}
    rng = np.random.default_rng(0)
    for contributor in registry.manifest("secure-noise", 1)["contributors"]:
        key = contributor["update"].removeprefix(f"s3://{layout.SECAGG_BUCKET}/")
        (masked,), meta = codec.decode(client.get_object(layout.SECAGG_BUCKET, key).read())
        assert masked.dtype == np.uint64 and meta["masked"] and "weights" not in meta
        # the edge's true input, c (w - w_parent) in fixed point: recomputed from the plain run's update
        update = codec.decode(
            client.get_object(
                layout.UPDATES_BUCKET, plain[contributor["edge"]]["update"].split("/", 3)[3]
            ).read()
        )[0]
        delta = np.concatenate(
            [(w.astype(np.float64) - p).ravel() for w, p in zip(update, parent, strict=True)]
        )
        truth = np.rint(meta["weight"] * delta * 2.0**24).astype(np.int64).view(np.uint64)
        assert _uniform(truth) < 1e-10  # the update is far from noise: the test can tell
        assert _uniform(masked) > 1e-4
        assert stats.chisquare(np.bincount(masked.view(np.uint8), minlength=256)).pvalue > 1e-4
        noise = rng.integers(0, 2**64, size=masked.size, dtype=np.uint64)
        assert stats.ks_2samp(masked.astype(np.float64), noise.astype(np.float64)).pvalue > 1e-4
        # unrelated to the update: no correlation between the stored words and the true values
        r = np.corrcoef(masked.view(np.int64).astype(np.float64), truth.view(np.int64).astype(np.float64))[
            0, 1
        ]
        assert abs(r) < 5 / np.sqrt(masked.size), r
        assert (masked != truth).mean() > 0.99
    # the edges' secrets never left their own stores: the protocol's bucket holds public keys and ciphertexts
    sent = json.loads(
        client.get_object(
            layout.SECAGG_BUCKET,
            layout.secagg_edge_key(EDGES[0], "secure-noise", 1, meta["workflow"], "keys.json"),
        ).read()
    )
    assert set(sent["keys"]) == {"share", "mask"}
    secrets = client.list_objects(layout.SECAGG_BUCKET, prefix=f"{EDGES[0]}/secure-noise/", recursive=True)
    assert not [o.object_name for o in secrets if "secrets" in o.object_name]
    site = runtime.store.client(layout.site_identity(EDGES[0]))
    kept = layout.secagg_secrets_key("secure-noise", 1, meta["workflow"])
    assert set(json.loads(site.get_object(layout.edge_bucket(EDGES[0]), kept).read())) == {
        "share",
        "mask",
        "self",
    }
