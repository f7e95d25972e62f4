"""``make bench``: orchestration overhead of the demo task and aggregation throughput.

Every figure is measured in this run, next to its baseline measured in the same run, and printed
as a ratio. Targets (from the issue) are printed beside the figures; nothing here asserts timing.

1. Demo task (heart, 4 hospitals) on the embedded engine, as the task Workflow and as a bare loop of
   round Workflows in the same run: per round, the wall time and what the task Workflow (plan,
   round Workflow, progress) adds (target <= 20 ms), and the orchestration overhead over the slowest
   edge's training (target <= 0.5 s).
2. Aggregation: 20 synthetic 50 MB updates through the FedAvg step's decode + streaming mean, next
   to a plain in-memory NumPy accumulate. Target: >= 2 GB/s of update bytes.
3. Generation of a 1,000- and a 10,000-edge round: time and Workflow size. Targets: < 1 s, < 256 KiB.
4. Peak memory of streaming aggregation for 5, 10 and 20 updates. Target: flat.
5. The data-contract check of a 1,000,000-row table next to reading it from the store. Target: <= 10 s.
6. Aggregation strategies' throughput and peak memory.
7. The joint inference service: edge latency p50/p99 and throughput with and without forwarding, the
   fraction forwarded, accuracy edge only vs joint vs cloud only (tests/bench/inference.py).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `tests.helpers` when run as a script

from edgefed.steps import codec
from edgefed.steps.aggregators import WeightedMean

MB = 1_000_000
UPDATE_BYTES = 50 * MB
LAYERS = (4_000_000, 4_000_000, 4_000_000, 500_000)  # float32 values: 12.5 M = 50 MB per update


def synthetic_update(i: int) -> list[np.ndarray]:
    rng = np.random.default_rng(i)
    return [rng.standard_normal(n, dtype=np.float32) for n in LAYERS]


def encoded_updates(n: int) -> Iterator[tuple[bytes, int]]:
    """Updates as the aggregate step receives them: encoded bytes, produced one at a time."""
    for i in range(n):
        yield codec.encode(synthetic_update(i), {"examples": 100 + i}), 100 + i


def bench_aggregation(n: int = 20) -> dict[str, float]:
    encoded = list(encoded_updates(n))
    decoded = [codec.decode(data)[0] for data, _ in encoded]
    total = sum(len(data) for data, _ in encoded)

    # Baseline: plain in-memory NumPy accumulate of already-decoded arrays (no decoding at all).
    times = []
    for _ in range(3):
        start = time.perf_counter()
        acc = [np.zeros(n_, np.float32) for n_ in LAYERS]
        for arrays, (_, weight) in zip(decoded, encoded, strict=True):
            for a, x in zip(acc, arrays, strict=True):
                a += x * np.float32(weight)
        times.append(time.perf_counter() - start)
    baseline = total / min(times)

    # edgefed: decode each update's bytes and stream it into the weighted mean.
    del decoded
    gc.collect()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        mean = WeightedMean()
        for data, weight in encoded:
            mean.add(codec.decode_views(data)[0], weight)
        mean.result()
        times.append(time.perf_counter() - start)
    edgefed = total / min(times)
    return {"bytes": total, "baseline": baseline, "edgefed": edgefed}


def peak_memory(n: int) -> int:
    """Peak bytes allocated while streaming ``n`` updates (each produced only when needed)."""
    gc.collect()
    tracemalloc.start()
    mean = WeightedMean()
    for data, weight in encoded_updates(n):
        mean.add(codec.decode_views(data)[0], weight)
        del data
    mean.result()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def bench_strategies(n: int = 20) -> list[dict[str, float | str | bool]]:
    """Each strategy over ``n`` encoded 50 MB updates as the aggregate step runs it: decode (zero-copy
    views), screen (shapes, finite values, norm), add; finish. Throughput: update bytes per second
    (best of 2). Peak: bytes the strategy allocates (tracemalloc; the encoded updates, held before
    tracing starts, are not counted; spooled strategies also write n x 50 MB to $TMPDIR)."""
    from edgefed.steps.strategies import from_config, screen

    cases = (  # (label, the spec's aggregation section)
        ("fedavg", {"algorithm": "fedavg"}),
        ("fedavgm", {"algorithm": "fedavgm"}),
        ("fedadagrad", {"algorithm": "fedadagrad"}),
        ("fedyogi", {"algorithm": "fedyogi"}),
        ("fedadam", {"algorithm": "fedadam"}),
        ("fedprox", {"algorithm": "fedprox"}),
        ("dp-fedavg", {"algorithm": "dp-fedavg", "clip": 1.0, "clientsPerRound": 20}),
        ("median", {"algorithm": "median"}),
        ("trimmed-mean", {"algorithm": "trimmed-mean", "beta": 0.1}),
        ("krum", {"algorithm": "krum", "f": 2}),
        ("multi-krum", {"algorithm": "krum", "f": 2, "m": 10}),
    )

    global_weights = synthetic_update(10_000)
    encoded = list(encoded_updates(n))
    total = sum(len(data) for data, _ in encoded)

    def one_round(config: dict) -> None:
        strategy = from_config(config)
        strategy.begin(global_weights, None)
        try:
            for i, (data, examples) in enumerate(encoded):
                weights = codec.decode_views(data)[0]
                if screen(weights, global_weights, max_norm=None) is None:
                    strategy.add(weights, examples, f"edge-{i}")
            strategy.finish()
        finally:
            strategy.close()

    rows = []
    for label, config in cases:
        times = []
        for _ in range(2):
            start = time.perf_counter()
            one_round(config)
            times.append(time.perf_counter() - start)
        gc.collect()
        tracemalloc.start()
        one_round(config)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        streaming = from_config(config).streaming
        rows.append(
            {"strategy": label, "throughput": total / min(times), "peak": peak, "streaming": streaming}
        )
    return rows


def _demo_task(name: str, rounds: int):
    from edgefed.workflows.embedded.demo import demo_task

    task = demo_task()
    spec = task.spec.model_copy(
        update={
            "rounds": rounds,
            "stop": task.spec.stop.model_copy(update={"min_improvement": None, "target_accuracy": None}),
        }
    )
    metadata = task.metadata.model_copy(update={"name": name})
    return task.model_copy(update={"spec": spec, "metadata": metadata})


def bench_demo(rounds: int, parallelism: int | None) -> dict[str, list[tuple[int, float, float]]]:
    """The demo task twice on one runtime: as the task Workflow (``edgefed run``: plan, round Workflow,
    progress per round) and as a bare loop of round Workflows (the baseline: no plan, no task
    Workflow). Per round: the time since the previous round ended, and the slowest edge's training."""
    from edgefed.steps import layout
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.data import seeding as data
    from edgefed.workflows.driver import TaskDriver
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime
    from edgefed.workflows.embedded.task import run_task

    out: dict[str, list[tuple[int, float, float]]] = {"task": [], "loop": []}
    with (
        tempfile.TemporaryDirectory(prefix="edgefed-bench-") as home,
        EmbeddedRuntime(Path(home), parallelism=parallelism, detach_store=False) as runtime,
    ):
        warm = _demo_task("bench-warm", 2)
        edges = [e.name for e in warm.spec.edges]
        runtime.prepare(warm)
        data.seed(runtime.store.client(layout.ADMIN_IDENTITY), "heart", edges=edges)
        registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
        run_task(runtime, warm)  # every worker has traced the model's functions

        for kind in ("loop", "task", "loop", "task"):  # interleaved: drift hits both alike
            task = _demo_task(f"bench-{kind}-{len(out[kind])}", rounds)
            last = [time.perf_counter()]

            def on_round(report, kind=kind, last=last) -> None:
                now = time.perf_counter()
                slowest = max(report.train_seconds.values(), default=float("nan"))
                out[kind].append((report.round, now - last[0], slowest))
                last[0] = now

            if kind == "task":
                run_task(runtime, task, on_round=on_round)
            else:
                parameters = runtime.prepare(task)
                TaskDriver(
                    task, executor=runtime, registry=registry, parameters=parameters, on_round=on_round
                ).run()
    return out


