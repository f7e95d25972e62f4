"""Stop conditions and the round loop, against a scripted executor (the real engine is tested elsewhere)."""

from __future__ import annotations

from typing import Any

import pytest

from edgefed.steps.planning import StopState, stop_reason
from edgefed.workflows.build import step_config
from edgefed.workflows.driver import RoundOutcome, TaskDriver
from edgefed.workflows.errors import RoundFailedError
from edgefed.workflows.spec import parse_task
from tests.helpers import task_doc


class ScriptedRounds:
    """An executor and history in one: each round 'commits' and reports the next scripted accuracy."""

    def __init__(
        self, accuracies: list[float | None], *, fail_round: int | None = None, committed: int | None = None
    ):
        self.accuracies = accuracies
        self.fail_round = fail_round
        self.committed = committed
        self.evaluations: dict[int, float] = {}
        self.documents: list[dict[str, Any]] = []

    def last_round(self, task: str) -> int | None:
        return self.committed

    def evaluation(self, task: str, round_: int) -> dict[str, Any] | None:
        return {"accuracy": self.evaluations[round_]} if round_ in self.evaluations else None

    def execute(self, document: dict[str, Any], parameters: dict[str, str]) -> RoundOutcome:
        self.documents.append(document)
        params = {p["name"]: p.get("value") for p in document["spec"]["arguments"]["parameters"]}
        round_ = int(params["round"])
        if round_ == self.fail_round:
            return RoundOutcome(workflow=f"wf-{round_}", succeeded=False, message="aggregate: quorum not met")
        self.committed = round_
        outputs = {"contributors": "2", "missing-edges": "[]"}
        if round_ >= 1:
            accuracy = self.accuracies[round_ - 1]
            if accuracy is not None:
                self.evaluations[round_] = accuracy
                outputs.update(accuracy=str(accuracy), loss="0.5")
        return RoundOutcome(workflow=f"wf-{round_}", succeeded=True, outputs=outputs)


def drive(accuracies, **spec):
    task = parse_task(task_doc("t", ("a", "b"), **spec))
    rounds = ScriptedRounds(accuracies, committed=spec.pop("_committed", None))
    return TaskDriver(task, executor=rounds, registry=rounds).run(), rounds


def test_runs_every_round_without_stop_conditions():
    result, rounds = drive([0.5, 0.6, 0.7], rounds=3)
    assert [r.round for r in result.rounds] == [1, 2, 3]
    assert result.stop_reason == "all 3 rounds done"
    assert len(rounds.documents) == 4  # the initial model, then 3 rounds


def test_target_accuracy_stops_after_the_round_that_reaches_it():
    result, _ = drive([0.5, 0.91, 0.99, 0.99], rounds=4, stop={"targetAccuracy": 0.9})
    assert result.last_round == 2
    assert result.stop_reason.startswith("target accuracy 0.9 reached (0.9100)")


def test_max_rounds_caps_rounds():
    result, _ = drive([0.5] * 10, rounds=10, stop={"maxRounds": 3})
    assert result.last_round == 3


def test_min_improvement_counts_evaluations_without_progress():
    accuracies = [0.5, 0.6, 0.601, 0.6015, 0.602, 0.9]
    result, _ = drive(accuracies, rounds=6, stop={"minImprovement": {"delta": 0.01, "patience": 3}})
    assert result.last_round == 5  # 0.601, 0.6015 and 0.602 are each < best + 0.01
    assert "improved by less than 0.01 for 3 evaluations (best 0.6000)" in result.stop_reason


def test_rounds_without_evaluation_do_not_count_against_patience():
    accuracies = [0.5, None, 0.5, None, 0.5, None, 0.5]
    result, _ = drive(
        accuracies,
        rounds=7,
        evaluation={"everyRounds": 2},
        stop={"minImprovement": {"delta": 0.01, "patience": 3}},
    )
    assert result.last_round == 7


def test_a_failed_round_raises_with_the_workflow_and_reason():
    task = parse_task(task_doc("t", ("a", "b"), rounds=3))
    rounds = ScriptedRounds([0.5, 0.6, 0.7], fail_round=2)
    with pytest.raises(
        RoundFailedError, match=r"round 2 failed \(workflow wf-2\): aggregate: quorum not met"
    ):
        TaskDriver(task, executor=rounds, registry=rounds).run()
    assert rounds.committed == 1


def test_resume_rebuilds_stop_state_from_history():
    """After round 3 of 4 was committed, a rerun with patience 2 stops at once: 2 stale evaluations already."""
    task = parse_task(
        task_doc("t", ("a", "b"), rounds=6, stop={"minImprovement": {"delta": 0.05, "patience": 2}})
    )
    rounds = ScriptedRounds([0.7, 0.71, 0.72, 0.9, 0.9, 0.9], committed=3)
    rounds.evaluations = {1: 0.7, 2: 0.71, 3: 0.72}
    result = TaskDriver(task, executor=rounds, registry=rounds).run()
    assert result.resumed_from == 3 and result.rounds == []
    assert "for 2 evaluations" in result.stop_reason


def test_stop_state_observe():
    state = StopState()
    for round_, accuracy in enumerate([0.5, 0.52, 0.58, 0.585], start=1):
        state.observe(round_, accuracy, 0.05)
    assert (
        state.best == 0.58 and state.stale == 1
    )  # 0.52 is not 0.05 above 0.5 (best stays 0.5); 0.58 is; 0.585 is not 0.05 above 0.58
    task = parse_task(
        task_doc("t", ("a",), rounds=9, stop={"minImprovement": {"delta": 0.05, "patience": 1}})
    )
    assert stop_reason(step_config(task)["plan"], 4, state).startswith("accuracy improved by less than 0.05")
