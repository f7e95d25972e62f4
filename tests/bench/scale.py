"""Section 9: many virtual edges on one machine, and each round's overhead.

For each size (10 and 100 edges, every edge every round; 1,000 edges with 10% sampled each round), in a
fresh state directory: ``edgefed data seed mnist --virtual N --task-out task.yaml`` (a shard of MNIST per
edge, in the edge's own bucket), then ``edgefed run task.yaml`` on the embedded default, exactly as a user
runs it. While it runs, a sampler reads the memory of the orchestrator (the ``edgefed run`` process: the
engine, the documents, the node records) and of the whole process tree (its warm workers included; the
store is a process of its own, started by the seeding, and not counted).

The per-round figures come from ``edgefed run``'s own round lines: the round's time (from the previous
round's end) and its overhead (that time minus the slowest edge's training compute). Rounds 2.. count:
round 1 also traces the training function and checks each edge's data for the first time.

With 10% sampled, most edges of rounds 2-4 are asked for the first time, so they check their data
against the contract (Great Expectations) for the first time too: that is the first row for 1,000 edges
(the target). The second (``again``) is a second task on the same edges and data: each edge's verdict on
its unchanged data is reused, as in the later rounds of a long task.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench.reference import _pss_mb

PYTHON = sys.executable
EDGEFED = [PYTHON, "-m", "edgefed.workflows.cli"]

#: (edges, sampling fraction or None for all, rounds, target seconds a round or None)
SIZES: tuple[tuple[int, float | None, int, float | None], ...] = (
    (10, None, 8, None),
    (100, None, 4, 1.5),
    (1000, 0.1, 4, 2.0),
)
OVERHEAD_TARGET = 0.1  # seconds, at 10 edges
FLAT = 1.25  # orchestrator memory at 1,000 edges within this factor of its memory at 10

_ROUND = re.compile(r"^round\s+(\d+) .* (\d+\.\d+)s \(overhead (-?\d+\.\d+)s\)")


@dataclass
class ScaleRun:
    edges: int
    asked: int
    again: bool  # a second task on the same data: verdicts reused
    seed_seconds: float
    rounds: list[tuple[int, float, float]]  # (round, seconds, overhead)
    orchestrator_mb: float  # peak PSS of the edgefed run process
    tree_mb: float  # peak PSS of its tree (warm workers included)

    @property
    def steady(self) -> float:
        return statistics.median(s for r, s, _ in self.rounds if r > 1)

    @property
    def overhead(self) -> float:
        return statistics.median(o for r, _, o in self.rounds if r > 1)


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    out, i = [root], 0
    while i < len(out):
        out += children.get(out[i], [])
        i += 1
    return out


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "EDGEFED_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200"}


def seed_virtual(home: Path, edges: int, sampling: float | None, rounds: int) -> tuple[Path, float]:
    """``edgefed data seed mnist --virtual N`` into ``home``: the task file it writes, and its seconds."""
    home.mkdir()
    task = home / "task.yaml"
    seed = [*EDGEFED, "data", "seed", "mnist", "--virtual", str(edges), "--task-out", str(task)]
    seed += ["--rounds", str(rounds)] + (["--sampling", str(sampling)] if sampling else [])
    started = time.perf_counter()
    seeded = subprocess.run(seed, env=_env(home), capture_output=True, text=True)
    if seeded.returncode != 0:
        raise RuntimeError(f"seeding {edges} edges failed:\n{seeded.stdout}{seeded.stderr}")
    return task, time.perf_counter() - started


def run_measured(
    home: Path, task: Path, rounds: int
) -> tuple[list[tuple[int, float, float]], dict[str, float]]:
    """``edgefed run TASK`` in ``home``: each round's (round, seconds, overhead) from its round lines, and
    the peak PSS of the orchestrator and of its process tree (MB). The store keeps running."""
    peak = {"orchestrator": 0.0, "tree": 0.0}
    proc = subprocess.Popen(
        [*EDGEFED, "run", str(task)],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            pids = _tree(proc.pid)
            peak["orchestrator"] = max(peak["orchestrator"], _pss_mb(proc.pid))
            peak["tree"] = max(peak["tree"], sum(_pss_mb(p) for p in pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"edgefed run of {task} failed:\n{output[-3000:]}")
    found = [_ROUND.match(line) for line in output.splitlines()]
    measured = [(int(m[1]), float(m[2]), float(m[3])) for m in found if m]
    if len(measured) != rounds:
        raise RuntimeError(f"expected {rounds} round lines from edgefed run, found:\n{output[-3000:]}")
    return measured, peak


def stop_store(home: Path) -> None:
    subprocess.run([*EDGEFED, "store", "stop"], env=_env(home), capture_output=True)


def run_size(
    edges: int, sampling: float | None, rounds: int, scratch: Path, *, again: bool = False
) -> list[ScaleRun]:
    """One task on freshly seeded edges; with ``again`` a second task on the same edges after it."""
    home = scratch / f"edges-{edges}"
    asked = edges if sampling is None else max(1, int(edges * sampling))
    runs = []
    try:
        task, seed_seconds = seed_virtual(home, edges, sampling, rounds)
        measured, peak = run_measured(home, task, rounds)
        runs.append(ScaleRun(edges, asked, False, seed_seconds, measured, peak["orchestrator"], peak["tree"]))
        if again:
            second = home / "again.yaml"
            second.write_text(task.read_text().replace("-edges\n", "-edges-again\n", 1))
            measured, peak = run_measured(home, second, rounds)
            runs.append(ScaleRun(edges, asked, True, 0.0, measured, peak["orchestrator"], peak["tree"]))
    finally:
        stop_store(home)
    return runs


def main() -> int:
    results: list[ScaleRun] = []
    with tempfile.TemporaryDirectory(prefix="edgefed-scale-") as scratch:
        print(
            f"  {'edges':>6} {'asked':>6} {'seeded in':>9} {'round (median 2..)':>18} {'overhead':>9} "
            f"{'orchestrator':>12} {'tree PSS':>9}  target"
        )
        for edges, sampling, rounds, target in SIZES:
            for run in run_size(edges, sampling, rounds, Path(scratch), again=sampling is not None):
                results.append(run)
                verdict = (
                    "-"
                    if target is None
                    else f"<= {target:g} s a round: {'met' if run.steady <= target else 'NOT MET'}"
                )
                if run.again:
                    verdict = f"again, verdicts reused ({verdict}; not the target row)"
                if edges == 10:
                    met = "met" if run.overhead <= OVERHEAD_TARGET else "NOT MET"
                    verdict = f"overhead <= {OVERHEAD_TARGET:g} s: {met}"
                seeded = "-" if run.again else f"{run.seed_seconds:.1f}s"
                print(
                    f"  {run.edges:>6} {run.asked:>6} {seeded:>9} {run.steady:>17.3f}s "
                    f"{run.overhead:>8.3f}s {run.orchestrator_mb:>10.0f}MB {run.tree_mb:>7.0f}MB  {verdict}",
                    flush=True,
                )
    first = results[0]
    per_round = ", ".join(f"{o:.3f}" for _, _, o in first.rounds)
    print(f"  overhead of each round at {first.edges} edges (s): {per_round}")
    largest = next(r for r in results if r.edges == results[-1].edges and not r.again)
    growth = largest.orchestrator_mb / results[0].orchestrator_mb
    print(
        f"  orchestrator memory, {results[-1].edges} vs {results[0].edges} edges: {growth:.2f}x   "
        f"target flat (<= {FLAT}x): {'met' if growth <= FLAT else 'NOT MET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
