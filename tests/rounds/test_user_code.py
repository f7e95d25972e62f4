"""A user's model factory and training step, end to end in real rounds on the embedded engine."""

from __future__ import annotations

import numpy as np
import pytest

from edgefed.steps.train import run_user_step
from edgefed.workflows.errors import RoundFailedError
from edgefed.workflows.spec import parse_task
from tests.helpers import run_task, seeded_runtime, task_doc

HOSPITALS = ("cleveland", "hungary", "switzerland")


@pytest.fixture(scope="module")
def runtime(store, tmp_path_factory):
    with seeded_runtime(store, tmp_path_factory.mktemp("home"), "heart", HOSPITALS) as rt:
        yield rt


def _task(name: str, step: str, rounds: int = 4):
    doc = task_doc(name, HOSPITALS, rounds=rounds, quorum=3)
    doc["spec"]["model"] = {
        "name": "tests.usercode:linear",
        "inputShape": [32],
        "classes": 2,
        "params": {"l2": 0.01},
    }
    doc["spec"]["training"] = {"learningRate": 0.5, "localEpochs": 2, "step": step}
    return parse_task(doc)


@pytest.mark.slow
def test_a_users_factory_and_training_step_train_real_rounds(runtime) -> None:
    result, registry = run_task(runtime, _task("user-step", "tests.usercode:l2_softmax_step"))
    assert [r.round for r in result.rounds] == [1, 2, 3, 4]
    manifest = registry.manifest("user-step", 4)
    assert manifest["modelSpec"]["name"] == "tests.usercode:linear"
    # the step's own metrics reached the lineage, and the model learned
    assert set(manifest["contributors"][0]["metrics"]) == {"loss", "accuracy"}
    assert registry.evaluation("user-step", 4)["accuracy"] > 0.7
    # the round's model is FedAvg of what the user's step returned: the step ran, not the built-in trainer
    first = registry.load("user-step", 1).weights
    start = registry.load("user-step", 0).weights
    assert not np.allclose(first[0], start[0])


@pytest.mark.slow
def test_a_step_returning_wrong_shapes_fails_the_edges_with_the_reason(runtime) -> None:
    with pytest.raises(RoundFailedError) as err:
        run_task(runtime, _task("user-bad-step", "tests.usercode:wrong_shapes_step", rounds=1))
    assert "returned weights of shapes" in str(err.value)


def test_run_user_step_checks_what_it_gets_back() -> None:
    weights = [np.zeros((3, 2), np.float32), np.zeros(2, np.float32)]
    x, y = np.ones((4, 3), np.float32), np.array([0, 1, 0, 1])
    new, metrics = run_user_step(
        "tests.usercode:l2_softmax_step",
        weights,
        x,
        y,
        {"params": {}},
        {"learningRate": 0.1, "localEpochs": 1},
        0,
    )
    assert [w.shape for w in new] == [(3, 2), (2,)] and set(metrics) == {"loss", "accuracy"}
    assert not np.any(weights[0])  # the caller's arrays are untouched
    with pytest.raises(Exception, match="cannot be loaded"):
        run_user_step("tests.usercode:nope", weights, x, y, {}, {}, 0)
