"""The secure-aggregation protocol itself (steps/secagg.py): real X25519/HKDF/AES keys, real Shamir shares.

The end-to-end rounds (the generated Workflow, the store, training) are tests/rounds/test_secure.py; here
the protocol's properties are checked one by one at 10 edges, fast.
"""

from __future__ import annotations

import base64
import contextlib

import numpy as np
import pytest
from scipy import stats

from edgefed.steps import secagg as sa
from edgefed.workflows.errors import EdgefedError
from edgefed.workflows.spec import parse_task
from tests.helpers import task_doc

EDGES = [f"e{i}" for i in range(10)]
SIZE = 650  # the MLP 64-10 of the reference experiment


@pytest.fixture(scope="module")
def protocol():
    """Every edge's secrets, the roster, and each edge's encrypted shares."""
    own = {e: sa.EdgeSecrets.generate() for e in EDGES}
    roster = sa.Roster.build("task/1/wf", {e: own[e].public() for e in EDGES})
    shares = {e: sa.encrypt_shares(e, own[e], roster) for e in EDGES}
    return own, roster, shares


def _round(protocol, inputs: dict[str, np.ndarray], dropped: list[str], sharers: list[str] = EDGES):
    """A secure round at the protocol level: survivors mask, answer, the server unmasks the sum."""
    own, roster, shares = protocol
    survivors = [e for e in sharers if e not in dropped]
    total = np.zeros(SIZE, np.uint64)
    for e in survivors:
        total += sa.mask(sa.encode(inputs[e], roster, len(sharers)), e, own[e], roster, sharers)
    answers = []
    for e in survivors:
        received = sa.decrypt_shares(e, own[e], roster, {s: shares[s][e] for s in sharers})
        answers.append(sa.respond(e, received, sharers, survivors))
    seeds, keys = sa.recover(roster, sharers, survivors, answers)
    assert sorted(seeds) == survivors and sorted(keys) == sorted(dropped)
    return sa.decode(sa.unmask(total, roster, survivors, seeds, keys), roster), survivors


@pytest.mark.parametrize("dropped", [[], ["e3"], ["e3", "e8"]], ids=["0", "1", "2"])
def test_the_unmasked_sum_is_the_plain_sum_with_dropouts(protocol, dropped):
    rng = np.random.default_rng(len(dropped))
    # weighted updates c (w - w_g) of edges with 100-200 examples
    inputs = {e: rng.integers(100, 200) * rng.normal(0, 0.05, SIZE) for e in EDGES}
    total, survivors = _round(protocol, inputs, dropped)
    plain = sum(inputs[e] for e in survivors)
    weight = 150 * len(survivors)
    assert np.abs(total - plain).max() / weight <= 1e-7  # the FedAvg mean, well inside 1e-5
    assert np.abs(total - plain).max() <= len(survivors) * 2.0 ** -(sa.DEFAULT_FRACTION_BITS + 1)


def test_a_masked_input_is_uniform_noise_whatever_the_input(protocol):
    own, roster, _ = protocol
    for values in (np.zeros(SIZE), np.full(SIZE, 3.0), np.linspace(-1, 1, SIZE)):
        encoded = sa.encode(values, roster, len(EDGES))
        masked = sa.mask(encoded, "e0", own["e0"], roster, EDGES)
        assert stats.kstest(masked.astype(np.float64) / 2.0**64, "uniform").pvalue > 1e-4
        assert stats.chisquare(np.bincount(masked.view(np.uint8), minlength=256)).pvalue > 1e-4
    # the encoded input alone is not (the check can tell)
    assert stats.kstest(encoded.astype(np.float64) / 2.0**64, "uniform").pvalue < 1e-10


def test_pairwise_masks_cancel_only_in_the_full_sum(protocol):
    own, roster, _ = protocol
    zero = sa.encode(np.zeros(SIZE), roster, 2)
    three = ["e0", "e1", "e2"]
    # self masks removed, pairwise masks of three edges that all survive cancel exactly
    total = np.zeros(SIZE, np.uint64)
    for e in three:
        total += sa.mask(zero, e, own[e], roster, three) - sa.prg(own[e].self_seed, SIZE)
    assert not total.any()
    # two of them alone still carry their masks with the third
    partial = sum(sa.mask(zero, e, own[e], roster, three) - sa.prg(own[e].self_seed, SIZE) for e in three[:2])
    assert (partial != 0).mean() > 0.99


def test_threshold_shares_rebuild_a_secret_and_fewer_do_not():
    secret = bytes(range(32))
    xs = list(range(1, 11))
    shares = sa.split(secret, xs, 7)
    assert sa.combine({x: shares[x] for x in xs[3:]}, 7) == secret
    assert sa.combine({x: shares[x] for x in xs[:7]}, 7) == secret
    with pytest.raises(sa.SecAggError, match="6 share"):
        sa.combine({x: shares[x] for x in xs[:6]}, 7)
    # six shares with a seventh guessed give another value: they say nothing of the secret
    guessed = {**{x: shares[x] for x in xs[:6]}, 7: (shares[7] + 1) % sa.PRIME}
    with contextlib.suppress(sa.SecAggError):  # (or not even a 32-byte value)
        assert sa.combine(guessed, 7) != secret


