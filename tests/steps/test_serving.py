"""The joint inference service over real HTTP: models trained for real, hard examples kept in the edge's store.

A confident example stays at the edge; a hard one is answered by the cloud and stored at the edge; with the
cloud down the edge answers, marked, and keeps serving; bad JSON or a wrong feature count is a 400 naming the
field, and nothing is stored.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pandas as pd
import pytest
import urllib3

from edgefed.steps import layout, promotions
from edgefed.steps.serving.app import EdgeSettings, cloud_app, edge_app
from edgefed.steps.serving.model import from_registry
from edgefed.workflows.spec import parse_task
from tests.helpers import free_port, run_task, seeded_runtime, serving, task_doc

HOSPITALS = ("cleveland", "hungary", "switzerland")
EDGE = "cleveland"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(store, tmp_path_factory):
    """A small edge model (logistic) and a bigger cloud model (MLP), both trained federated on heart."""
    with seeded_runtime(store, tmp_path_factory.mktemp("home"), "heart", HOSPITALS) as rt:
        _, registry = run_task(rt, parse_task(task_doc("serve-edge", HOSPITALS, rounds=2, quorum=2)))
        cloud_doc = task_doc("serve-cloud", HOSPITALS, rounds=3, quorum=2)
        cloud_doc["spec"]["model"] = {
            "name": "mlp",
            "inputShape": [32],
            "classes": 2,
            "params": {"hidden": [64]},
        }
        run_task(rt, parse_task(cloud_doc))
        promotions.promote(registry, "serve-edge", 2, by="test", reason="serve it")
        test = pd.read_parquet(
            io.BytesIO(
                store.client(layout.ADMIN_IDENTITY)
                .get_object(layout.EVAL_BUCKET, layout.test_set_key("heart"))
                .read()
            )
        )
        yield {
            "edge": from_registry(registry, "serve-edge"),
            "cloud": from_registry(registry, "serve-cloud"),
            "site": store.client(layout.site_identity(EDGE)),
            "admin": store.client(layout.ADMIN_IDENTITY),
            "test": test,
        }


def _post(url: str, body: bytes | dict) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = urllib3.request(
        "POST", f"{url}/v1/predict", body=data, headers={"Content-Type": "application/json"}
    )
    return response.status, json.loads(response.data)


def _hard_objects(admin) -> list[str]:
    return sorted(
        o.object_name
        for o in admin.list_objects(
            layout.edge_bucket(EDGE), prefix=layout.hard_examples_prefix("serve-edge"), recursive=True
        )
    )


def _wait_for(admin, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    while len(objects := _hard_objects(admin)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return objects


def test_confident_stays_hard_goes_to_the_cloud_and_is_kept_at_the_edge(models) -> None:
    edge, cloud, test = models["edge"], models["cloud"], models["test"]
    x = test[edge.feature_columns].to_numpy(np.float32)
    confidence = edge.predict(x).max(axis=1)
    sure, unsure = int(confidence.argmax()), int(confidence.argmin())
    threshold = float(np.median(confidence))
    assert confidence[sure] >= threshold > confidence[unsure]
    before = _hard_objects(models["admin"])
    settings = EdgeSettings(edge=EDGE, cloud_url=None, threshold=threshold, site=models["site"])
    with serving(cloud_app(cloud)) as cloud_url:
        settings.cloud_url = cloud_url
        with serving(edge_app(edge, settings)) as url:
            ready = json.loads(urllib3.request("GET", f"{url}/readyz").data)
            assert ready["ready"] is True and ready["model"]["round"] == 2
            row = {c: float(test.iloc[sure][c]) for c in edge.feature_columns}  # by column name
            status, answer = _post(url, {"instances": [row]})
            assert status == 200
            assert answer["model"]["task"] == "serve-edge" and answer["model"]["round"] == 2
            assert answer["predictions"][0]["answeredBy"] == "edge" and "hard" not in answer["predictions"][0]
            time.sleep(0.3)
            assert _hard_objects(models["admin"]) == before  # nothing stored for a confident example

            label = int(test.iloc[unsure]["label"])
            status, answer = _post(url, {"instances": [x[unsure].tolist()], "labels": [label]})
            assert status == 200
            p = answer["predictions"][0]
            assert (p["answeredBy"], p["hard"]) == ("cloud", True)
            assert answer["cloudModel"]["task"] == "serve-cloud"
            expected = int(cloud.predict(x[unsure : unsure + 1]).argmax())
            assert p["class"] == expected and p["edge"]["confidence"] == pytest.approx(
                confidence[unsure], abs=1e-6
            )
    stored = _wait_for(models["admin"], len(before) + 1)
    new = [k for k in stored if k not in before]
    assert len(new) == 1
    kept = pd.read_parquet(io.BytesIO(models["admin"].get_object(layout.edge_bucket(EDGE), new[0]).read()))
    np.testing.assert_allclose(kept[edge.feature_columns].to_numpy(np.float32)[0], x[unsure])
    assert int(kept["label"][0]) == label and int(kept["cloud_class"][0]) == expected


def test_with_the_cloud_down_the_edge_answers_marked_and_keeps_serving(models) -> None:
    edge, test = models["edge"], models["test"]
    x = test[edge.feature_columns].to_numpy(np.float32)[:20]
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    before = _hard_objects(models["admin"])
    settings = EdgeSettings(edge=EDGE, cloud_url=dead, threshold=1.01, site=models["site"], cloud_timeout=1.0)
    with serving(edge_app(edge, settings)) as url:
        for _ in range(2):  # and again: still serving
            status, answer = _post(url, {"instances": x.tolist()})
            assert status == 200
            assert all(
                p["answeredBy"] == "edge" and p["cloudUnreachable"] is True for p in answer["predictions"]
            )
            assert [p["class"] for p in answer["predictions"]] == edge.predict(x).argmax(axis=1).tolist()
    assert len(_wait_for(models["admin"], len(before) + 2)) == len(before) + 2  # kept for later labelling


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        ({"instances": [[0.1] * 31]}, "instances[0]"),
        ({"instances": [{"age": 0.5}]}, "instances[0]."),
        ({"instances": []}, "instances"),
        ({"instances": [[0.1] * 32], "label": [1]}, "label"),
        ({"instances": [[0.1] * 32, [0.2] * 32], "labels": [1]}, "labels"),
    ],
    ids=["bad-json", "wrong-count", "missing-column", "empty", "unknown-field", "labels-length"],
)
def test_bad_requests_are_400_naming_the_field_and_store_nothing(models, body, field) -> None:
    before = _hard_objects(models["admin"])
    settings = EdgeSettings(edge=EDGE, cloud_url=None, threshold=1.01, site=models["site"])
    with serving(edge_app(models["edge"], settings)) as url:
        status, answer = _post(url, body)
    assert status == 400, answer
    assert answer["field"].startswith(field) and answer["error"].startswith(answer["field"])
    time.sleep(0.2)
    assert _hard_objects(models["admin"]) == before
