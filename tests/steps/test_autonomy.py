"""Edge autonomy's bookkeeping on the real store, with the identities the steps hold: the edge's outbox in its
own site's bucket (site identity), delivery under its prefix of the updates bucket (edge identity), the
manifest as the one record of consumption, and the aggregate's rules for a late update."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import numpy as np
import pytest

from edgefed.steps import autonomy, codec, layout, strategies
from edgefed.steps.registry import ModelRegistry
from edgefed.steps.store import STORE_RETRY, StepError, bounded_retry, get_bytes, put_bytes

EDGE = "a"  # one of the session store's edges
RULES = {
    "enabled": True,
    "cloudWaitSeconds": 1,
    "lateUpdates": "use",
    "maxStaleness": 3,
    "stalenessExponent": 0.5,
}


def _ctx(task: str, round_: int, **rules) -> SimpleNamespace:
    return SimpleNamespace(
        task=task,
        round=round_,
        workflow=f"{task}-round-{round_:05d}",
        config={"aggregation": {"algorithm": "fedavg"}, "autonomy": {**RULES, **rules}},
    )


def _update(trained: int, weights: list[np.ndarray], parent: dict, edge: str = EDGE) -> bytes:
    meta = {
        "edge": edge,
        "round": trained,
        "examples": 40,
        "parentRound": parent["round"],
        "parentSha256": parent["model"]["sha256"],
        "metrics": {"loss": 0.5},
        "offline": True,
    }
    return codec.encode(weights, meta)


@pytest.fixture
def task(store) -> tuple[str, ModelRegistry, list[dict]]:
    """A fresh task with rounds 0 and 1 committed (weights 0 and 1)."""
    name = f"auto-{uuid.uuid4().hex[:8]}"
    registry = ModelRegistry(store.client(layout.CLOUD_IDENTITY))
    manifests = [
        registry.commit(
            name, r, [np.full((2, 3), r, np.float32), np.full(3, r, np.float32)], {"workflow": "w"}
        )
        for r in (0, 1)
    ]
    return name, registry, manifests


def test_offline_work_is_off_in_a_secure_round_and_without_the_section():
    assert autonomy.works_offline({"autonomy": RULES})
    assert not autonomy.works_offline({"autonomy": RULES, "aggregation": {"secure": True}})
    assert not autonomy.works_offline({"autonomy": {**RULES, "enabled": False}})
    assert not autonomy.works_offline({})  # a config written before the section existed


def test_the_cloud_wait_bounds_the_retries():
    assert bounded_retry(1).total < bounded_retry(10).total < STORE_RETRY.total
    assert bounded_retry(600).total == STORE_RETRY.total


def test_the_edge_copy_of_the_global_model_is_verified(store, task):
    name, registry, manifests = task
    site = store.client(layout.site_identity(EDGE))
    assert autonomy.site_parent(site, EDGE, name) is None
    data = registry.verified_object(manifests[1]["model"], "round 1")
    bucket, key = layout.edge_bucket(EDGE), layout.site_parent_key(name)
    put_bytes(site, bucket, key, data, metadata={"round": "1", "sha256": manifests[1]["model"]["sha256"]})
    parent = autonomy.site_parent(site, EDGE, name)
    assert parent.round == 1 and parent.sha256 == manifests[1]["model"]["sha256"]
    assert float(parent.weights[0][0, 0]) == 1.0
    put_bytes(
        site,
        bucket,
        key,
        data[:-1] + b"x",
        metadata={"round": "1", "sha256": manifests[1]["model"]["sha256"]},
    )
    with pytest.raises(StepError, match="corrupt"):
        autonomy.site_parent(site, EDGE, name)


def test_an_entry_is_sent_until_a_manifest_records_it_then_closed(store, task):
    name, registry, manifests = task
    site = store.client(layout.site_identity(EDGE))
    edge_cloud = store.client(layout.edge_identity(EDGE))  # the edge's identity in the cloud store
    outbox = autonomy.Outbox(site, EDGE, name)
    kept = _update(2, [np.full((2, 3), 5, np.float32), np.full(3, 5, np.float32)], manifests[0])
    outbox.keep(2, kept)
    assert outbox.pending() == [2]

    # round 3: sent beside the edge's update
    assert outbox.deliver(_ctx(name, 3), edge_cloud) == [2]
    late_key = layout.late_update_key(EDGE, name, 3, f"{name}-round-00003", 2)
    assert get_bytes(store.client(layout.CLOUD_IDENTITY), layout.UPDATES_BUCKET, late_key) == kept
    assert outbox.pending() == [2]  # not closed: no manifest has recorded it yet
    # round 3 never committed: round 4 sends it again
    assert outbox.deliver(_ctx(name, 4), edge_cloud) == [2]
    # round 4 commits and records it: round 5 closes the entry and sends nothing
    for r in (2, 3):
        registry.commit(name, r, [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)], {"workflow": "w"})
    record = {"edge": EDGE, "trainedRound": 2, "used": True, "staleness": 3}
    registry.commit(
        name,
        4,
        [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)],
        {"workflow": "w", "lateUpdates": [record]},
    )
    assert outbox.deliver(_ctx(name, 5), edge_cloud) == []
    assert outbox.pending() == []
    done = json.loads(get_bytes(site, layout.edge_bucket(EDGE), layout.outbox_key(name, 2, "done")))
    assert done["consumedIn"] == 4 and done["used"] is True
    # an update kept in a round that is then trained again online is superseded, not delivered
    outbox.keep(5, kept)
    assert outbox.deliver(_ctx(name, 5), edge_cloud) == []
    done = json.loads(get_bytes(site, layout.edge_bucket(EDGE), layout.outbox_key(name, 5, "done")))
    assert "supersededBy" in done


def _fold(store, name, registry, named, round_: int = 2, **rules):
    """The aggregate's late-update pass of ``round_`` (parent: the round before) under ``rules``;
    (records, the aggregated weights or None when none was used)."""
    ctx = _ctx(name, round_, **rules)
    strategy = strategies.from_config({"algorithm": "fedavg"}, screening=True)
    parent = SimpleNamespace(round=round_ - 1, weights=registry.load(name, round_ - 1).weights)
    strategy.begin(parent.weights, None)
    try:
        cloud = store.client(layout.CLOUD_IDENTITY)
        records, _ = autonomy.add_late_updates(ctx, cloud, registry, strategy, parent, named)
        used = [r for r in records if r["used"]]
        weights = strategy.finish()[0] if used else None
    finally:
        strategy.close()
    return records, weights


def _deliver_as(store, name: str, trained: int, data: bytes, round_: int = 2) -> None:
    key = layout.late_update_key(EDGE, name, round_, f"{name}-round-{round_:05d}", trained)
    put_bytes(store.client(layout.edge_identity(EDGE)), layout.UPDATES_BUCKET, key, data)


def test_a_late_update_enters_as_its_change_applied_to_the_round_parent(store, task):
    name, registry, manifests = task
    # trained from round 0 (weights 0) to weights 5: a change of +5, applied to round 1's weights 1
    _deliver_as(
        store, name, 1, _update(1, [np.full((2, 3), 5, np.float32), np.full(3, 5, np.float32)], manifests[0])
    )
    [record], weights = _fold(store, name, registry, [(EDGE, [1])])
    assert record["used"] is True and record["staleness"] == 1
    assert record["weight"] == pytest.approx(40 * 2**-0.5)
    assert np.allclose(weights[0], 6.0) and np.allclose(weights[1], 6.0)


@pytest.mark.parametrize(
    ("rules", "tamper", "reason"),
    [
        ({"lateUpdates": "drop"}, None, "autonomy.lateUpdates: drop"),
        ({"maxStaleness": 0}, None, "more than autonomy.maxStaleness 0"),
        ({}, "parent", "not the task's committed round 0"),
        ({}, "shape", "update rejected: array 0: shape"),
        ({}, "edge", "not edge a's update of round 1"),
        ({}, "absent", "not in the store"),
    ],
)
def test_a_late_update_is_dropped_by_rule_with_its_reason(store, task, rules, tamper, reason):
    name, registry, manifests = task
    weights = [np.full((2, 3), 5, np.float32), np.full(3, 5, np.float32)]
    parent = manifests[0]
    if tamper == "parent":
        parent = {**parent, "model": {"sha256": "0" * 64}}
    if tamper == "shape":
        weights[0] = np.zeros((3, 3), np.float32)
    if tamper != "absent":
        _deliver_as(store, name, 1, _update(1, weights, parent, edge="b" if tamper == "edge" else EDGE))
    [record], folded = _fold(store, name, registry, [(EDGE, [1])], **rules)
    assert record["used"] is False and reason in record["reason"], record
    assert folded is None


def test_a_late_update_whose_round_counted_it_after_all_is_dropped(store, task):
    """The edge's PUT arrived but its answer was lost: it kept the update too; the round that delivers it
    finds the edge among that round's contributors and does not count it twice."""
    name, registry, manifests = task
    zeros = [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)]
    registry.commit(name, 2, zeros, {"workflow": "w", "contributors": [{"edge": EDGE, "examples": 40}]})
    weights = [np.full((2, 3), 5, np.float32), np.full(3, 5, np.float32)]
    _deliver_as(store, name, 2, _update(2, weights, manifests[1]), round_=3)
    [record], folded = _fold(store, name, registry, [(EDGE, [2])], round_=3)
    assert record["used"] is False and "counted in that round" in record["reason"], record
    assert folded is None


