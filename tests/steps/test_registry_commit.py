"""The commit of a round is atomic under concurrency (the real store decides, in one request).

Many commits of one round start together, each with its own client. The store's pre-check is made to let
every one of them through before any writes (the worst interleaving, made certain instead of left to the
scheduler), so all of them reach the commit point: the conditional write of the manifest. Exactly one
wins; the others fail with :class:`RoundCommittedError` naming the winner, and nothing of the round
exists twice (one manifest version, one ``latest`` version, the model the manifest names).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgefed.steps import layout
from edgefed.steps import registry as registry_module
from edgefed.steps.aggregate import aggregate
from edgefed.steps.registry import ModelRegistry, RoundCommittedError
from edgefed.steps.store import ObjectExistsError, StepError, put_bytes
from tests.steps.aggregation.test_aggregate_step import (  # noqa: F401 (fixtures)
    GLOBAL,
    cloud_env,
    put_update,
    screen_store,
    step_context,
)

COMMITTERS = 12


def versions(client, key: str) -> list:
    return [
        v
        for v in client.list_objects(layout.MODELS_BUCKET, prefix=key, include_version=True)
        if v.object_name == key and not v.is_delete_marker
    ]


def race(store, task: str, round_: int, monkeypatch) -> list:
    """``COMMITTERS`` commits of ``round_`` at once; returns each one's manifest or exception."""
    barrier = threading.Barrier(COMMITTERS, timeout=30)
    real_exists = registry_module.exists

    def exists_then_wait(client, bucket, key):
        found = real_exists(client, bucket, key)
        if key.endswith("manifest.json"):
            barrier.wait()  # every committer has seen "no manifest yet" before any writes
        return found

    def commit(i: int):
        registry = ModelRegistry(store.client(layout.CLOUD_IDENTITY))
        weights = [np.full(3, float(i), np.float32)]
        try:
            return registry.commit(task, round_, weights, {"workflow": f"committer-{i}"})
        except StepError as err:
            return err

    with monkeypatch.context() as patch, ThreadPoolExecutor(COMMITTERS) as pool:
        patch.setattr(registry_module, "exists", exists_then_wait)
        return list(pool.map(commit, range(COMMITTERS)))


@pytest.mark.parametrize("trial", range(3))
def test_of_many_concurrent_commits_of_a_round_exactly_one_wins(store, monkeypatch, trial):
    task = f"race-{trial}"
    results = race(store, task, 1, monkeypatch)
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if not isinstance(r, dict)]
    assert len(won) == 1, f"{len(won)} commits of one round succeeded"
    assert len(lost) == COMMITTERS - 1
    winner = won[0]
    for err in lost:
        assert isinstance(err, RoundCommittedError), err
        assert err.winner["commitId"] == winner["commitId"]
        assert f"workflow {winner['workflow']!r}" in str(err)
        assert "referenced by no manifest" in str(err)
    client = store.client(layout.CLOUD_IDENTITY)
    assert len(versions(client, layout.manifest_key(task, 1))) == 1
    assert len(versions(client, layout.latest_key(task))) == 1
    registry = ModelRegistry(client)
    loaded = registry.load(task, 1)  # the model the manifest names, its SHA-256 verified
    i = int(winner["workflow"].removeprefix("committer-"))
    np.testing.assert_array_equal(loaded.weights[0], np.full(3, float(i), np.float32))
    assert registry.last_committed(task) == 1
    assert registry.latest_versions(task)[0]["round"] == 1


def test_a_committed_round_is_refused_before_anything_is_written(store):
    client = store.client(layout.CLOUD_IDENTITY)
    registry = ModelRegistry(client)
    registry.commit("refused", 0, [np.zeros(2, np.float32)], {"workflow": "first"})
    with pytest.raises(RoundCommittedError, match="already committed") as caught:
        registry.commit("refused", 0, [np.ones(2, np.float32)], {"workflow": "second"})
    assert caught.value.winner is None
    assert len(versions(client, layout.model_key("refused", 0))) == 1


def test_a_conditional_write_is_refused_by_the_store_itself(store):
    client = store.client(layout.CLOUD_IDENTITY)
    key = "write-once/object"
    assert put_bytes(client, layout.MODELS_BUCKET, key, b"first", if_absent=True)
    with pytest.raises(ObjectExistsError, match=key):
        put_bytes(client, layout.MODELS_BUCKET, key, b"second", if_absent=True)
    assert client.get_object(layout.MODELS_BUCKET, key).read() == b"first"


def test_a_commit_whose_manifest_request_was_sent_twice_is_still_its_own(store, monkeypatch):
    """A manifest PUT retried after its answer was lost meets its own manifest (412): still a success."""
    real_put = registry_module.put_bytes

    def put_twice(client, bucket, key, data, **kwargs):
        version = real_put(client, bucket, key, data, **kwargs)
        if kwargs.get("if_absent"):
            real_put(client, bucket, key, data, **kwargs)  # the retry: refused, the manifest exists
        return version

    monkeypatch.setattr(registry_module, "put_bytes", put_twice)
    manifest = ModelRegistry(store.client(layout.CLOUD_IDENTITY)).commit(
        "resent", 0, [np.zeros(2, np.float32)], {"workflow": "w"}
    )
    assert manifest["latestVersionId"]


