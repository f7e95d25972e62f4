"""Section 10: what secure aggregation costs a round, next to plain FedAvg, at 10 and 100 edges.

For each size, in a fresh state directory: ``edgefed data seed mnist --virtual N --task-out task.yaml``,
then ``edgefed run`` of that task (plain FedAvg) and of the same task with ``aggregation.secure: true``,
each twice under other names, in the order plain, secure, secure, plain, on the same store. A secure round runs three more edge fan-outs
(keys, shares, unmasking) and three cloud roster steps; its aggregate removes the masks. Printed: the
median round (rounds 2..), the ratio, and from the secure rounds' manifests the aggregate's own protocol
time (summing, recovering t-of-n secrets, unmasking).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import yaml

from tests.bench.scale import run_measured, seed_virtual, stop_store

SIZES = (10, 100)
ROUNDS = 4


def _variant(task: Path, suffix: str, *, secure: bool) -> tuple[Path, str]:
    """The seeded task under another name (a task already run would not run again), secure or not."""
    doc = yaml.safe_load(task.read_text())
    doc["metadata"]["name"] = f"{doc['metadata']['name']}-{suffix}"
    doc["spec"]["aggregation"] = {
        **(doc["spec"].get("aggregation") or {}),
        **({"secure": True} if secure else {}),
    }
    out = task.with_name(f"task-{suffix}.yaml")
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out, doc["metadata"]["name"]


def _protocol_seconds(home: Path, task: str) -> float:
    """The median of the secure rounds' ``secureAggregation.seconds`` (the aggregate's unmasking)."""
    from edgefed.steps import layout
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.embedded.store import EmbeddedStore

    store = EmbeddedStore(home / "store")
    registry = ModelRegistry(store.client(layout.CLOUD_IDENTITY))
    return statistics.median(
        registry.manifest(task, r)["secureAggregation"]["seconds"] for r in range(2, ROUNDS + 1)
    )


def main() -> int:
    print(
        f"  {'edges':>6} {'FedAvg round':>12} {'secure round':>12} {'ratio':>6} {'unmasking in aggregate':>22}"
    )
    with tempfile.TemporaryDirectory(prefix="edgefed-secure-") as scratch:
        for edges in SIZES:
            home = Path(scratch) / f"edges-{edges}"
            try:
                task, _ = seed_virtual(home, edges, None, ROUNDS)
                rounds: dict[bool, list[float]] = {False: [], True: []}
                secure_names = []
                # plain, secure, secure, plain: neither kind always runs first (warm caches, a busy machine)
                for i, secure in enumerate((False, True, True, False)):
                    variant, name = _variant(task, f"{'secure' if secure else 'plain'}-{i}", secure=secure)
                    measured, _ = run_measured(home, variant, ROUNDS)
                    rounds[secure] += [s for r, s, _ in measured if r > 1]
                    if secure:
                        secure_names.append(name)
                unmasking = statistics.median(_protocol_seconds(home, n) for n in secure_names)
            finally:
                stop_store(home)
            a, b = statistics.median(rounds[False]), statistics.median(rounds[True])
            print(f"  {edges:>6} {a:>11.3f}s {b:>11.3f}s {b / a:>5.2f}x {unmasking:>21.3f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