def test_a_verdict_the_cloud_cannot_receive_waits_in_the_outbox(store, monkeypatch, tmp_path, capsys):
    """Data checked afresh while the cloud is out of reach: the verdict is kept at the edge (its offline
    update then carries it), and the step's outputs say the data passed."""
    from edgefed.steps import datasets, validate
    from edgefed.steps.store import parquet_bytes
    from tests.helpers import free_port

    name, key = f"auto-{uuid.uuid4().hex[:8]}", f"autonomy-test/{uuid.uuid4().hex[:8]}.parquet"
    frame = datasets.partition("digits", edges=[EDGE, "b"], seed=3).edges[EDGE]
    put_bytes(store.client(layout.ADMIN_IDENTITY), layout.edge_bucket(EDGE), key, parquet_bytes(frame))
    for var, identity in (("", layout.edge_identity(EDGE)), ("SITE_", layout.site_identity(EDGE))):
        creds = store.credentials(identity)
        monkeypatch.setenv(f"EDGEFED_{var}ACCESS_KEY", creds.access_key)
        monkeypatch.setenv(f"EDGEFED_{var}SECRET_KEY", creds.secret_key)
    config = {"dataset": "digits", "model": {"name": "logistic", "inputShape": [64], "classes": 10}}
    config["autonomy"] = {**RULES, "cloudWaitSeconds": 1}
    outputs = tmp_path / "outputs"
    code = validate.run(
        [
            f"--task={name}",
            "--round=2",
            "--workflow=wf-2",
            f"--store=http://127.0.0.1:{free_port()}",  # nothing listens: the cloud refuses
            f"--config={json.dumps(config)}",
            f"--outputs={outputs}",
            f"--edge={EDGE}",
            f"--dataset=s3://{layout.edge_bucket(EDGE)}/{key}",
            f"--dataset-store=http://{store.endpoint}",
        ]
    )
    assert code == 0 and (outputs / "passed").read_text() == "true"
    assert "the verdict waits at the edge" in capsys.readouterr().out
    kept = autonomy.Outbox(store.client(layout.site_identity(EDGE)), EDGE, name).verdict(2)
    assert kept is not None and kept["passed"] is True and kept["rows"] == len(frame)
    assert kept["round"] == 2 and kept["datasetEtag"]