def test_the_aggregate_step_executed_twice_keeps_the_first_commit(cloud_env, tmp_path):  # noqa: F811
    """As after a lost pod: the rerun of the same workflow's aggregate succeeds and changes nothing; the
    aggregate of another workflow for a committed round is refused."""
    store = cloud_env
    registry = ModelRegistry(store.client(layout.CLOUD_IDENTITY))
    parent = registry.commit("twice", 0, GLOBAL, {"workflow": "manual", "contributors": [], "missing": []})
    rng = np.random.default_rng(0)
    for edge in ("s-good1", "s-good2"):
        weights = [(g + rng.standard_normal(g.shape)).astype(np.float32) for g in GLOBAL]
        put_update(store, edge, "twice", 1, weights, parent["model"]["sha256"])
    ctx = step_context(store, "twice", 1, {"algorithm": "fedavg"}, tmp_path)
    first = aggregate(ctx, ["s-good1", "s-good2"], 2)
    again = aggregate(ctx, ["s-good1", "s-good2"], 2)
    assert again["commitId"] == first["commitId"]
    client = store.client(layout.CLOUD_IDENTITY)
    assert len(versions(client, layout.manifest_key("twice", 1))) == 1
    assert len(versions(client, layout.model_key("twice", 1))) == 1  # the rerun wrote nothing
    other = dataclasses.replace(ctx, workflow="another")
    for edge in ("s-good1", "s-good2"):  # that workflow's edges trained too
        update = store.client(layout.CLOUD_IDENTITY).get_object(
            layout.UPDATES_BUCKET, layout.update_key(edge, "twice", 1, "manual")
        )
        put_bytes(
            store.client(layout.edge_identity(edge)),
            layout.UPDATES_BUCKET,
            layout.update_key(edge, "twice", 1, "another"),
            update.read(),
        )
    with pytest.raises(RoundCommittedError, match="already committed"):
        aggregate(other, ["s-good1", "s-good2"], 2)


def test_the_audit_shows_each_round_as_committed_and_names_what_no_longer_holds(store):
    """What an identity could do to a committed round after the fact, each seen by the audit: a second
    manifest version (the cloud may PUT), a delete marker over a manifest, and a model version removed by
    an admin bypassing governance. Untouched rounds verify."""
    from minio.deleteobjects import DeleteObject

    task = "audited"
    cloud = store.client(layout.CLOUD_IDENTITY)
    admin = store.client(layout.ADMIN_IDENTITY)
    registry = ModelRegistry(cloud)
    committed = [
        registry.commit(task, r, [np.full(2, float(r), np.float32)], {"workflow": "w"}) for r in range(4)
    ]
    assert [(a.round, a.problems) for a in registry.audit(task)] == [(r, ()) for r in range(4)]
    assert committed[0]["model"]["etag"]

    forged = {**committed[1], "model": {**committed[1]["model"], "sha256": "0" * 64}}
    put_bytes(cloud, layout.MODELS_BUCKET, layout.manifest_key(task, 1), json.dumps(forged).encode())
    admin.remove_object(layout.MODELS_BUCKET, layout.manifest_key(task, 2))  # a delete marker
    model = committed[3]["model"]
    errors = admin.remove_objects(
        layout.MODELS_BUCKET, [DeleteObject(model["key"], model["versionId"])], bypass_governance_mode=True
    )
    assert list(errors) == []

    audited = {a.round: a for a in registry.audit(task)}
    assert audited[0].verified
    assert audited[1].manifest["model"]["sha256"] == committed[1]["model"]["sha256"]  # as committed
    assert audited[1].problems == (
        "its manifest was written 1 more time(s) after the commit (the commit's first version is shown)",
    )
    assert audited[2].problems == ("its manifest is hidden behind a delete marker",)
    assert audited[3].problems == (f"the model version it names ({model['versionId']}) is gone",)


def test_a_commit_stopped_before_its_manifest_and_retried_leaves_one_model_version(store, monkeypatch):
    """An aggregate killed between the model object and the manifest, then retried with the same updates:
    the retry finds the model bytes already there (no manifest names them) and commits that version."""
    client = store.client(layout.CLOUD_IDENTITY)
    weights = [np.arange(4, dtype=np.float32)]
    real_put = registry_module.put_bytes

    def killed_before_manifest(client_, bucket, key, data, **kwargs):
        if kwargs.get("if_absent"):
            raise SystemExit(137)  # the pod dies here
        return real_put(client_, bucket, key, data, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(registry_module, "put_bytes", killed_before_manifest)
        with pytest.raises(SystemExit):
            ModelRegistry(client).commit("killed", 1, weights, {"workflow": "w"})
    assert ModelRegistry(client).committed_rounds("killed") == []
    manifest = ModelRegistry(client).commit("killed", 1, weights, {"workflow": "w"})
    assert len(versions(client, layout.model_key("killed", 1))) == 1
    assert ModelRegistry(client).audit("killed")[0].verified
    other = ModelRegistry(client).commit("killed", 2, [w + 1 for w in weights], {"workflow": "w"})
    assert other["model"]["versionId"] != manifest["model"]["versionId"]
