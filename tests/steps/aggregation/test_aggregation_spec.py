"""The spec's ``aggregation`` section: one member per strategy, derived from its declarations; errors at
their field paths; the ``aggregator`` section that composes; what the steps receive; DP planning."""

from __future__ import annotations

import pytest

from edgefed.steps.strategies import (
    STRATEGIES,
    DPFedAvg,
    FedAdam,
    Krum,
    ServerState,
    epsilon_spent,
    from_config,
    noise_for_target,
    parameters,
)
from edgefed.workflows.build import step_config
from edgefed.workflows.errors import SpecError
from edgefed.workflows.spec import AGGREGATION_SPECS, dump_task, parse_task
from tests.helpers import task_doc

# -- the spec ---------------------------------------------------------------------------------------


def problems(doc) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_task(doc)
    return info.value.problems


def test_every_strategy_has_a_spec_member_with_its_parameters_and_defaults():
    members = {spec.model_fields["algorithm"].default: spec for spec in AGGREGATION_SPECS}
    assert sorted(members) == sorted(STRATEGIES)
    for name, spec in members.items():
        fields = {
            (f.alias or n): f.default
            for n, f in spec.model_fields.items()
            if n not in ("algorithm", "max_update_norm", "secure", "secure_threshold")
        }
        assert fields == parameters(STRATEGIES[name]), name
        assert spec.model_fields["max_update_norm"].default is None


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        (
            {"algorithm": "fedfancy"},
            "spec.aggregation.algorithm: unknown algorithm 'fedfancy': expected one of fedavg, fedavgm,",
        ),
        ("fedadam", "spec.aggregation: expected a mapping with an algorithm"),
        ({"algorithm": "fedadam", "beta1": 1.0}, "spec.aggregation.beta1: Input should be less than 1"),
        ({"algorithm": "fedyogi", "beta2": -0.1}, "spec.aggregation.beta2: Input should be greater than"),
        ({"algorithm": "fedadam", "serverLearningRate": 0}, "spec.aggregation.serverLearningRate:"),
        ({"algorithm": "fedavgm", "momentum": 1.0}, "spec.aggregation.momentum: Input should be less than 1"),
        ({"algorithm": "fedadagrad", "tau": -1}, "spec.aggregation.tau: Input should be greater than"),
        (
            {"algorithm": "fedadagrad", "tau": 0},
            "spec.aggregation.tau: fedadagrad: tau=0 needs initialAccumulator > 0",
        ),
        ({"algorithm": "fedprox", "mu": -0.1}, "spec.aggregation.mu: Input should be greater than or equal"),
        ({"algorithm": "trimmed-mean", "beta": 0.5}, "spec.aggregation.beta: Input should be less than 0.5"),
        (
            {"algorithm": "median", "chunk": 0},
            "spec.aggregation.chunk: Input should be greater than or equal",
        ),
        ({"algorithm": "krum", "m": 0}, "spec.aggregation.m: Input should be greater than or equal to 1"),
        ({"algorithm": "fedavg", "beta1": 0.9}, "spec.aggregation.beta1: unknown field"),
        (
            {"algorithm": "fedavg", "maxUpdateNorm": 0},
            "spec.aggregation.maxUpdateNorm: Input should be greater",
        ),
        ({"algorithm": "dp-fedavg", "clip": 0}, "spec.aggregation.clip: Input should be greater than 0"),
        ({"algorithm": "dp-fedavg", "delta": 1.0}, "spec.aggregation.delta: Input should be less than 1"),
        (
            {"algorithm": "dp-fedavg", "noiseMultiplier": 1.0, "targetEpsilon": 3.0},
            "spec.aggregation.targetEpsilon: dp-fedavg: set noiseMultiplier or targetEpsilon, not both",
        ),
        (
            {"algorithm": "dp-fedavg", "adaptive": True, "noiseMultiplier": 1.0},
            "spec.aggregation.noiseMultiplier: dp-fedavg: clippedCountStddev=0.1 is too low for noiseMultiplier=1",
        ),
    ],
)
def test_bad_aggregation_is_reported_at_its_field(aggregation, expected):
    found = problems(task_doc(aggregation=aggregation))
    assert any(p.startswith(expected) for p in found), found


def test_quorum_must_satisfy_krum_at_spec_time():
    edges = tuple(f"e{i}" for i in range(6))
    found = problems(task_doc("k", edges, aggregation={"algorithm": "krum", "f": 1}, quorum=4))
    assert found == [
        "spec.quorum: quorum 4 is too low for the aggregation: krum: f=1 needs n > 2f + 2 = 4 updates, "
        "got 4 (a round must not commit with fewer than 5 updates)"
    ]
    found = problems(task_doc("k", edges, aggregation={"algorithm": "krum", "f": 1, "m": 5}, quorum=5))
    assert any("m=5 needs m <= n - f = 4" in p for p in found), found
    # three edges can never satisfy f = 1: the quorum cannot be raised above the edges either
    found = problems(task_doc("k", edges[:3], aggregation={"algorithm": "krum"}, quorum=3))
    assert found[0].startswith("spec.quorum: quorum 3 is too low"), found
    assert parse_task(task_doc("k", edges[:5], aggregation={"algorithm": "krum"}, quorum=5))


