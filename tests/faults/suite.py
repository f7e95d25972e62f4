"""``make faults``: each fault injected into a real embedded run, then what the model registry holds.

Every scenario runs a real task (10 edges of the digits data, the generated Workflows on the embedded
engine, real training in the warm workers, the real store), injects its fault as an operator would meet
it, lets the run end however it ends, runs the task again, and then reads the registry back:

* **versions lost**: a round committed before the fault that is gone or changed after it, a model
  version a manifest names that the store no longer has, and a due evaluation that is missing (metrics
  lost to the fault);
* **versions duplicated**: a second manifest version of a round, a second model version of a round,
  a second ``latest`` version holding the same round;
* **manifest consistent**: every round audits clean (:meth:`~edgefed.steps.registry.ModelRegistry.audit`),
  rounds are contiguous, each round's parent is the round before it (version and SHA-256), ``latest``
  holds the last round;
* **resumed**: the run after the fault ends with every round committed.

Faults are scripted through :mod:`tests.rounds.faults` (the warm workers' step target); the faults a
whole run process suffers (SIGKILL, SIGINT) run it as a process of its own (:mod:`tests.faults.runner`).
``python -m tests.faults.suite`` prints the table; tests/faults/test_faults.py runs the same suite in CI.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgefed.steps import layout
from edgefed.steps.planning import evaluate_due
from edgefed.steps.registry import ModelRegistry
from edgefed.workflows.build import step_config
from edgefed.workflows.embedded.runtime import EmbeddedRuntime
from edgefed.workflows.errors import RoundFailedError
from edgefed.workflows.spec import FederatedTask, dump_task, parse_task
from tests.helpers import REPO, digits_task_doc, run_task
from tests.rounds.faults import faults_file, script

EDGES = tuple(f"e{i}" for i in range(10))
ROUNDS = 3
BYZANTINE = ("e8", "e9")


@dataclass
class Row:
    fault: str
    happened: str = ""
    lost: int = 0
    duplicated: int = 0
    consistent: bool = False
    resumed: bool = False
    #: the fault was injected (every scripted fault was hit): a row whose fault never happened proves nothing
    fired: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return self.fired and self.lost == 0 and self.duplicated == 0 and self.consistent and self.resumed


class Suite:
    """The scenarios, on one warm runtime (its own home and store) seeded with digits across EDGES."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.faults = home / "faults.json"
        self.marks = home / "marks"
        self.marks.mkdir(parents=True, exist_ok=True)
        script(self.faults, [])
        self.runtime = EmbeddedRuntime(
            home, step_target="tests.rounds.faults:step", parallelism=2, detach_store=False
        )

    @contextmanager
    def opened(self) -> Iterator[Suite]:
        from edgefed.workflows.data.seeding import seed

        # the faults file: inherited by the warm workers and the runner processes
        with faults_file(self.faults), self.runtime:
            self.runtime.store.ensure_edges(EDGES)
            self.runtime.store.provision(EDGES)
            seed(self.admin, "digits", edges=list(EDGES), split="iid")
            yield self

    @property
    def admin(self):
        return self.runtime.store.client(layout.ADMIN_IDENTITY)

    @property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.runtime.store.client(layout.CLOUD_IDENTITY))

    def task(self, name: str, rounds: int = ROUNDS, **spec: Any) -> FederatedTask:
        spec = {
            "training": {"batchSize": 32, "learningRate": 0.2, "localEpochs": 1},
            "quorum": 6,
            "aggregation": {"algorithm": "fedavg", "maxUpdateNorm": 100.0},
            **spec,
        }
        doc = digits_task_doc(name, EDGES, rounds=rounds, **spec)
        return parse_task(doc)

    def mark(self, name: str) -> Path:
        return self.marks / name

    def arm(self, faults: list[dict[str, Any]]) -> Callable[[], bool]:
        """Script ``faults``, each writing a mark when hit; returns whether every one was hit."""
        marks = []
        for i, fault in enumerate(faults):
            if fault.get("once"):
                Path(fault["once"]).touch()
            fault.setdefault("mark", str(self.mark(f"{fault['task']}-{i}.hit")))
            Path(fault["mark"]).unlink(missing_ok=True)
            marks.append(Path(fault["mark"]))
        script(self.faults, faults)
        return lambda: all(m.exists() for m in marks)

    # -- one scenario ------------------------------------------------------------------------------
    def scenario(
        self, fault: str, task: FederatedTask, inject: Callable[[], str], fired: Callable[[], bool]
    ) -> Row:
        """Run ``inject`` (the faulty run; returns what happened), then the task again, then the ledger;
        ``fired``: whether the fault really happened (checked after ``inject``)."""
        row = Row(fault)
        try:
            row.happened = inject()
        except Exception as err:  # the suite reports what a fault did, whatever it did
            row.happened = f"the faulty run raised {type(err).__name__}: {err}"
        finally:
            row.fired = fired()
            if not row.fired:
                row.problems.append("the fault was never injected")
            script(self.faults, [])
        before = self.committed(task.name)
        try:
            result, _ = run_task(self.runtime, task)
            row.resumed = self.registry.last_committed(task.name) == task.spec.last_round
            if not row.resumed:
                row.problems.append(
                    f"the rerun stopped after round {result.last_round}: {result.stop_reason}"
                )
        except Exception as err:
            row.problems.append(f"the rerun failed: {type(err).__name__}: {err}")
        self.ledger(task, before, row)
        return row

    def committed(self, task: str) -> dict[int, tuple[str | None, str]]:
        return {
            a.round: (a.manifest["model"]["versionId"], a.manifest["model"]["sha256"])
            for a in self.registry.audit(task)
        }

    def ledger(self, task: FederatedTask, before: dict[int, tuple[str | None, str]], row: Row) -> None:
        """Lost, duplicated and consistency figures of ``task`` now, against the rounds it had ``before``."""
        registry = self.registry
        audited = {a.round: a for a in registry.audit(task.name)}
        after = {
            r: (a.manifest["model"]["versionId"], a.manifest["model"]["sha256"]) for r, a in audited.items()
        }
        for round_, committed in before.items():
            if after.get(round_) != committed:
                row.lost += 1
                row.problems.append(f"round {round_} was {committed}, is now {after.get(round_)}")
        plan = step_config(task)["plan"]
        for round_, audit in audited.items():
            row.lost += sum("is gone" in p for p in audit.problems)
            if round_ > 0 and evaluate_due(plan, round_) and registry.evaluation(task.name, round_) is None:
                row.lost += 1
                row.problems.append(f"round {round_}: its evaluation is missing")
        versions: dict[str, int] = {}
        for obj in self.admin.list_objects(
            layout.MODELS_BUCKET, prefix=layout.rounds_prefix(task.name), recursive=True, include_version=True
        ):
            if not obj.is_delete_marker:
                versions[obj.object_name] = versions.get(obj.object_name, 0) + 1
        for round_ in audited:
            for key in (layout.manifest_key(task.name, round_), layout.model_key(task.name, round_)):
                if versions.get(key, 0) > 1:
                    row.duplicated += versions[key] - 1
                    row.problems.append(f"{key}: {versions[key]} versions")
        latest_rounds = [v["round"] for v in registry.latest_versions(task.name)]
        for round_ in set(latest_rounds):
            if latest_rounds.count(round_) > 1:
                row.duplicated += latest_rounds.count(round_) - 1
                row.problems.append(f"latest holds round {round_} {latest_rounds.count(round_)} times")
        problems = [f"round {r}: {p}" for r, a in audited.items() for p in a.problems]
        rounds = sorted(audited)
        if rounds != list(range(len(rounds))):
            problems.append(f"committed rounds are not contiguous: {rounds}")
        for round_ in rounds[1:]:
            parent = audited[round_].manifest.get("parent") or {}
            previous = audited.get(round_ - 1)
            if previous is None or parent.get("sha256") != previous.manifest["model"]["sha256"]:
                problems.append(f"round {round_}: its parent is not round {round_ - 1}'s model")
        latest = registry.latest_versions(task.name)
        if rounds and (not latest or latest[0]["round"] != rounds[-1]):
            problems.append(f"latest holds round {latest[0]['round'] if latest else None}, not {rounds[-1]}")
        row.consistent = not problems
        row.problems += problems

    # -- the faults ------------------------------------------------------------------------------
    def in_process(self) -> list[Row]:
        return [
            self.worker_killed(),
            self.store_restarted(),
            self.aggregate_killed_before_manifest(),
            self.step_executed_twice(),
            self.two_runs_at_once(),
            self.bad_updates(),
            self.corrupt_data(),
            self.straggler(),
            self.cut_off_edge(),
            self.byzantine(),
        ]

    def _run(self, task: FederatedTask) -> str:
        try:
            result, _ = run_task(self.runtime, task)
        except RoundFailedError as err:
            return f"round {err.round} failed: {str(err).splitlines()[0][:120]}"
        return "; ".join(
            f"round {r.round}: {r.contributors}/{r.contributors + len(r.missing)} edges"
            + (f" ({', '.join(r.missing)} sat out)" if r.missing else "")
            for r in result.rounds
        )

    def worker_killed(self) -> Row:
        task = self.task("f-worker")
        fired = self.arm(
            [
                {
                    "step": "train",
                    "task": task.name,
                    "round": 2,
                    "edge": "e3",
                    "signal": 9,
                    "once": str(self.mark("w")),
                }
            ]
        )
        return self.scenario("an edge's worker SIGKILLed mid-training", task, lambda: self._run(task), fired)

    def store_restarted(self) -> Row:
        task = self.task("f-store")
        fired = self.arm([{"step": "train", "task": task.name, "round": 2, "edge": "e0", "sleep": 1}])
        store = self.runtime.store
        killed: list[int] = []

        def kill_and_restart() -> None:
            deadline = time.monotonic() + 120
            while not fired() and time.monotonic() < deadline:
                time.sleep(0.05)
            if store.pid is not None:
                killed.append(store.pid)
                os.kill(store.pid, signal.SIGKILL)
            time.sleep(3)
            store.start(detach=True)

        def inject() -> str:
            killer = threading.Thread(target=kill_and_restart)
            killer.start()
            try:
                return "store SIGKILLed in round 2, back 3 s later; " + self._run(task)
            finally:
                killer.join()

        return self.scenario(
            "the store SIGKILLed mid-round and restarted", task, inject, lambda: fired() and bool(killed)
        )

    def aggregate_killed_before_manifest(self) -> Row:
        task = self.task("f-aggregate")
        fired = self.arm(
            [
                {
                    "step": "aggregate",
                    "task": task.name,
                    "round": 2,
                    "beforeManifest": 9,
                    "once": str(self.mark("a")),
                }
            ]
        )
        return self.scenario(
            "the aggregate SIGKILLed between its model object and its manifest",
            task,
            lambda: self._run(task),
            fired,
        )

    def step_executed_twice(self) -> Row:
        task = self.task("f-twice")
        fired = self.arm(
            [
                {"step": "train", "task": task.name, "round": 2, "edge": "e1", "twice": True},
                {"step": "aggregate", "task": task.name, "round": 2, "twice": True},
                {"step": "evaluate", "task": task.name, "round": 2, "twice": True},
            ]
        )
        return self.scenario(
            "the same step executed twice (train, aggregate, evaluate)", task, lambda: self._run(task), fired
        )

    def two_runs_at_once(self) -> Row:
        task = self.task("f-two-runs")
        outcomes: list[str] = []

        def one() -> None:
            try:
                result, _ = run_task(self.runtime, task)
                outcomes.append(f"{len(result.rounds)} rounds")
            except Exception as err:
                outcomes.append(f"{type(err).__name__}: {err}")

        def inject() -> str:
            threads = [threading.Thread(target=one) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=600)
            return "the task's mutex queued the second: one ran " + ", the other ".join(sorted(outcomes))

        # both ran, and one found every round done: the rounds ran once, not twice
        return self.scenario(
            "two runs of the same task at once",
            task,
            inject,
            lambda: sorted(outcomes) == ["0 rounds", f"{ROUNDS} rounds"],
        )

    def bad_updates(self) -> Row:
        task = self.task("f-updates")
        kinds = {"e1": "nan", "e2": "inf", "e3": "shape", "e4": "norm"}
        fired = self.arm(
            [
                {"step": "train", "task": task.name, "round": 2, "edge": e, "update": k}
                for e, k in kinds.items()
            ]
        )
        screened: list[bool] = []

        def inject() -> str:
            happened = self._run(task)
            reasons = {m["edge"]: m["reason"] for m in self.registry.manifest(task.name, 2)["missing"]}
            screened.append(all(reasons.get(e, "").startswith("update rejected") for e in kinds))
            return f"{happened}; round 2 screened out " + ", ".join(
                f"{e} ({reasons.get(e, 'NOT SCREENED')[len('update rejected: ') :][:40]})" for e in kinds
            )

        return self.scenario(
            "NaN / Inf / wrong-shape / huge-norm updates",
            task,
            inject,
            lambda: fired() and screened == [True],
        )

    def corrupt_data(self) -> Row:
        import pandas as pd

        from edgefed.steps.store import get_bytes, parquet_bytes, put_bytes

        task = self.task("f-data")
        key = "digits/train.parquet"
        bad = ("e5", "e6")
        originals = {e: get_bytes(self.admin, f"edge-{e}", key) for e in bad}
        sat_out: list[bool] = []

        def inject() -> str:
            put_bytes(self.admin, "edge-e5", key, b"garbage, not parquet" * 50)
            frame = pd.read_parquet(io.BytesIO(originals["e6"]))
            put_bytes(self.admin, "edge-e6", key, parquet_bytes(frame.drop(columns=[frame.columns[3]])))
            try:
                happened = self._run(task)
            finally:
                for edge, data in originals.items():
                    put_bytes(self.admin, f"edge-{edge}", key, data)
            missing = {m["edge"] for m in self.registry.manifest(task.name, 1)["missing"]}
            sat_out.append(missing == set(bad))
            return "e5 holds garbage bytes, e6 a column short; " + happened

        return self.scenario(
            "corrupt edge data (garbage bytes, a missing column)", task, inject, lambda: sat_out == [True]
        )

    def straggler(self) -> Row:
        task = self.task("f-straggler", deadlines={"edgeSeconds": 3, "pendingSeconds": 120})
        fired = self.arm([{"step": "train", "task": task.name, "round": 2, "edge": "e7", "sleep": 300}])
        return self.scenario("a straggler past the edge deadline (3 s)", task, lambda: self._run(task), fired)

    def cut_off_edge(self) -> Row:
        task = self.task("f-offline", autonomy={"cloudWaitSeconds": 1})
        fired = self.arm(
            [
                {"step": step, "task": task.name, "round": 2, "edge": "e4", "cloudRefused": True}
                for step in ("validate", "train")
            ]
        )
        delivered: list[bool] = []

        def inject() -> str:
            happened = self._run(task)
            late = self.registry.manifest(task.name, 3).get("lateUpdates") or []
            delivered.append([(u["edge"], u["trainedRound"], u["used"]) for u in late] == [("e4", 2, True)])
            return f"{happened}; round 3 used e4's update of round 2, kept at its site: {delivered[0]}"

        return self.scenario(
            "an edge cut off from the cloud for a round (trains offline, delivers late)",
            task,
            inject,
            lambda: fired() and delivered == [True],
        )

    def byzantine(self) -> Row:
        task = self.task(
            "f-byzantine", quorum=8, aggregation={"algorithm": "krum", "f": 2, "m": 6, "maxUpdateNorm": 100.0}
        )
        fired = self.arm(
            [{"step": "train", "task": task.name, "edge": e, "update": "flip"} for e in BYZANTINE]
        )
        clean: list[bool] = []

        def inject() -> str:
            happened = self._run(task)
            picked = {
                e
                for r in range(1, task.spec.last_round + 1)
                for e in self.registry.manifest(task.name, r)["aggregationReport"]["selected"]
            }
            clean.append(not picked & set(BYZANTINE))
            accuracy = (self.registry.evaluation(task.name, task.spec.last_round) or {}).get("accuracy")
            return (
                f"{happened}; Multi-Krum never picked an attacker: {clean[0]}; final accuracy {accuracy:.3f}"
            )

        return self.scenario(
            "2 of 10 Byzantine edges (sign-flipped x10, Multi-Krum)",
            task,
            inject,
            lambda: fired() and clean == [True],
        )

    # -- the run process -----------------------------------------------------------------------
    def run_process_faults(self) -> list[Row]:
        """One task, run by successive processes, each stopped by a signal at a held point."""
        task = self.task("f-process", rounds=6)
        task_file = self.home / "f-process.yaml"
        task_file.write_text(yaml.safe_dump(dump_task(task)))
        rows = []
        plan = [
            ("the task run SIGKILLed mid-round", signal.SIGKILL, {"step": "train", "round": 2, "edge": "e0"}),
            ("the task run SIGINTed between rounds", signal.SIGINT, {"step": "plan", "afterRound": 3}),
            ("the task run SIGINTed mid-round", signal.SIGINT, {"step": "train", "round": 5, "edge": "e0"}),
            ("the task run SIGKILLed between rounds", signal.SIGKILL, {"step": "plan", "afterRound": 5}),
        ]
        for fault, sig, where in plan:
            mark, once = self.mark(f"{fault}.mark"), self.mark(f"{fault}.once")
            mark.unlink(missing_ok=True)
            once.touch()
            script(
                self.faults, [{**where, "task": task.name, "sleep": 60, "mark": str(mark), "once": str(once)}]
            )
            row = Row(fault)
            before = self.committed(task.name)
            log = (
                self.home / f"{fault}.log"
            )  # a file, not a pipe: a held worker outliving a SIGKILL keeps it open
            with log.open("w") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "tests.faults.runner", str(self.home), str(task_file)],
                    cwd=REPO,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                )
            started = time.monotonic()
            while not mark.exists() and process.poll() is None and time.monotonic() < started + 300:
                time.sleep(0.1)
            held_after = time.monotonic() - started
            held_at = self.registry.last_committed(task.name)
            row.fired = mark.exists() and process.poll() is None  # held where the fault says, still running
            if not row.fired:
                row.problems.append("the run was not held at the fault's point")
            process.send_signal(sig)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            output = log.read_text(errors="replace")
            script(self.faults, [])
            print(
                f"faults: {fault}: held after {held_after:.1f} s, ended "
                f"{time.monotonic() - started - held_after:.1f} s after the signal",
                file=sys.stderr,
                flush=True,
            )
            row.happened = f"{signal.Signals(sig).name} with round {held_at} the last committed; exit {process.returncode}"
            if sig == signal.SIGINT and process.returncode != 130:
                row.problems.append(f"SIGINT: exit {process.returncode}, expected 130: {output[-300:]}")
            _stop_orphans(mark)
            self.ledger(task, before, row)
            rows.append(row)
        # the last process: no fault; every row resumed if the task now completes
        done = subprocess.run(
            [sys.executable, "-m", "tests.faults.runner", str(self.home), str(task_file)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        print(f"faults: the last run exited {done.returncode}", file=sys.stderr, flush=True)
        complete = done.returncode == 0 and self.registry.last_committed(task.name) == task.spec.last_round
        final = Row("(after)")
        self.ledger(task, {}, final)
        for row in rows:
            row.resumed = complete
            row.lost += final.lost
            row.duplicated += final.duplicated
            row.consistent = final.consistent and not row.problems
            row.problems += final.problems
            if not complete:
                row.problems.append(
                    f"the last run did not complete the task: {done.stdout[-300:]}{done.stderr[-300:]}"
                )
        return rows


def _stop_orphans(mark: Path) -> None:
    """The worker the fault held (its pid in ``mark``) outlives a SIGKILLed run by design of the fault
    (it sleeps); end it so it cannot write into a later run. A real step would have ended with its pod."""
    try:
        pid = int(mark.read_text())
    except (OSError, ValueError):
        return
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def run_suite(home: Path) -> list[Row]:
    suite = Suite(home)
    with suite.opened():
        rows = suite.in_process()
        rows += suite.run_process_faults()
    return rows


def table(rows: list[Row]) -> str:
    """The table ``make faults`` prints."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    out = Table(title="faults injected into real embedded runs")
    for column in (
        "fault",
        "what happened",
        "versions lost",
        "versions duplicated",
        "manifest consistent",
        "resumed",
    ):
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(
            row.fault,
            row.happened,
            str(row.lost),
            str(row.duplicated),
            "yes" if row.consistent else "NO",
            "yes" if row.resumed else "NO",
        )
    buffer = StringIO()
    Console(file=buffer, width=200).print(out)
    text = buffer.getvalue()
    for row in rows:
        for problem in row.problems:
            text += f"  {row.fault}: {problem}\n"
    return text


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="edgefed-faults-") as tmp:
        rows = run_suite(Path(tmp))
    print(table(rows))
    held = all(r.held for r in rows)
    print(
        "every fault: nothing lost, nothing duplicated, consistent, resumed"
        if held
        else "SOME FAULTS DID NOT HOLD"
    )
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Row", "Suite", "run_suite", "table"]
