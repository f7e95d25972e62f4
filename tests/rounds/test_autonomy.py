"""Edge autonomy end to end: one edge is cut off from the cloud for a round (every cloud request of its
validate and train steps refused, :mod:`tests.rounds.faults`' ``cloudRefused``) while its own site's store
still answers; the generated round Workflows run on the embedded engine with real training and the real store.

What must happen: the edge checks its data and trains anyway, from its copy of the last global model it
received, and keeps the update (and a verdict it could not send) in its site's outbox; the round commits without it and says
why; the next round it delivers the update as a late update, which the aggregate uses (its change applied to
the round's global model, staleness-weighted) or drops by the spec's rule, and records in the manifest; the
round after, the edge closes its outbox entry. Every update every edge trained is accounted for exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

from edgefed.steps import codec, layout
from edgefed.steps.registry import ModelRegistry
from edgefed.workflows.embedded.runtime import EmbeddedRuntime
from edgefed.workflows.report import render_report
from edgefed.workflows.spec import parse_task
from tests.helpers import digits_task_doc, run_task
from tests.rounds.faults import script, scripted_runtime

pytestmark = pytest.mark.slow

EDGES = ("a", "b", "c")
CUT = "b"  # the edge cut off from the cloud in round CUT_ROUND
CUT_ROUND = 2
ROUNDS = 4


@pytest.fixture(scope="module")
def runtime(store, tmp_path_factory) -> Iterator[EmbeddedRuntime]:
    with scripted_runtime(store, tmp_path_factory.mktemp("home"), "digits", EDGES, split="iid") as rt:
        yield rt


def _run(runtime: EmbeddedRuntime, name: str, *, late_updates: str = "use") -> ModelRegistry:
    script(
        runtime.faults,
        [
            {"step": step, "task": name, "round": CUT_ROUND, "edge": CUT, "cloudRefused": True}
            for step in ("validate", "train")
        ],
    )
    doc = digits_task_doc(
        name,
        EDGES,
        hidden=16,
        seed=5,
        training={"batchSize": 16, "learningRate": 0.1, "localEpochs": 1},
        rounds=ROUNDS,
        quorum=2,
        autonomy={"cloudWaitSeconds": 1, "lateUpdates": late_updates},
        evaluation={"everyRounds": ROUNDS},
    )
    try:
        result, registry = run_task(runtime, parse_task(doc))
    finally:
        script(runtime.faults, [])
    assert [r.round for r in result.rounds] == list(range(1, ROUNDS + 1)), result
    return registry


def _outbox(runtime: EmbeddedRuntime, task: str) -> dict[str, bytes]:
    admin = runtime.store.client(layout.ADMIN_IDENTITY)
    bucket = layout.edge_bucket(CUT)
    return {
        o.object_name.rsplit("/", 1)[1]: admin.get_object(bucket, o.object_name).read()
        for o in admin.list_objects(bucket, prefix=layout.outbox_prefix(task), recursive=True)
    }


def _accounted(registry: ModelRegistry, task: str) -> list[tuple[str, int]]:
    """(edge, round it trained in) of every update the task's manifests record, contributors and late."""
    seen = []
    for round_ in range(1, ROUNDS + 1):
        manifest = registry.manifest(task, round_)
        seen += [(c["edge"], round_) for c in manifest["contributors"]]
        seen += [(u["edge"], u["trainedRound"]) for u in manifest.get("lateUpdates") or []]
    return sorted(seen)


def _fedavg(points: list[tuple[list[np.ndarray], float]]) -> list[np.ndarray]:
    total = sum(w for _, w in points)
    return [
        sum(np.asarray(p[i], np.float64) * w for p, w in points) / total for i in range(len(points[0][0]))
    ]


def _update(client, url: str) -> tuple[list[np.ndarray], dict]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    response = client.get_object(bucket, key)
    try:
        return codec.decode(response.read())
    finally:
        response.close()
        response.release_conn()


