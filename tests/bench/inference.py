"""``make bench`` section: the joint inference service on real data (sklearn digits), over real HTTP.

Two models trained federated on the same edges (4 edges, iid split of digits): a small one for the edges
(logistic) and a bigger one for the cloud (MLP 256). Both sides run as the service (uvicorn, in this process's
threads) on the embedded store. Measured here, in one run:

* latency p50/p99 and throughput at the edge for one-example requests, edge only (no cloud) and joint
  (hard examples forwarded), and the fraction forwarded;
* accuracy on the held-out test set: edge only, joint, cloud only (the same requests, batched).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import urllib3

EDGES = ("a", "b", "c", "d")


def _task(name: str, model: dict[str, Any], rounds: int, learning_rate: float):
    from edgefed.workflows.spec import parse_task
    from tests.helpers import task_doc

    doc = task_doc(name, EDGES, rounds=rounds, quorum=4, dataset="digits")
    doc["spec"]["model"] = model
    doc["spec"]["training"] = {"batchSize": 16, "learningRate": learning_rate, "localEpochs": 1}
    return parse_task(doc)


def _post(http: urllib3.PoolManager, url: str, rows: list[list[float]]) -> dict:
    response = http.request(
        "POST",
        f"{url}/v1/predict",
        body=json.dumps({"instances": rows}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 200, response.data[:300]
    return json.loads(response.data)


def _latencies(http: urllib3.PoolManager, url: str, x: np.ndarray) -> tuple[np.ndarray, float, list[dict]]:
    answers, times = [], []
    started = time.perf_counter()
    for row in x:
        t = time.perf_counter()
        answers.append(_post(http, url, [row.tolist()])["predictions"][0])
        times.append(time.perf_counter() - t)
    return np.array(times), len(x) / (time.perf_counter() - started), answers


def bench_inference(threshold: float = 0.8, requests: int = 300) -> dict[str, Any]:
    from edgefed.steps import layout
    from edgefed.steps.serving.app import EdgeSettings, cloud_app, edge_app
    from edgefed.steps.serving.model import from_registry
    from edgefed.steps.store import read_frame
    from edgefed.workflows.data.seeding import seed
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime
    from tests.helpers import run_task, serving

    with (
        tempfile.TemporaryDirectory(prefix="edgefed-bench-serve-") as home,
        EmbeddedRuntime(Path(home), detach_store=False) as runtime,
    ):
        small = _task("serve-small", {"name": "logistic", "inputShape": [64], "classes": 10}, 10, 0.5)
        big_model = {"name": "mlp", "inputShape": [64], "classes": 10, "params": {"hidden": [256]}}
        big = _task("serve-big", big_model, 15, 0.1)
        runtime.prepare(small)
        seed(runtime.store.client(layout.ADMIN_IDENTITY), "digits", edges=list(EDGES), split="iid")
        _, registry = run_task(runtime, small)
        run_task(runtime, big)
        edge_model, cloud_model = from_registry(registry, small.name), from_registry(registry, big.name)
        test = read_frame(
            runtime.store.client(layout.CLOUD_IDENTITY), layout.EVAL_BUCKET, layout.test_set_key("digits")
        )
        x = test[edge_model.feature_columns].to_numpy(np.float32)
        y = test["label"].to_numpy()
        site = runtime.store.client(layout.site_identity("a"))
        http = urllib3.PoolManager(maxsize=4)
        sample = x[:requests]
        out: dict[str, Any] = {"threshold": threshold, "requests": len(sample), "testSize": len(x)}
        with serving(cloud_app(cloud_model)) as cloud_url:
            alone = EdgeSettings(edge="a", cloud_url=None, threshold=threshold, site=None)
            with serving(edge_app(edge_model, alone)) as url:
                _post(http, url, [sample[0].tolist()])  # first call traces the model
                times, throughput, _ = _latencies(http, url, sample)
                out["edgeOnly"] = {
                    "p50": float(np.percentile(times, 50)),
                    "p99": float(np.percentile(times, 99)),
                    "throughput": throughput,
                }
                edge_classes = [p["class"] for p in _post(http, url, x.tolist())["predictions"]]
            joint = EdgeSettings(edge="a", cloud_url=cloud_url, threshold=threshold, site=site)
            with serving(edge_app(edge_model, joint)) as url:
                _post(http, url, [sample[0].tolist()])
                times, throughput, answers = _latencies(http, url, sample)
                out["joint"] = {
                    "p50": float(np.percentile(times, 50)),
                    "p99": float(np.percentile(times, 99)),
                    "throughput": throughput,
                    "forwarded": sum(a["answeredBy"] == "cloud" for a in answers) / len(answers),
                }
                joint_answers = _post(http, url, x.tolist())["predictions"]
            cloud_classes = [p["class"] for p in _post(http, cloud_url, x.tolist())["predictions"]]
        out["accuracy"] = {
            "edgeOnly": float(np.mean(np.array(edge_classes) == y)),
            "joint": float(np.mean(np.array([p["class"] for p in joint_answers]) == y)),
            "cloudOnly": float(np.mean(np.array(cloud_classes) == y)),
        }
        out["forwardedTestSet"] = sum(p["answeredBy"] == "cloud" for p in joint_answers) / len(joint_answers)
        return out


def report(r: dict[str, Any]) -> str:
    e, j, a = r["edgeOnly"], r["joint"], r["accuracy"]
    return (
        f"   edge only: p50 {1000 * e['p50']:.1f} ms, p99 {1000 * e['p99']:.1f} ms, {e['throughput']:.0f} req/s "
        f"({r['requests']} one-example requests)\n"
        f"   joint (confidence < {r['threshold']:g} forwarded): p50 {1000 * j['p50']:.1f} ms, p99 {1000 * j['p99']:.1f} ms, "
        f"{j['throughput']:.0f} req/s, {j['forwarded']:.0%} forwarded "
        f"(p50 ratio {j['p50'] / e['p50']:.2f}x edge only)\n"
        f"   accuracy on the {r['testSize']} test digits: edge only {a['edgeOnly']:.4f}, joint {a['joint']:.4f} "
        f"({r['forwardedTestSet']:.0%} forwarded), cloud only {a['cloudOnly']:.4f}"
    )
