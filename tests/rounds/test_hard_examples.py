"""Hard examples feed incremental learning: kept at the edge by its inference service, labelled (with the
request or later), folded into the edge's dataset by the IncrementalLearningJob's probe, learned from once.

All real: the edge's service over HTTP, the edge's own store, the check Workflow on the embedded engine and
real retraining rounds whose validate step checks the folded rows against the dataset's contract.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import urllib3

from edgefed.steps import layout, promotions
from edgefed.steps.serving.app import EdgeSettings, edge_app
from edgefed.steps.serving.model import from_registry
from edgefed.steps.store import read_frame
from edgefed.workflows.data.seeding import kept_rows
from edgefed.workflows.embedded.incremental import run_check
from edgefed.workflows.spec import parse_task
from edgefed.workflows.spec.incremental import parse_job
from tests.helpers import run_task, seeded_runtime, serving, task_doc

HOSPITALS = ("cleveland", "hungary", "switzerland")
EDGE = "cleveland"
TASK = "hard"
HOLD_BACK = 0.3

pytestmark = pytest.mark.slow


def _job():
    return parse_job(
        {
            "apiVersion": "edgefed.io/v1alpha1",
            "kind": "IncrementalLearningJob",
            "metadata": {"name": "hard-job"},
            "spec": {
                "task": TASK,
                "triggers": {"newRows": {"minRows": 1}},
                "retraining": {"rounds": 1},
                "hardExamples": {"fold": True},
            },
        }
    )


def _post(url: str, path: str, body: dict) -> tuple[int, dict]:
    response = urllib3.request(
        "POST", f"{url}{path}", body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    return response.status, json.loads(response.data)


def _objects(admin, prefix: str) -> list[str]:
    bucket = layout.edge_bucket(EDGE)
    return sorted(o.object_name for o in admin.list_objects(bucket, prefix=prefix, recursive=True))


def test_kept_hard_examples_are_labelled_folded_into_the_edge_dataset_and_learned_from_once(
    store, tmp_path
) -> None:
    with seeded_runtime(store, tmp_path / "home", "heart", HOSPITALS, hold_back=HOLD_BACK) as rt:
        task = parse_task(task_doc(TASK, HOSPITALS, rounds=2, quorum=2))
        _, registry = run_task(rt, task)
        promotions.promote(registry, TASK, 2, by="test", reason="first training")
        admin = store.client(layout.ADMIN_IDENTITY)
        bucket, key = layout.edge_bucket(EDGE), layout.train_set_key("heart")
        start = len(read_frame(admin, bucket, key))

        # New patients arrive at the edge's service (the rows the seeding held back), not at its dataset.
        model = from_registry(registry, TASK)
        frame = rt.seeded.edges[EDGE]
        arriving = frame.iloc[kept_rows(len(frame), HOLD_BACK) :]
        x = arriving[model.feature_columns].to_numpy(np.float32)
        truth = arriving["label"].astype(int).tolist()
        confidence = model.predict(x).max(axis=1)
        threshold = float(np.quantile(confidence, 0.6))
        hard = np.flatnonzero(confidence < threshold)
        assert 4 <= len(hard) < len(x)
        given_now = set(hard[: len(hard) // 2].tolist())  # a clinician labelled these at once
        labels = [truth[i] if i in given_now else None for i in range(len(x))]

        settings = EdgeSettings(
            edge=EDGE, cloud_url=None, threshold=threshold, site=store.client(layout.site_identity(EDGE))
        )
        with serving(edge_app(model, settings)) as url:
            status, answer = _post(url, "/v1/predict", {"instances": x.tolist(), "labels": labels})
            assert status == 200
            ids = {i: p["example"] for i, p in enumerate(answer["predictions"]) if p.get("hard")}
            assert sorted(ids) == hard.tolist()
            deadline = time.monotonic() + 10
            while not settings.stored and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(settings.stored) == 1

            # A label for an unknown example, a bad id, a label out of range: refused, naming the field.
            for body, code, field in (
                ({"labels": [{"example": "20260101/abc:0", "label": 1}]}, 404, "labels[0].example"),
                ({"labels": [{"example": "nope", "label": 1}]}, 400, "labels[0].example"),
                ({"labels": [{"example": ids[hard[0]], "label": 7}]}, 400, "labels[0].label"),
            ):
                status, refused = _post(url, "/v1/label", body)
                assert (status, refused["field"]) == (code, field), refused
            assert _objects(admin, f"{layout.hard_examples_prefix(TASK)}labels/") == []

            # First check: the labelled half is folded and learned from; the rest waits for a label.
            first = run_check(rt, _job(), task)
            assert first.succeeded, first.message
            probe = next(p for p in first.decision["probes"] if p["edge"] == EDGE)
            assert probe["hardExamples"] == {
                "folded": len(given_now),
                "batches": 1,
                "unlabelled": len(hard) - len(given_now),
            }
            assert probe["newRows"] == len(given_now) and first.decision["retrain"] is True
            grown = read_frame(admin, bucket, key)
            assert len(grown) == start + len(given_now)
            np.testing.assert_allclose(
                grown[model.feature_columns].to_numpy(np.float32)[start:], x[sorted(given_now)], rtol=1e-6
            )
            assert grown["label"].tolist()[start:] == [truth[i] for i in sorted(given_now)]
            assert grown.dtypes.equals(frame.dtypes[grown.columns])  # the dataset keeps its types
            retrained = registry.manifest(TASK, 3)
            learned = {c["edge"]: c["examples"] for c in retrained["contributors"]}
            assert learned[EDGE] == start + len(given_now)

            # The rest labelled later, over HTTP: the next check folds exactly those.
            later = [{"example": ids[i], "label": truth[i]} for i in hard if i not in given_now]
            status, ok = _post(url, "/v1/label", {"labels": later})
            assert (status, ok) == (200, {"labelled": len(later)})
        second = run_check(rt, _job(), task)
        assert second.succeeded, second.message
        probe = next(p for p in second.decision["probes"] if p["edge"] == EDGE)
        assert probe["hardExamples"]["folded"] == len(later) and probe["hardExamples"]["unlabelled"] == 0
        assert probe["newRows"] == len(later)
        assert len(read_frame(admin, bucket, key)) == start + len(hard)

        # Nothing is folded twice: the third check finds nothing new and does not retrain.
        third = run_check(rt, _job(), task)
        assert third.succeeded and third.decision["retrain"] is False
        probe = next(p for p in third.decision["probes"] if p["edge"] == EDGE)
        assert probe["hardExamples"]["folded"] == 0 and probe["newRows"] == 0
        assert len(read_frame(admin, bucket, key)) == start + len(hard)