def test_too_few_answers_cannot_unmask(protocol):
    own, roster, shares = protocol
    survivors = EDGES[:7]
    answers = [
        sa.respond(
            e, sa.decrypt_shares(e, own[e], roster, {s: shares[s][e] for s in EDGES}), EDGES, survivors
        )
        for e in survivors[: roster.threshold - 1]
    ]
    with pytest.raises(sa.SecAggError, match=f"{roster.threshold - 1} unmasking response"):
        sa.recover(roster, EDGES, survivors, answers)
    # an answer given for another survivor list does not count towards them
    other = sa.respond(
        "e9", sa.decrypt_shares("e9", own["e9"], roster, {s: shares[s]["e9"] for s in EDGES}), EDGES, EDGES
    )
    with pytest.raises(sa.SecAggError, match=f"{roster.threshold - 1} unmasking response"):
        sa.recover(roster, EDGES, survivors, [*answers, other])
    assert len(
        sa.recover(
            roster,
            EDGES,
            EDGES,
            [
                other,
                *[
                    sa.respond(
                        e,
                        sa.decrypt_shares(e, own[e], roster, {s: shares[s][e] for s in EDGES}),
                        EDGES,
                        EDGES,
                    )
                    for e in EDGES[: roster.threshold - 1]
                ],
            ],
        )[0]
    ) == len(EDGES)


def test_an_edge_never_reveals_both_secrets_of_one_edge(protocol):
    own, roster, shares = protocol
    received = sa.decrypt_shares("e0", own["e0"], roster, {s: shares[s]["e0"] for s in EDGES})
    answer = sa.respond("e0", received, EDGES, [e for e in EDGES if e != "e5"])
    assert not set(answer.self_shares) & set(answer.mask_shares)
    assert set(answer.mask_shares) == {"e5"} and "e5" not in answer.self_shares
    with pytest.raises(sa.SecAggError, match="not among the survivors"):
        sa.respond("e5", received, EDGES, [e for e in EDGES if e != "e5"])
    with pytest.raises(sa.SecAggError, match="did not share"):
        sa.respond("e0", received, EDGES[:8], EDGES)


def test_a_share_decrypts_only_for_its_recipient_and_round(protocol):
    own, roster, shares = protocol
    with pytest.raises(sa.SecAggError, match="e1 sent does not decrypt"):
        sa.decrypt_shares("e2", own["e2"], roster, {"e1": shares["e1"]["e0"]})  # another's share
    other_round = sa.Roster(context="task/2/wf", keys=roster.keys, threshold=roster.threshold)
    with pytest.raises(sa.SecAggError, match="does not decrypt"):
        sa.decrypt_shares("e0", own["e0"], other_round, {"e1": shares["e1"]["e0"]})
    tampered = bytearray(base64.b64decode(shares["e1"]["e0"]))
    tampered[-1] ^= 1
    with pytest.raises(sa.SecAggError, match="does not decrypt"):
        sa.decrypt_shares("e0", own["e0"], roster, {"e1": base64.b64encode(bytes(tampered)).decode()})


def test_the_roster_and_the_encoding_refuse_what_they_cannot_hold(protocol):
    own, roster, _ = protocol
    with pytest.raises(sa.SecAggError, match="at least 3 edges, 2 advertised"):
        sa.Roster.build("c", {e: own[e].public() for e in EDGES[:2]})
    with pytest.raises(sa.SecAggError, match="'mask' public key"):
        sa.Roster.build(
            "c", {**{e: own[e].public() for e in EDGES[:3]}, "e9": {"share": "00" * 32, "mask": "ab"}}
        )
    with pytest.raises(sa.SecAggError, match="exceeds what 24 fraction bits hold"):
        sa.encode(np.array([1e12]), roster, 10)
    with pytest.raises(sa.SecAggError, match="not finite"):
        sa.encode(np.array([np.nan]), roster, 10)
    assert [sa.threshold_for(n) for n in (3, 4, 6, 10, 100)] == [2, 3, 4, 7, 67]
    assert sa.threshold_for(10, 0.9) == 9


@pytest.mark.parametrize(
    ("aggregation", "edges", "field", "message"),
    [
        (
            {"algorithm": "median", "secure": True},
            4,
            "spec.aggregation.secure",
            "needs every update in the clear",
        ),
        (
            {"algorithm": "fedavg", "secure": True, "aggregator": {"name": "trimmed-mean", "beta": 0.1}},
            4,
            "spec.aggregation.secure",
            "with an aggregator section",
        ),
        (
            {"algorithm": "dp-fedavg", "secure": True, "noiseMultiplier": 1.0, "clip": 1.0},
            4,
            "spec.aggregation.secure",
            "fedavg",
        ),
        (
            {"algorithm": "fedavg", "secureThreshold": 0.8},
            4,
            "spec.aggregation.secureThreshold",
            "only with secure",
        ),
        (
            {"algorithm": "fedavg", "secure": True, "secureThreshold": 0.5},
            4,
            "spec.aggregation.secureThreshold",
            "greater than 0.5",
        ),
        ({"algorithm": "fedavg", "secure": True}, 2, "spec.aggregation.secure", "at least 3 edges"),
    ],
)
def test_the_spec_refuses_secure_aggregation_it_cannot_run(aggregation, edges, field, message):
    doc = task_doc("t", tuple(f"x{i}" for i in range(edges)), aggregation=aggregation)
    with pytest.raises(EdgefedError) as caught:
        parse_task(doc)
    assert field in str(caught.value) and message in str(caught.value), str(caught.value)


@pytest.mark.parametrize("algorithm", ["fedavg", "fedavgm", "fedadagrad", "fedyogi", "fedadam", "fedprox"])
def test_the_spec_takes_secure_aggregation_with_fedavg_and_fedopt(algorithm):
    task = parse_task(task_doc("t", ("a", "b", "c"), aggregation={"algorithm": algorithm, "secure": True}))
    assert task.spec.aggregation.secure
    assert parse_task(task_doc("t", ("a", "b"))).spec.aggregation.strategy_config().get("secure") is None