def test_omitted_algorithm_is_fedavg_and_sections_round_trip_to_the_steps():
    task = parse_task(task_doc(aggregation={"maxUpdateNorm": 5}))
    assert task.spec.aggregation.algorithm == "fedavg" and task.spec.aggregation.max_update_norm == 5
    cases = [
        ({"algorithm": "fedadam", "serverLearningRate": 0.05, "beta1": 0.8, "biasCorrection": True}, FedAdam),
        ({"algorithm": "krum", "f": 0, "m": 2}, Krum),
        ({"algorithm": "dp-fedavg", "noiseMultiplier": 0.5, "clip": 0.2, "maxUpdateNorm": 50}, DPFedAvg),
    ]
    for aggregation, cls in cases:
        task = parse_task(task_doc("rt", ("a", "b", "c"), aggregation=aggregation, quorum=3))
        assert parse_task(dump_task(task)) == task
        config = step_config(task)["aggregation"]  # what the aggregate and train steps receive
        strategy = from_config(config)
        assert type(strategy) is cls
        for key, value in aggregation.items():
            if key not in ("algorithm", "maxUpdateNorm"):
                assert config[key] == value
    assert strategy.clients_per_round == 3  # dp-fedavg: the denominator defaults to the edges


@pytest.mark.parametrize(
    ("aggregator", "expected"),
    [
        (
            {"name": "trimmed-mean", "beta": 0.5},
            "spec.aggregation.aggregator.beta: Input should be less than 0.5",
        ),
        (
            {"name": "krum", "m": 0},
            "spec.aggregation.aggregator.m: Input should be greater than or equal to 1",
        ),
        ({"name": "median", "beta": 0.1}, "spec.aggregation.aggregator.beta: unknown field"),
        (
            {"name": "geometric-median"},
            "spec.aggregation.aggregator.name: unknown aggregator 'geometric-median': expected one of mean, median,",
        ),
        ({"beta": 0.1}, "spec.aggregation.aggregator: expected a mapping with a name (one of mean, median,"),
    ],
)
def test_a_bad_aggregator_section_is_reported_at_its_field(aggregator, expected):
    found = problems(task_doc(aggregation={"algorithm": "fedadam", "aggregator": aggregator}))
    assert any(p.startswith(expected) for p in found), found


def test_an_aggregator_section_composes_and_reaches_the_steps():
    cases = [
        ({"algorithm": "fedadam", "aggregator": {"name": "trimmed-mean", "beta": 0.2}}, "trimmed-mean"),
        ({"algorithm": "dp-fedavg", "noiseMultiplier": 0.5, "aggregator": {"name": "median"}}, "median"),
        ({"algorithm": "fedavgm", "aggregator": {"name": "krum", "f": 0, "m": 2}}, "krum"),
    ]
    for aggregation, inner in cases:
        task = parse_task(task_doc("rt", ("a", "b", "c"), aggregation=aggregation, quorum=3))
        assert parse_task(dump_task(task)) == task
        config = step_config(task)["aggregation"]
        assert config["aggregator"]["name"] == inner
        strategy = from_config(config)
        assert strategy.name == aggregation["algorithm"] and not strategy.streaming
        assert inner in [p.name for p in strategy.composition.aggregator.parts()]
    # without one, the steps' section is exactly what it was: no aggregator key
    assert step_config(parse_task(task_doc()))["aggregation"] == {
        "algorithm": "fedavg",
        "maxUpdateNorm": None,
    }
    found = problems(task_doc(aggregation={"algorithm": "dp-fedavg", "aggregator": {"name": "mean"}}))
    assert found[0].startswith("spec.aggregation.aggregator: dp-fedavg: aggregator mean with weighted=True")
    found = problems(
        task_doc(
            "k",
            ("a", "b", "c"),
            aggregation={"algorithm": "fedadam", "aggregator": {"name": "krum"}},
            quorum=3,
        )
    )
    assert found[0].startswith(
        "spec.quorum: quorum 3 is too low for the aggregation: fedadam: f=1 needs n > 2f + 2"
    )


def test_dp_target_epsilon_is_spread_over_the_tasks_rounds():
    doc = task_doc(aggregation={"algorithm": "dp-fedavg", "targetEpsilon": 4.0, "delta": 1e-4}, rounds=20)
    doc["spec"]["stop"] = {"maxRounds": 12}
    aggregation = parse_task(doc).spec.aggregation
    assert aggregation.planned_rounds == 12 and aggregation.clients_per_round == 2
    strategy = aggregation.strategy()
    z = noise_for_target(4.0, 1e-4, 12)
    assert strategy.effective_noise_multiplier == pytest.approx(z)
    assert epsilon_spent(z, 1.0, 12, 1e-4) <= 4.0
    # explicit plannedRounds wins; noise alone needs no plan
    doc["spec"]["aggregation"]["plannedRounds"] = 3
    assert parse_task(doc).spec.aggregation.strategy().effective_noise_multiplier < z
    plain = parse_task(task_doc(aggregation={"algorithm": "dp-fedavg"})).spec.aggregation
    assert plain.planned_rounds is None and plain.strategy().effective_noise_multiplier == 1.0


def test_privacy_ledger_composes_rounds_of_different_noise():
    strategy = DPFedAvg(noise_multiplier=1.2, clients_per_round=2)
    state = ServerState("dp-fedavg", scalars={"privacyLedger": [[1.2, 3]]})
    spent = strategy.privacy_spent(state)
    assert spent["rounds"] == 3 and spent["epsilon"] == pytest.approx(epsilon_spent(1.2, 1.0, 3, 1e-5))
    state.scalars["privacyLedger"] = [[1.2, 3], [2.0, 2]]
    mixed = strategy.privacy_spent(state)["epsilon"]
    assert epsilon_spent(2.0, 1.0, 5, 1e-5) < mixed < epsilon_spent(1.2, 1.0, 5, 1e-5)
    state.scalars["privacyLedger"] = [[0.0, 1]]
    assert strategy.privacy_spent(state)["epsilon"] is None  # unbounded: JSON null, not Infinity
