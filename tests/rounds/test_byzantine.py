"""Byzantine edges: 2 of 10 send sign-flipped updates scaled by 10; robust strategies shrug them off.

10 edges hold an iid split of the digits data (``edgefed data seed`` as in production); every run is the
generated round workflow on the embedded engine with real training in the warm workers. The attack
lives in this file only: :func:`attacked_step` is the warm workers' step target (``EmbeddedRuntime``'s
``step_target``). It runs the real ``edgefed-step``; for the attacking edges of an attacked task, the
train step trains for real and then sends ``w_global - 10 (w_local - w_global)`` as its update (the
edge cannot read its update back from the store, so the attacker rewrites it on the way out).

Printed: the final central accuracy of the clean run (FedAvg, no attacker) and, under attack, of
FedAvg, the coordinate-wise median, the trimmed mean (β = 0.2: 2 cut per end), Krum (f = 2) and
Multi-Krum (f = 2, m = n - f = 8). FedAvg collapses; every robust strategy ends within 3 points of the
clean run, and Krum and Multi-Krum never select an attacker. Plain Krum keeps one edge's update a round
(144 of 1,437 examples), so it trails the others (1.9 points below clean here); the run is seeded end
to end (partition, initial model, local shuffles), so these figures repeat exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from edgefed.steps import codec, layout
from edgefed.steps.registry import ModelRegistry
from edgefed.workflows.embedded.runtime import EmbeddedRuntime
from edgefed.workflows.spec import parse_task
from tests.helpers import digits_task_doc, run_task, seeded_runtime
from tests.rounds.faults import bad_update

pytestmark = pytest.mark.slow

EDGES = tuple(f"e{i}" for i in range(10))
ATTACKERS = ("e8", "e9")
ATTACKED = "byz-"  # tasks whose name starts with this are attacked
SCALE = 10.0
ROUNDS = 12
TRAINING = {"batchSize": 16, "learningRate": 0.2, "localEpochs": 2}
RUNS = {
    "clean": {"algorithm": "fedavg"},
    "byz-fedavg": {"algorithm": "fedavg"},
    "byz-median": {"algorithm": "median"},
    "byz-trimmed-mean": {"algorithm": "trimmed-mean", "beta": 0.2},
    "byz-krum": {"algorithm": "krum", "f": 2, "m": 1},
    "byz-multi-krum": {"algorithm": "krum", "f": 2, "m": 8},
}


# -- the attack (runs in the warm workers) ---------------------------------------------------------


def attacked_step(argv: list[str]) -> int:
    """``edgefed-step`` as a compromised edge runs it: real training, then a poisoned update
    (:func:`tests.rounds.faults.bad_update`'s ``flip``: ``w_global - 10 (w_local - w_global)``)."""
    from edgefed.steps import cli, train

    if argv[:1] != ["train"]:
        return cli.run(argv)
    args = train.parse(argv[1:])
    if not (args.task.startswith(ATTACKED) and args.edge in ATTACKERS):
        return cli.run(argv)
    print(f"ATTACK: edge {args.edge} sends w_global - {SCALE:g} (w_local - w_global)")
    return bad_update(argv, "flip")


# -- the runs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runtime(store, tmp_path_factory) -> Iterator[EmbeddedRuntime]:
    home = tmp_path_factory.mktemp("home")
    target = "tests.rounds.test_byzantine:attacked_step"
    with seeded_runtime(store, home, "digits", EDGES, split="iid", step_target=target) as rt:
        yield rt


def run(runtime: EmbeddedRuntime, name: str, aggregation: dict) -> float:
    doc = digits_task_doc(
        name,
        EDGES,
        training=TRAINING,
        aggregation=aggregation,
        rounds=ROUNDS,
        quorum=len(EDGES),
        evaluation={"everyRounds": ROUNDS},
    )
    result, _ = run_task(runtime, parse_task(doc))
    assert [r.round for r in result.rounds] == list(range(1, ROUNDS + 1))
    return float(result.rounds[-1].accuracy)


def update_distance(runtime, manifest, edge: str, start: list[np.ndarray]) -> float:
    client = runtime.store.client(layout.CLOUD_IDENTITY)
    entry = next(c for c in manifest["contributors"] if c["edge"] == edge)
    blob = client.get_object(layout.UPDATES_BUCKET, entry["update"].split("/", 3)[3]).read()
    weights, _ = codec.decode(blob)
    return math.sqrt(sum(float(np.sum((w - g) ** 2)) for w, g in zip(weights, start, strict=True)))


def test_two_sign_flipping_edges_break_fedavg_but_not_the_robust_strategies(runtime):
    accuracy = {name: run(runtime, name, aggregation) for name, aggregation in RUNS.items()}
    clean = accuracy["clean"]
    print(f"\nfinal central accuracy after {ROUNDS} rounds, 10 edges, attackers {', '.join(ATTACKERS)}:")
    for name, value in accuracy.items():
        print(f"  {name:<17} {value:.4f}  ({100 * (value - clean):+5.1f} points vs clean)")

    registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
    # the attack happened: in round 1 the attackers' updates are ~10x as far from the model as honest ones
    manifest = registry.manifest("byz-fedavg", 1)
    start = registry.load("byz-fedavg", 0).weights
    honest = max(update_distance(runtime, manifest, e, start) for e in EDGES if e not in ATTACKERS)
    for edge in ATTACKERS:
        assert update_distance(runtime, manifest, edge, start) > 5 * honest
    # Krum never picked an attacker
    for name in ("byz-krum", "byz-multi-krum"):
        for round_ in range(1, ROUNDS + 1):
            selected = registry.manifest(name, round_)["aggregationReport"]["selected"]
            assert not set(selected) & set(ATTACKERS), (name, round_, selected)

    assert clean >= 0.85
    assert accuracy["byz-fedavg"] <= clean - 0.30
    for name in ("byz-median", "byz-trimmed-mean", "byz-krum", "byz-multi-krum"):
        assert accuracy[name] >= clean - 0.03, name
