"""Section 8: the reference FedAvg experiment through ``edgefed run``, beside its compute floor and TFF.

``../shared/reference-fl`` specifies the job exactly (its README); this runs, in one sitting and interleaved
(``--reps`` repetitions, medians):

* **floor**: ``run_plain.py --trainer tffunction`` (one process, a cached ``tf.function`` epoch per client);
* **tff**: ``run_tff.py`` (TFF 0.87's ``build_weighted_fed_avg``);
* **edgefed**: ``edgefed run examples/reference-digits.yaml`` on the embedded default, after seeding exactly the
  reference's IID partitions into the ten clients' own buckets and its test set into the evaluation bucket,
  with ``model.initialWeights`` = the reference's ``init_weights.npz``. The store runs before (as a site's
  MinIO would); its memory is shown apart.

Each command runs under the reference's ``measure.py`` (wall from fork to exit, peak PSS of the process tree).
The loop, time to first round and steady round of edgefed come from the rounds' manifests (``committedAt``):
round r's time is commit(r) - commit(r-1); the loop is commit(50) - commit(0); the floor's and TFF's from
their result files. Nothing here is a timed unit test: it prints, and says which targets it meets.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REFERENCE = Path(os.environ.get("EDGEFED_REFERENCE_FL", REPO.parent / "shared" / "reference-fl"))
TASK_FILE = REPO / "examples" / "reference-digits.yaml"
PYTHON = sys.executable
EDGEFED = [PYTHON, "-m", "edgefed.workflows.cli"]

#: Targets of issue 13 (ratios measured in the same run).
TARGETS = {
    "wall / floor's": 1.3,
    "steady round (s)": 0.15,
    "steady round / floor's": 3.0,
    "loop / TFF's": 0.5,
    "peak PSS / TFF's": 1.0,
    "accuracy gap (points)": 1.0,
}


@dataclass
class Run:
    system: str
    wall: float
    loop: float
    first_round: float  # process start to the end of round 1
    steady: float  # median of rounds 2..50
    pss_mb: float
    accuracy: float
    curve: list[float] = field(default_factory=list)
    store_pss_mb: float | None = None
    rounds: list[float] = field(default_factory=list)


_MEASURE = re.compile(r"wall=(?P<wall>[\d.]+)s .*pss_tree=(?P<pss>\d+)MB")


def _measured(json_path: Path, command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``command`` under measure.py; (wall seconds, peak PSS of the tree in MB)."""
    done = subprocess.run(
        [PYTHON, str(REFERENCE / "measure.py"), "--json", str(json_path), "--", *command],
        env=env,
        capture_output=True,
        text=True,
        cwd=REFERENCE,
    )
    match = _MEASURE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(
            f"{' '.join(command)} failed (rc {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return float(match["wall"]), float(match["pss"])


def _script(script: str, extra: list[str], runs: Path, rep: int) -> Run:
    env = {**os.environ, "REFBENCH_RUNS_DIR": str(runs), "TF_CPP_MIN_LOG_LEVEL": "2"}
    before = set(runs.glob("*.json"))
    marker = runs / f"measure-{script}-{rep}.json"
    command = [PYTHON, script, *extra, "--partition", "iid", "--rep", str(rep)]
    wall, pss = _measured(marker, command, env)
    written = sorted(set(runs.glob("*.json")) - before - {marker})
    result = json.loads(written[-1].read_text())
    rounds = list(result["round_s"])
    return Run(
        system=script,
        wall=wall,
        loop=float(result["loop_s"]),
        first_round=float(result["in_process_total_s"]) - float(result["loop_s"]) + rounds[0],
        steady=statistics.median(rounds[1:]),
        pss_mb=pss,
        accuracy=float(result["test_accuracy"][-1]),
        curve=list(result["test_accuracy"]),
        rounds=rounds,
    )


def seed_reference(admin: Any) -> dict[str, int]:
    """The reference's split, IID partitions and test set, into the clients' buckets and the evaluation
    bucket, under the keys the task names; returns the rows per client."""
    import numpy as np
    import pandas as pd

    from edgefed.steps import datasets, layout
    from edgefed.steps.store import parquet_bytes, put_bytes

    sys.path.insert(0, str(REFERENCE))
    import common  # the reference's own data code: no copy of it here

    x_tr, y_tr, x_te, y_te = common.load_data()
    parts = common.partition(y_tr, "iid")
    columns = list(datasets.info("digits").feature_columns)

    def frame(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
        out = pd.DataFrame(np.ascontiguousarray(x, np.float32), columns=columns)
        out["label"] = y.astype(np.int64)
        return out

    rows = {}
    for c, index in enumerate(parts):
        edge = f"client-{c}"
        data = parquet_bytes(frame(x_tr[index], y_tr[index]))
        put_bytes(admin, layout.edge_bucket(edge), "digits/train.parquet", data)
        rows[edge] = len(index)
    put_bytes(admin, layout.EVAL_BUCKET, layout.test_set_key("digits"), parquet_bytes(frame(x_te, y_te)))
    return rows


def _pss_mb(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(match[1]) / 1024 if match else 0.0


def _edgefed(runs: Path, rep: int) -> Run:
    import yaml

    from edgefed.steps import layout
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    home = Path(tempfile.mkdtemp(prefix=f"edgefed-ref-{rep}-", dir=runs))
    document = yaml.safe_load(TASK_FILE.read_text())
    document["spec"]["model"]["initialWeights"] = str(REFERENCE / "init_weights.npz")
    task_file = home / "reference-digits.yaml"
    task_file.write_text(yaml.safe_dump(document, sort_keys=False))
    edges = [e["name"] for e in document["spec"]["edges"]]
    with EmbeddedRuntime(home, detach_store=True) as runtime:
        runtime.store.ensure_edges(edges)
        runtime.store.provision(edges)
        seed_reference(runtime.store.client(layout.ADMIN_IDENTITY))
        store_pid = runtime.store.pid
    env = {**os.environ, "EDGEFED_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    peak_store = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            peak_store[0] = max(peak_store[0], _pss_mb(store_pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.time()
    try:
        wall, pss = _measured(home / "measure.json", [*EDGEFED, "run", str(task_file)], env)
    finally:
        stop.set()
        sampler.join()
    try:
        with EmbeddedRuntime(home) as runtime:
            registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
            manifests = [registry.manifest("reference-digits", r) for r in range(51)]
            curve = [registry.evaluation("reference-digits", r)["accuracy"] for r in range(1, 51)]
            store_pss = max(peak_store[0], _pss_mb(store_pid))
    finally:
        subprocess.run([*EDGEFED, "store", "stop"], env=env, capture_output=True)
    commits = [datetime.fromisoformat(m["committedAt"]).timestamp() for m in manifests]
    rounds = [b - a for a, b in itertools.pairwise(commits)]
    return Run(
        system="edgefed run",
        wall=wall,
        loop=commits[-1] - commits[0],
        first_round=commits[1] - started,
        steady=statistics.median(rounds[1:]),
        pss_mb=pss,
        accuracy=float(curve[-1]),
        curve=curve,
        store_pss_mb=store_pss,
        rounds=rounds,
    )


def bench_reference(reps: int = 3) -> dict[str, list[Run]]:
    """``reps`` interleaved repetitions of floor, TFF and edgefed."""
    out: dict[str, list[Run]] = {"floor": [], "tff": [], "edgefed": []}
    with tempfile.TemporaryDirectory(prefix="edgefed-refbench-") as scratch:
        runs = Path(scratch)
        for rep in range(1, reps + 1):
            out["floor"].append(_script("run_plain.py", ["--trainer", "tffunction"], runs, rep))
            out["tff"].append(_script("run_tff.py", [], runs, rep))
            out["edgefed"].append(_edgefed(runs, rep))
            print(
                f"  rep {rep}: wall floor {out['floor'][-1].wall:.1f}s, tff {out['tff'][-1].wall:.1f}s, "
                f"edgefed {out['edgefed'][-1].wall:.1f}s",
                flush=True,
            )
    return out


def _median(runs: list[Run], name: str) -> float:
    return statistics.median(getattr(r, name) for r in runs)


def report(results: dict[str, list[Run]]) -> list[tuple[str, float, float, bool]]:
    """Print the table and the ratios; returns (target, value, limit, met)."""
    print(
        f"  {'system':<12} {'wall':>7} {'loop':>7} {'to round 1':>10} {'steady round':>12} "
        f"{'peak PSS':>9} {'store PSS':>9} {'final acc':>9}"
    )
    for name, runs in results.items():
        store = [r.store_pss_mb for r in runs if r.store_pss_mb is not None]
        print(
            f"  {name:<12} {_median(runs, 'wall'):>6.1f}s {_median(runs, 'loop'):>6.2f}s "
            f"{_median(runs, 'first_round'):>9.1f}s {_median(runs, 'steady'):>11.3f}s "
            f"{_median(runs, 'pss_mb'):>7.0f}MB "
            + (f"{statistics.median(store):>7.0f}MB " if store else f"{'-':>9} ")
            + f"{_median(runs, 'accuracy'):>9.4f}"
        )
    floor, tff, ours = results["floor"], results["tff"], results["edgefed"]
    values = {
        "wall / floor's": _median(ours, "wall") / _median(floor, "wall"),
        "steady round (s)": _median(ours, "steady"),
        "steady round / floor's": _median(ours, "steady") / _median(floor, "steady"),
        "loop / TFF's": _median(ours, "loop") / _median(tff, "loop"),
        "peak PSS / TFF's": _median(ours, "pss_mb") / _median(tff, "pss_mb"),
        "accuracy gap (points)": abs(_median(ours, "accuracy") - _median(floor, "accuracy")) * 100,
    }
    curve_gap = max(abs(a - b) for a, b in zip(ours[0].curve, floor[0].curve, strict=True))
    rows = []
    for name, value in values.items():
        limit = TARGETS[name]
        met = value <= limit
        rows.append((name, value, limit, met))
        print(f"  {name:<24} {value:>8.3f}  target <= {limit:<5g} {'met' if met else 'NOT MET'}")
    print(f"  largest per-round accuracy difference from the floor's curve: {curve_gap:.4f}")
    overhead = [
        r - t for r, t in zip(ours[0].rounds[1:], floor[0].rounds[1:], strict=False)
    ]  # the rounds' time beyond the floor's same round
    print(f"  edgefed's round beyond the floor's (median of rounds 2-50): {statistics.median(overhead):.3f}s")
    return rows


def main(reps: int = 3) -> int:
    if not (REFERENCE / "common.py").exists():
        print(f"  skipped: no reference experiment at {REFERENCE} (set EDGEFED_REFERENCE_FL)")
        return 0
    results = bench_reference(reps)
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