def bench_generation() -> list[tuple[int, float, int]]:
    """Generation time and Workflow object size of one round for 1,000 and 10,000 edges."""
    import json

    from edgefed.workflows.build import round_workflow, to_document
    from edgefed.workflows.spec import parse_task
    from tests.helpers import task_doc

    rows = []
    for n in (1_000, 10_000):
        task = parse_task(task_doc(f"scale-{n}", tuple(f"edge-{i:05d}" for i in range(n))))
        times = []
        for _ in range(3):
            start = time.perf_counter()
            document = to_document(round_workflow(task, 1))
            times.append(time.perf_counter() - start)
        rows.append((n, min(times), len(json.dumps(document).encode())))
    return rows


def bench_contract_check(rows: int = 1_000_000) -> dict:
    """Data-contract check of a 1,000,000-row heart table, next to reading it from the real store."""
    from edgefed.steps import layout
    from edgefed.workflows.embedded.store import EmbeddedStore
    from tests.bench.contracts import bench_contract

    with tempfile.TemporaryDirectory(prefix="edgefed-bench-") as home, EmbeddedStore(Path(home)) as store:
        store.start()
        store.provision(["bench"])
        return bench_contract(
            rows, client=store.client(layout.ADMIN_IDENTITY), bucket=layout.edge_bucket("bench")
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="rounds of the demo task to time")
    parser.add_argument("--parallelism", type=int, default=None)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--only-inference", action="store_true", help="section 7 alone")
    parser.add_argument("--only-reference", action="store_true", help="section 8 alone")
    parser.add_argument("--reps", type=int, default=3, help="section 8: interleaved repetitions")
    parser.add_argument("--only-scale", action="store_true", help="section 9 alone")
    parser.add_argument("--only-secure", action="store_true", help="section 10 alone")
    args = parser.parse_args(argv)

    if args.only_inference:
        return _inference()
    if args.only_reference:
        return _reference(args.reps)
    if args.only_scale:
        return _scale()
    if args.only_secure:
        return _secure()
    if not args.skip_demo:
        print(f"1. demo task (heart, 4 edges), {args.rounds} rounds x 2 on the embedded engine")
        runs = bench_demo(args.rounds, args.parallelism)
        steady = {k: [r for r in v if r[0] > 1] for k, v in runs.items()}  # round 1 waits for the init
        wall = {k: statistics.median(w for _, w, _ in v) for k, v in steady.items()}
        overhead = statistics.median(w - s for _, w, s in steady["task"])
        added = wall["task"] - wall["loop"]
        print(
            f"   per round (median, rounds 2..{args.rounds}): task Workflow {wall['task']:.3f} s, "
            f"round loop {wall['loop']:.3f} s (baseline)\n"
            f"   the task Workflow adds {1000 * added:+.1f} ms per round ({wall['task'] / wall['loop']:.2f}x)"
            f"   target <= 20 ms: {'met' if added <= 0.020 else 'NOT met'}\n"
            f"   orchestration overhead (round minus slowest edge training) {overhead:.3f} s per round "
            f"({overhead / wall['task']:.0%} of the round)   target <= 0.5 s: {'met' if overhead <= 0.5 else 'NOT met'}"
        )

    print("2. generation of one round Workflow (target: 1,000 edges in < 1 s, object < 256 KiB)")
    for n, seconds, size in bench_generation():
        print(
            f"   {n:>6} edges: {seconds:6.3f} s, {size / 1024:7.1f} KiB   "
            f"({size / (256 * 1024):.0%} of 256 KiB)   {'met' if seconds < 1 and size < 256 * 1024 else 'NOT met'}"
        )

    print("3. aggregation of 20 synthetic 50 MB updates (in memory)")
    agg = bench_aggregation(20)
    print(
        f"   numpy accumulate (baseline): {agg['baseline'] / 1e9:6.2f} GB/s\n"
        f"   edgefed decode + FedAvg:     {agg['edgefed'] / 1e9:6.2f} GB/s   "
        f"ratio {agg['edgefed'] / agg['baseline']:.2f}x baseline   "
        f"target >= 2 GB/s: {'met' if agg['edgefed'] >= 2e9 else 'NOT met'}"
    )
    print("4. peak memory of streaming FedAvg (tracemalloc)")
    peaks = {n: peak_memory(n) for n in (5, 10, 20)}
    for n, peak in peaks.items():
        print(f"   {n:>2} updates: {peak / MB:7.1f} MB  ({peak / UPDATE_BYTES:.2f} x one update)")
    growth = peaks[20] / peaks[5]
    print(
        f"   20 vs 5 updates: {growth:.2f}x   target flat (<= 1.1x): {'met' if growth <= 1.1 else 'NOT met'}"
    )
    print("5. data contract (Great Expectations) on a 1,000,000-row heart table")
    c = bench_contract_check()
    print(
        f"   check: {c['checkSeconds']:.2f} s ({c['expectations']} expectations; GE import once: {c['gxImportSeconds']:.1f} s)"
        f"   read from the store: {c['storeReadSeconds']:.2f} s   ratio {c['checkSeconds'] / c['storeReadSeconds']:.1f}x"
        f"   target <= 10 s: {'met' if c['checkSeconds'] <= 10 else 'NOT met'}"
    )
    print(
        f"6. aggregation strategies: 20 x 50 MB updates, decode + screen + add + finish (baseline {agg['baseline'] / 1e9:.2f} GB/s)"
    )
    for row in bench_strategies(20):
        kind = "streaming" if row["streaming"] else "spooled to disk, O(n x block) RAM"
        print(
            f"   {row['strategy']:<13} {row['throughput'] / 1e9:6.2f} GB/s  ({row['throughput'] / agg['baseline']:.2f}x baseline)"
            f"   peak {row['peak'] / MB:7.1f} MB ({row['peak'] / UPDATE_BYTES:.2f} x one update)   {kind}"
        )
    _inference()
    _scale()
    _secure()
    return _reference(args.reps)


def _scale() -> int:
    from tests.bench.scale import main as scale

    print(
        "9. virtual edges on one machine (mnist shards, logistic model, edgefed data seed --virtual + edgefed run): "
        "per-round time, overhead and memory at 10, 100 and 1,000 edges"
    )
    return scale()


def _secure() -> int:
    from tests.bench.secure import ROUNDS
    from tests.bench.secure import main as secure

    print(
        f"10. secure aggregation (Bonawitz et al.: keys, shares, masked inputs, unmasking) beside plain FedAvg: "
        f"mnist virtual edges, logistic model, {ROUNDS} rounds each, median round 2.."
    )
    return secure()


def _reference(reps: int) -> int:
    from tests.bench.reference import main as reference

    print(
        f"8. the reference FedAvg experiment (../shared/reference-fl: digits, 10 clients, MLP 64-10, 50 rounds): "
        f"edgefed run beside the floor and TFF, {reps} interleaved repetitions, medians"
    )
    return reference(reps)


def _inference() -> int:
    from tests.bench.inference import bench_inference, report

    print("7. joint inference service (digits; edge: logistic, cloud: MLP 256; real HTTP, embedded store)")
    print(report(bench_inference()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
