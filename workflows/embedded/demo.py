"""``edgefed demo`` (``make demo``): the heart task across 4 hospitals, end to end, on this machine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from edgefed.workflows.spec import FederatedTask, dump_task, load_task, parse_task

DEMO_TASK = Path(__file__).resolve().parents[2] / "examples" / "heart-demo.yaml"
DEMO_JOB = Path(__file__).resolve().parents[2] / "examples" / "heart-incremental.yaml"
#: ``--incremental``: the share of each hospital's rows that arrives after the first training.
HOLD_BACK = 0.3
#: The hospitals whose held-back rows arrive.
NEW_DATA_AT = ("cleveland", "hungary")


def demo_task(path: Path = DEMO_TASK, *, dp_epsilon: float | None = None) -> FederatedTask:
    """The demo task under a fresh name, so every demo trains from round 1 and keeps older runs.

    ``dp_epsilon``: aggregate with DP-FedAvg for that total privacy budget (δ 1e-5) over the task's rounds.
    """
    task = load_task(path)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    document = dump_task(task)
    document["metadata"]["name"] = f"{task.name}{'-dp' if dp_epsilon else ''}-{stamp}"
    if dp_epsilon is not None:
        document["spec"]["aggregation"] = {
            "algorithm": "dp-fedavg",
            "targetEpsilon": dp_epsilon,
            "delta": 1e-5,
        }
    return parse_task(document, source=str(path))


def main(
    *,
    home: Path | None,
    parallelism: int | None,
    console: Console,
    run_task: Callable[..., Any],
    dp_epsilon: float | None = None,
    incremental: bool = False,
) -> None:
    from edgefed.steps import datasets, layout
    from edgefed.workflows.data.seeding import seed
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    task = demo_task(dp_epsilon=dp_epsilon)
    edges = [e.name for e in task.spec.edges]
    console.rule("1. seed: each hospital's rows go to that hospital's own bucket")
    runtime = EmbeddedRuntime(home)
    started_here = not runtime.store.running
    with runtime:
        runtime.store.ensure_edges(edges)
        runtime.store.provision(edges)
        parts, _ = seed(
            runtime.store.client(layout.ADMIN_IDENTITY),
            "heart",
            edges=edges,
            on_object=lambda o: console.print(f"  {o.edge or 'test set':>14}  {o.rows:>4} rows -> {o.url}"),
            hold_back=HOLD_BACK if incremental else 0.0,
        )
        if incremental:
            console.print(
                f"  ({HOLD_BACK:.0%} of each hospital's rows held back: they arrive after the first training)"
            )
        endpoint, state_dir = runtime.store.endpoint, runtime.store.state_dir
    console.rule(
        f"2. train: {task.name}: the task Workflow, one child Workflow per round, {len(edges)} edges"
    )
    result = run_task(task, home=home, parallelism=parallelism)
    baseline = datasets.centralized_baseline(parts)
    final = next((r.accuracy for r in reversed(result.rounds) if r.accuracy is not None), None)
    console.rule("3. result")
    console.print(f"stopped after round {result.last_round}: {result.stop_reason}")
    if final is not None:
        console.print(f"federated accuracy (central test set, {len(parts.test)} patients): {final:.4f}")
    console.print(f"centralized logistic regression on the same split (all rows pooled): {baseline:.4f}")
    if final is not None:
        console.print(f"difference: {100 * (final - baseline):+.1f} points")
    if incremental:
        console.print(
            f"  (the federated model has seen {1 - HOLD_BACK:.0%} of each hospital's rows so far; the baseline all)"
        )
    if dp_epsilon is not None:
        console.print(
            f"privacy: central DP over {result.last_round} rounds, ε {dp_epsilon:g} at δ 1e-5 spent (see "
            "`edgefed models list`); with only 4 hospitals the noise that buys it costs accuracy"
        )
    console.print(
        f"model versions: s3://{layout.MODELS_BUCKET}/{task.name}/ on the embedded store http://{endpoint}\n"
        f"  (data under {state_dir}); list them with: edgefed models list {task.name}"
    )
    _report(task.name, home=home, console=console)
    if incremental:
        _incremental(task, parts, home=home, console=console)
    if started_here:  # leave the machine as the demo found it; any edgefed command starts the store again
        runtime.store.stop()


def _report(task: str, *, home: Path | None, console: Console) -> None:
    """Where to see the training: the HTML report (written now) and the TensorBoard event files."""
    from edgefed.workflows.cli.report import show_paths, write_report
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    with EmbeddedRuntime(home) as runtime:
        target, events = write_report(runtime, task)
    console.rule("4. see it")
    show_paths(console, target, events)


def _incremental(task: FederatedTask, parts: Any, *, home: Path | None, console: Console) -> None:
    """Promote the trained model, then new rows at two hospitals: the job's check retrains it, promotes if better."""
    from edgefed.steps import layout, promotions
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.cli.incremental import print_decision
    from edgefed.workflows.data.seeding import append_held_back
    from edgefed.workflows.embedded.incremental import run_check
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime
    from edgefed.workflows.spec.incremental import load_job, parse_job

    loaded = load_job(DEMO_JOB)
    document = loaded.model_dump(mode="json", by_alias=True, exclude_none=True)
    document["spec"]["task"] = task.name
    job = parse_job(document, source=str(DEMO_JOB))
    with EmbeddedRuntime(home) as runtime:
        registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
        last = registry.last_committed(task.name) or 0
        console.rule(f"4. promote: round {last} serves")
        promotions.promote(
            registry, task.name, last, by="edgefed demo", reason="the first federated training"
        )
        console.print(f"promoted round {last} (edgefed models promote {task.name} {last})")
        console.rule(f"5. incremental check ({job.name}): nothing new yet")
        print_decision(run_check(runtime, job, task).decision)
        console.rule(
            f"6. new rows arrive at {' and '.join(NEW_DATA_AT)} (their held-back slice of the real data)"
        )
        appended = append_held_back(
            runtime.store.client(layout.ADMIN_IDENTITY), parts, NEW_DATA_AT, hold_back=HOLD_BACK
        )
        for edge, rows in appended.items():
            console.print(
                f"  {edge:>14}  +{rows} rows -> s3://{layout.edge_bucket(edge)}/heart/train.parquet"
            )
        console.rule(
            "7. incremental check: the trigger fires, the served model retrains, promoted only if better"
        )
        with console.status(f"retraining {task.name} ({job.spec.retraining.rounds} rounds)..."):
            result = run_check(runtime, job, task)
        if result.decision:
            print_decision(result.decision)
        if not result.succeeded:
            console.print(f"[red]the check failed: {result.message}[/]")
        record = promotions.served(registry, task.name)
        console.print(
            f"serving: round {record['round']} ({record['reason']}); history: edgefed models show {task.name}"
        )


__all__ = ["DEMO_JOB", "DEMO_TASK", "demo_task", "main"]
