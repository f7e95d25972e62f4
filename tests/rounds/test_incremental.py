"""The incremental learning job run for real: the check Workflow on the embedded engine, real rounds, real S3.

No trigger: nothing runs. New rows at two hospitals: exactly one retraining, from the served model. A candidate
that does not beat the served model by the job's margin is never promoted, and the reason is recorded. After a
rollback, retraining starts from the served weights (a rebase round), not from the latest round.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from edgefed.steps import layout, promotions
from edgefed.steps.registry import ModelRegistry
from edgefed.workflows.data.seeding import append_held_back
from edgefed.workflows.embedded.incremental import run_check
from edgefed.workflows.embedded.runtime import EmbeddedRuntime
from edgefed.workflows.spec import parse_task
from edgefed.workflows.spec.incremental import parse_job
from tests.helpers import run_task, seeded_runtime, task_doc

HOSPITALS = ("cleveland", "hungary", "switzerland")
HOLD_BACK = 0.3
TASK = "incr"

pytestmark = pytest.mark.slow


def job(*, min_improvement: float, min_rows: int = 10, name: str = "incr-job", **triggers) -> object:
    return parse_job(
        {
            "apiVersion": "edgefed.io/v1alpha1",
            "kind": "IncrementalLearningJob",
            "metadata": {"name": name},
            "spec": {
                "task": TASK,
                "triggers": {"newRows": {"minRows": min_rows}, **triggers},
                "retraining": {"rounds": 2},
                "promotion": {"minImprovement": min_improvement},
            },
        }
    )


@pytest.fixture(scope="module")
def trained(store, tmp_path_factory) -> Iterator[tuple[EmbeddedRuntime, object, ModelRegistry]]:
    """The task trained 3 rounds on 70% of each hospital's rows; round 3 promoted."""
    with seeded_runtime(
        store, tmp_path_factory.mktemp("home"), "heart", HOSPITALS, hold_back=HOLD_BACK
    ) as rt:
        task = parse_task(task_doc(TASK, HOSPITALS, rounds=3, quorum=2))
        _, registry = run_task(rt, task)
        promotions.promote(registry, TASK, 3, by="test", reason="first training")
        yield rt, task, registry


def test_no_trigger_nothing_runs(trained) -> None:
    rt, task, registry = trained
    result = run_check(rt, job(min_improvement=0.0), task)
    assert result.succeeded, result.message
    decision = result.decision
    assert decision["retrain"] is False and decision["reasons"] == ["no trigger fired"]
    assert [p["newRows"] for p in decision["probes"]] == [0, 0, 0]  # the very bytes they learned from
    assert registry.committed_rounds(TASK) == [0, 1, 2, 3]  # no round, no retraining Workflow
    assert "outcome" not in decision


def test_new_rows_retrain_once_from_the_served_model_and_a_worse_candidate_is_never_promoted(trained) -> None:
    rt, task, registry = trained
    admin = rt.store.client(layout.ADMIN_IDENTITY)
    appended = append_held_back(admin, rt.seeded, ["cleveland", "hungary"], hold_back=HOLD_BACK)
    assert all(n >= 10 for n in appended.values())
    # an impossible margin: whatever the candidate scores, it must not serve
    result = run_check(rt, job(min_improvement=1.0, accuracyBelow={"threshold": 0.01, "minRows": 5}), task)
    assert result.succeeded, result.message
    decision = result.decision
    assert decision["retrain"] is True
    # the served model was scored on each edge's fresh rows (at the edge; only the accuracy travelled)
    fresh = {p["edge"]: p["freshAccuracy"] for p in decision["probes"]}
    assert 0 < fresh["cleveland"] <= 1 and 0 < fresh["hungary"] <= 1 and fresh["switzerland"] is None
    assert not any("fresh rows" in r for r in decision["reasons"])  # 0.01: that trigger did not fire
    fired = {p["edge"]: p["newRows"] for p in decision["probes"]}
    assert fired == {"cleveland": appended["cleveland"], "hungary": appended["hungary"], "switzerland": 0}
    assert any("edge cleveland has" in r for r in decision["reasons"])
    assert (decision["baseRound"], decision["targetRound"]) == (3, 5)
    assert registry.committed_rounds(TASK) == [0, 1, 2, 3, 4, 5]  # exactly one retraining of 2 rounds
    round4 = registry.manifest(TASK, 4)
    assert round4["parent"]["round"] == 3  # from the served model
    learned = {c["edge"]: c["examples"] for c in round4["contributors"]}
    assert learned["cleveland"] == len(rt.seeded.edges["cleveland"])  # the new rows were learned from
    outcome = decision["outcome"]
    assert outcome["promoted"] is False and "does not beat" in outcome["reason"]
    assert promotions.served(registry, TASK)["round"] == 3  # the old model keeps serving

    # the retraining contributed every row: the next check finds nothing new, so nothing runs again
    again = run_check(rt, job(min_improvement=0.0), task)
    assert again.succeeded and again.decision["retrain"] is False
    assert registry.committed_rounds(TASK) == [0, 1, 2, 3, 4, 5]


def test_promotion_follows_the_rule_and_a_rollback_retrains_from_the_served_weights(trained) -> None:
    rt, task, registry = trained
    promotions.promote(registry, TASK, 2, by="test", reason="roll back by hand")
    result = run_check(rt, job(min_improvement=0.0, schedule="0 3 * * 0"), task, trigger="schedule")
    assert result.succeeded, result.message
    decision = result.decision
    assert decision["reasons"][0].startswith("scheduled retraining")
    # served round 2 is not the latest (5): a rebase round 6 holds exactly round 2's weights
    assert (decision["servedRound"], decision["baseRound"], decision["targetRound"]) == (2, 6, 8)
    rebase = registry.manifest(TASK, 6)
    assert rebase["rebasedOn"] == 2 and rebase["parent"]["round"] == 2 and rebase["contributors"] == []
    for a, b in zip(registry.load(TASK, 6).weights, registry.load(TASK, 2).weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert registry.manifest(TASK, 7)["parent"]["round"] == 6
    served_accuracy = registry.evaluation(TASK, 2)["accuracy"]
    candidate_accuracy = registry.evaluation(TASK, 8)["accuracy"]
    outcome = decision["outcome"]
    assert outcome["candidateRound"] == 8
    assert outcome["promoted"] is (candidate_accuracy >= served_accuracy)
    assert promotions.served(registry, TASK)["round"] == (8 if outcome["promoted"] else 2)