def test_the_parent_the_plan_names_is_fetched_without_its_manifest_and_verified(store, task):
    name, _, manifests = task
    edge_cloud = store.client(layout.edge_identity(EDGE))
    from edgefed.steps.plan import parent_output

    text = parent_output(1, manifests[1]["model"])
    assert autonomy.parent_ref("", 1) is None
    assert autonomy.parent_ref(text, 2) is None  # names another round: the step reads the manifest
    with pytest.raises(StepError, match="--parent"):
        autonomy.parent_ref("{not json", 1)
    parent, data = autonomy.load_parent(_ctx(name, 2), edge_cloud, autonomy.parent_ref(text, 1))
    assert parent.round == 1 and parent.sha256 == manifests[1]["model"]["sha256"]
    assert float(parent.weights[0][0, 0]) == 1.0 and codec.sha256(data) == parent.sha256
    # without a ref, the same from the manifest
    assert autonomy.load_parent(_ctx(name, 2), edge_cloud)[0].sha256 == parent.sha256
    # a ref whose digest the bytes do not have is refused
    wrong = json.dumps({**json.loads(text), "sha256": "0" * 64})
    with pytest.raises(StepError, match="corrupt"):
        autonomy.load_parent(_ctx(name, 2), edge_cloud, autonomy.parent_ref(wrong, 1))
