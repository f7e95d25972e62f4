"""``make faults`` in CI: every fault injected into real embedded runs, and every row holds (nothing lost,
nothing duplicated, the manifests consistent, the rerun resumes; the fault really happened)."""

from __future__ import annotations

import pytest

from tests.faults.suite import Row, run_suite, table

pytestmark = pytest.mark.slow

FAULTS = (
    "an edge's worker SIGKILLed mid-training",
    "the store SIGKILLed mid-round and restarted",
    "the aggregate SIGKILLed between its model object and its manifest",
    "the same step executed twice (train, aggregate, evaluate)",
    "two runs of the same task at once",
    "NaN / Inf / wrong-shape / huge-norm updates",
    "corrupt edge data (garbage bytes, a missing column)",
    "a straggler past the edge deadline (3 s)",
    "an edge cut off from the cloud for a round (trains offline, delivers late)",
    "2 of 10 Byzantine edges (sign-flipped x10, Multi-Krum)",
    "the task run SIGKILLed mid-round",
    "the task run SIGINTed between rounds",
    "the task run SIGINTed mid-round",
    "the task run SIGKILLed between rounds",
)


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Row]:
    rows = run_suite(tmp_path_factory.mktemp("faults"))
    print("\n" + table(rows))
    return {r.fault: r for r in rows}


def test_the_suite_injects_every_fault_of_the_issue(rows: dict[str, Row]) -> None:
    assert tuple(rows) == FAULTS


@pytest.mark.parametrize("fault", FAULTS)
def test_nothing_is_lost_or_duplicated_and_the_task_resumes(rows: dict[str, Row], fault: str) -> None:
    row = rows[fault]
    assert row.fired, row.problems
    assert (row.lost, row.duplicated) == (0, 0), row.problems
    assert row.consistent and row.resumed, row.problems