def test_a_cut_off_edge_trains_offline_and_its_late_update_is_used(runtime):
    task = "auto-use"
    registry = _run(runtime, task)
    cloud = runtime.store.client(layout.CLOUD_IDENTITY)

    # round 2: the round commits without the cut-off edge, and says why
    cut = registry.manifest(task, CUT_ROUND)
    assert sorted(c["edge"] for c in cut["contributors"]) == ["a", "c"]
    assert [m["edge"] for m in cut["missing"]] == [CUT]
    assert "could not reach the cloud" in cut["missing"][0]["reason"]
    assert "lateUpdates" not in cut
    # ... while the edge checked its data (unchanged since round 1: that round's verdict, which reached the
    # cloud, was reused), trained from its copy of round 0's model (the last it received, for round 1) and
    # kept the update at its site
    outbox = _outbox(runtime, task)
    entry = f"round-{CUT_ROUND:05d}"
    assert {f"{entry}.npz", f"{entry}.delivery.json", f"{entry}.done.json"} == set(outbox)
    kept, kept_meta = codec.decode(outbox[f"{entry}.npz"])
    assert kept_meta["offline"] is True and kept_meta["edge"] == CUT and kept_meta["round"] == CUT_ROUND
    assert kept_meta["parentRound"] == 0
    assert kept_meta["parentSha256"] == registry.manifest(task, 0)["model"]["sha256"]
    assert "verdict" not in kept_meta
    checked = cloud.list_objects(layout.UPDATES_BUCKET, prefix=f"{CUT}/{task}/round-00001/", recursive=True)
    [verdict_key] = [o.object_name for o in checked if o.object_name.endswith("/verdict.json")]
    assert json.loads(cloud.get_object(layout.UPDATES_BUCKET, verdict_key).read())["passed"] is True
    # nothing of that round's training reached the cloud in that round
    assert not list(cloud.list_objects(layout.UPDATES_BUCKET, prefix=f"{CUT}/{task}/round-{CUT_ROUND:05d}/"))

    # round 3: delivered and used, its change from round 0's model applied to round 2's, weight
    # examples * (1 + 2) ** -0.5; the committed model is that FedAvg
    late_round = registry.manifest(task, CUT_ROUND + 1)
    assert sorted(c["edge"] for c in late_round["contributors"]) == list(EDGES)
    [late] = late_round["lateUpdates"]
    assert late["edge"] == CUT and late["trainedRound"] == CUT_ROUND and late["used"] is True, late
    assert late["staleness"] == 2 and late["parentRound"] == 0
    assert late["weight"] == pytest.approx(kept_meta["examples"] * 3**-0.5)
    assert late["sha256"] == codec.sha256(outbox[f"{entry}.npz"])
    delivered, _ = _update(cloud, late["update"])
    assert all(np.array_equal(x, y) for x, y in zip(delivered, kept, strict=True))
    base, parent = registry.load(task, 0).weights, registry.load(task, CUT_ROUND).weights
    points = [(_update(cloud, c["update"])[0], float(c["examples"])) for c in late_round["contributors"]]
    points.append(([p + (k - b) for p, k, b in zip(parent, kept, base, strict=True)], late["weight"]))
    expected = _fedavg(points)
    committed = registry.load(task, CUT_ROUND + 1).weights
    assert max(float(np.abs(e - w).max()) for e, w in zip(expected, committed, strict=True)) <= 1e-6

    # round 4: the edge saw round 3's manifest name its late update and closed the entry; nothing is
    # delivered twice
    done = json.loads(outbox[f"{entry}.done.json"])
    assert done["consumedIn"] == CUT_ROUND + 1 and done["used"] is True
    assert "lateUpdates" not in registry.manifest(task, ROUNDS)
    # every update every edge trained, accounted for exactly once
    trained = sorted((e, r) for e in EDGES for r in range(1, ROUNDS + 1))
    assert _accounted(registry, task) == trained
    # the task's report shows it
    page = render_report(registry, task)
    assert "Late updates" in page and "<td>3</td><td>b</td><td>2</td><td>2</td><td>used</td>" in page


def test_a_task_that_drops_late_updates_records_them_dropped(runtime):
    task = "auto-drop"
    registry = _run(runtime, task, late_updates="drop")
    late_round = registry.manifest(task, CUT_ROUND + 1)
    [late] = late_round["lateUpdates"]
    assert late["used"] is False and "autonomy.lateUpdates: drop" in late["reason"], late
    # the committed model is the FedAvg of the round's own updates only
    cloud = runtime.store.client(layout.CLOUD_IDENTITY)
    points = [(_update(cloud, c["update"])[0], float(c["examples"])) for c in late_round["contributors"]]
    committed = registry.load(task, CUT_ROUND + 1).weights
    expected = _fedavg(points)
    assert max(float(np.abs(e - w).max()) for e, w in zip(expected, committed, strict=True)) <= 1e-6
    done = json.loads(_outbox(runtime, task)[f"round-{CUT_ROUND:05d}.done.json"])
    assert done["consumedIn"] == CUT_ROUND + 1 and done["used"] is False
    assert _accounted(registry, task) == sorted((e, r) for e in EDGES for r in range(1, ROUNDS + 1))
