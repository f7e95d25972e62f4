"""``model.initialWeights`` and ``training.orderSeed``: what makes the reference experiment reproducible,
checked from the repository alone (the benchmark compares the whole curve with ../shared/reference-fl)."""

from __future__ import annotations

import numpy as np
import pytest

from edgefed.steps.models import Trainer, initial_weights
from edgefed.steps.store import StepError
from edgefed.workflows.build.templates import step_config
from edgefed.workflows.spec import parse_task
from tests.helpers import task_doc

MODEL = {"name": "mlp", "inputShape": [8], "classes": 3, "params": {"hidden": [4]}}


def test_initial_weights_come_from_the_npz_in_key_order_and_wrong_shapes_are_refused(tmp_path) -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.random(s).astype(np.float32) for s in ((8, 4), (4,), (4, 3), (3,))]
    good = tmp_path / "init.npz"
    np.savez(good, **{f"w{i}": a for i, a in reversed(list(enumerate(arrays)))})  # stored out of order
    for got, want in zip(initial_weights({**MODEL, "initialWeights": str(good)}), arrays, strict=True):
        np.testing.assert_array_equal(got, want)
    bad = tmp_path / "bad.npz"
    np.savez(bad, w0=arrays[0], w1=arrays[1])
    with pytest.raises(StepError, match=r"model\.initialWeights .*the model's weights are"):
        initial_weights({**MODEL, "initialWeights": str(bad)})


def test_order_seed_trains_in_the_order_the_spec_names() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.random((25, 8)).astype(np.float32), rng.integers(0, 3, 25)
    start = initial_weights(MODEL)
    shuffled = Trainer(MODEL, {"batchSize": 4, "learningRate": 0.1})
    in_order = Trainer(MODEL, {"batchSize": 4, "learningRate": 0.1, "shuffle": False})
    order = np.random.default_rng([7, 3, 2]).permutation(25)  # orderSeed 7, round 3, the third edge
    by_seed, _ = shuffled.fit(start, x, y, epochs=1, seed=[7, 3, 2])
    by_hand, _ = in_order.fit(start, x[order], y[order], epochs=1, seed=0)
    for a, b in zip(by_seed, by_hand, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_steps_get_each_edges_position_only_with_an_order_seed() -> None:
    doc = task_doc("ord", ("a", "b", "c"))
    assert "edgeIndex" not in step_config(parse_task(doc))
    doc["spec"]["training"] = {"orderSeed": 0}
    assert step_config(parse_task(doc))["edgeIndex"] == {"a": 0, "b": 1, "c": 2}


def test_wide_data_trains_on_the_same_batches_gathered_in_the_epoch_as_permuted_first() -> None:
    """Above ``_GATHER_FROM`` an epoch's batches gather their rows from one tensor (column-major input,
    as the Arrow and pandas paths give it); the weights after two epochs are those of training in order on
    the rows permuted first by the same seeded generator, to the bit."""
    from edgefed.steps import models

    wide = {"name": "logistic", "inputShape": [784], "classes": 10}
    rng = np.random.default_rng(2)
    x = np.asfortranarray(rng.random((450, 784), dtype=np.float32))
    y = rng.integers(0, 10, 450)
    assert x.nbytes >= models._GATHER_FROM
    start = initial_weights(wide)
    gathered, metrics = Trainer(wide, {"batchSize": 32, "learningRate": 0.1}).fit(
        start, x, y, epochs=2, seed=[5, 1]
    )
    in_order = Trainer(wide, {"batchSize": 32, "learningRate": 0.1, "shuffle": False})
    perm = np.random.default_rng([5, 1])
    weights = start
    for _ in range(2):
        order = perm.permutation(450)
        weights, last = in_order.fit(weights, x[order], y[order], epochs=1, seed=0)
    for a, b in zip(gathered, weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert metrics == last
