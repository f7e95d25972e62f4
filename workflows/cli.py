"""The ``edgefed`` command line.

Thin commands: each parses options, defers heavy imports until it runs, and maps errors to the
exit codes in :class:`~edgefed.workflows.errors.ExitCode`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgefed.workflows.errors import EdgefedError, ExitCode

app = typer.Typer(
    name="edgefed",
    help="Federated learning at the edge, orchestrated as Argo Workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Datasets in the edges' stores.", no_args_is_help=True)
models_app = typer.Typer(help="Versioned global models.", no_args_is_help=True)
store_app = typer.Typer(help="The embedded S3 store (SeaweedFS).", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(store_app, name="store")

console = Console()
err_console = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", envvar="EDGEFED_HOME", help="state directory (store data, runs, credentials)"),
]
ParallelismOption = Annotated[
    int | None,
    typer.Option("--parallelism", "-j", min=1, help="edges trained at once (default: cores, max 4)"),
]


def _fail(err: EdgefedError) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {err}", highlight=False, markup=True)
    return typer.Exit(int(err.exit_code))


def _load(path: Path):
    from edgefed.workflows.spec import load_task

    return load_task(path)


# -- run -------------------------------------------------------------------------------------
@app.command()
def run(
    task_file: Annotated[Path, typer.Argument(help="FederatedTask YAML")],
    home: HomeOption = None,
    parallelism: ParallelismOption = None,
) -> None:
    """Run a task on the embedded engine, round after round; resumes after the last committed round."""
    try:
        task = _load(task_file)
        result = _run_task(task, home=home, parallelism=parallelism)
    except EdgefedError as err:
        raise _fail(err) from None
    except KeyboardInterrupt:
        err_console.print("interrupted: committed rounds are kept; run the same command again to resume")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    console.print(f"task {result.task}: stopped after round {result.last_round}: {result.stop_reason}")


def _run_task(task, *, home: Path | None, parallelism: int | None, quiet: bool = False):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.driver import RoundReport, TaskDriver
    from edgefed.workflows.embedded import EmbeddedRuntime

    with EmbeddedRuntime(home, parallelism=parallelism or task.spec.parallelism) as runtime:
        parameters = runtime.prepare(task)
        registry = ModelRegistry(runtime.store.client("cloud"))
        done = registry.last_round(task.name) or 0
        if done:
            console.print(f"task {task.name}: resuming after committed round {done}")
        with Progress(
            TextColumn("[bold]{task.fields[name]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("round {task.completed}  acc {task.fields[acc]}  loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
        ) as progress:
            bar = progress.add_task(
                "rounds", total=task.spec.last_round, completed=done, name=task.name, acc="-", loss="-"
            )

            def on_round(report: RoundReport) -> None:
                acc = f"{report.accuracy:.4f}" if report.accuracy is not None else "-"
                loss = f"{report.loss:.4f}" if report.loss is not None else "-"
                progress.update(bar, completed=report.round, acc=acc, loss=loss)
                missing = f"  (sat out: {', '.join(report.missing)})" if report.missing else ""
                privacy = _privacy_text(registry.manifest(task.name, report.round).get("privacy"))
                progress.console.print(
                    f"round {report.round:>3}  accuracy {acc}  loss {loss}  edges {report.contributors}"
                    f"{privacy}  {report.seconds:.2f}s  {report.workflow}{missing}",
                    highlight=False,
                )

            driver = TaskDriver(
                task, executor=runtime, registry=registry, parameters=parameters, on_round=on_round
            )
            return driver.run()


def _privacy_text(privacy: dict | None) -> str:
    """``  ε 1.23 (δ 1e-05)`` for a round under differential privacy, else nothing."""
    if not privacy:
        return ""
    epsilon = privacy.get("epsilon")
    spent = "∞" if epsilon is None else f"{float(epsilon):.3g}"  # None: a round without noise, no guarantee
    return f"  ε {spent} (δ {float(privacy['delta']):.0e})"


# -- demo ------------------------------------------------------------------------------------
@app.command()
def demo(
    home: HomeOption = None,
    parallelism: ParallelismOption = None,
    dp_epsilon: Annotated[
        float | None,
        typer.Option(
            "--dp-epsilon", min=0.01, help="train under central differential privacy with this ε budget"
        ),
    ] = None,
) -> None:
    """Seed the heart data across 4 hospitals and train a federated model on the embedded default."""
    from edgefed.workflows import demo as demo_mod

    try:
        demo_mod.main(
            home=home, parallelism=parallelism, console=console, run_task=_run_task, dp_epsilon=dp_epsilon
        )
    except EdgefedError as err:
        raise _fail(err) from None


# -- data ------------------------------------------------------------------------------------
@data_app.command("seed")
def data_seed(
    dataset: Annotated[
        str | None, typer.Argument(help="heart, digits or mnist (default: the task's)")
    ] = None,
    task_file: Annotated[
        Path | None, typer.Option("--task", help="seed the edges (and keys) of this task")
    ] = None,
    edges: Annotated[str | None, typer.Option(help="comma-separated edge names")] = None,
    split: Annotated[str | None, typer.Option(help="natural (heart), iid or label-skew (images)")] = None,
    seed: Annotated[int, typer.Option(help="random seed of the split")] = 0,
    limit: Annotated[int | None, typer.Option(help="cap on training rows (all edges together)")] = None,
    home: HomeOption = None,
) -> None:
    """Write each edge's partition as Parquet into that edge's bucket, plus the held-out test set."""
    from edgefed.steps.datasets import DatasetError
    from edgefed.workflows import data
    from edgefed.workflows.embedded import EmbeddedRuntime

    try:
        task = _load(task_file) if task_file else None
        name = dataset or (task.spec.dataset if task else None)
        if name is None:
            raise typer.BadParameter("give a DATASET or --task")
        edge_names = [e.strip() for e in edges.split(",")] if edges else None
        locations = None
        if task is not None:
            edge_names = edge_names or [e.name for e in task.spec.edges]
            locations = {e.name: (e.dataset.bucket, e.dataset.key) for e in task.spec.edges}
        with EmbeddedRuntime(home) as runtime:
            from edgefed.steps import datasets

            names = edge_names or (list(datasets.HEART_HOSPITALS) if name == "heart" else None)
            if names is None:
                raise typer.BadParameter(f"--edges is required for {name}")
            runtime.store.ensure_edges(names)
            runtime.store.provision(names)
            client = runtime.store.client("admin")
            for bucket, _ in (locations or {}).values():
                if not client.bucket_exists(bucket):
                    client.make_bucket(bucket)
            parts, _ = data.seed(
                client,
                name,
                edges=names,
                split=split,
                seed=seed,
                limit=limit,
                locations=locations,
                on_object=lambda o: console.print(
                    f"{o.edge or 'test set':>14}  {o.rows:>6} rows  -> {o.url}", highlight=False
                ),
            )
    except DatasetError as err:
        err_console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(int(ExitCode.INVALID)) from None
    except EdgefedError as err:
        raise _fail(err) from None
    console.print(f"seeded {name}: {len(parts.edges)} edges, {parts.info.num_features} features")


@data_app.command("check")
def data_check(
    task_file: Annotated[Path, typer.Argument(help="FederatedTask YAML")],
    edge: Annotated[str | None, typer.Option("--edge", help="check only this edge")] = None,
    contract: Annotated[str | None, typer.Option(help="contract name or file (default: the task's)")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    home: HomeOption = None,
) -> None:
    """Run the data contracts at every edge without training; exit 1 if any edge fails.

    Each edge's data is checked with that edge's own credentials; only verdicts are shown."""
    from edgefed.steps.layout import edge_identity
    from edgefed.workflows.check import check_task, render_table
    from edgefed.workflows.embedded import EmbeddedRuntime

    try:
        task = _load(task_file)
        with EmbeddedRuntime(home) as runtime:
            runtime.prepare(task)
            verdicts = check_task(
                task,
                clients_for_edge=lambda e: runtime.store.client(edge_identity(e)),
                edge=edge,
                contract=contract,
            )
    except EdgefedError as err:
        raise _fail(err) from None
    if output == "json":
        print(json.dumps({name: json.loads(v.to_json()) for name, v in verdicts.items()}, indent=2))
    else:
        console.print(render_table(verdicts))
    if not all(v.passed for v in verdicts.values()):
        raise typer.Exit(int(ExitCode.FAILED))


# -- models ----------------------------------------------------------------------------------
@models_app.command("list")
def models_list(
    task_name: Annotated[str, typer.Argument(help="task name (metadata.name)")],
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    home: HomeOption = None,
) -> None:
    """The task's committed model versions with round, metrics and contributing edges."""
    from rich.table import Table

    from edgefed.steps.layout import MODELS_BUCKET
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.embedded import EmbeddedRuntime

    with EmbeddedRuntime(home) as runtime:
        registry = ModelRegistry(runtime.store.client("cloud"))
        rows = []
        for round_ in registry.committed_rounds(task_name):
            manifest = registry.manifest(task_name, round_)
            evaluation = registry.evaluation(task_name, round_) or {}
            rows.append(
                {
                    "round": round_,
                    "versionId": manifest["model"]["versionId"],
                    "model": f"s3://{MODELS_BUCKET}/{manifest['model']['key']}",
                    "committedAt": manifest["committedAt"],
                    "accuracy": evaluation.get("accuracy"),
                    "loss": evaluation.get("loss"),
                    "contributors": [c["edge"] for c in manifest["contributors"]],
                    "missing": manifest["missing"],
                    "examples": manifest["examples"],
                    "privacy": manifest.get("privacy"),
                    "workflow": manifest["workflow"],
                }
            )
        latest = registry.latest_versions(task_name)
    if output == "json":
        print(json.dumps({"task": task_name, "versions": rows, "latest": latest}, indent=2))
        return
    if not rows:
        err_console.print(f"task {task_name!r} has no committed model")
        raise typer.Exit(int(ExitCode.FAILED))
    table = Table(title=f"models of {task_name}  (s3://{MODELS_BUCKET}/{task_name}/)")
    private = any(r["privacy"] for r in rows)
    columns = [
        "round",
        "version",
        "accuracy",
        "loss",
        "examples",
        "contributing edges",
        "sat out",
        "workflow",
    ]
    if private:
        columns.insert(4, "ε spent (δ)")
    for col in columns:
        table.add_column(col)
    for r in rows:
        cells = [
            str(r["round"]),
            (r["versionId"] or "-")[:12],
            f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "-",
            f"{r['loss']:.4f}" if r["loss"] is not None else "-",
            str(r["examples"]),
            ", ".join(r["contributors"]) or "(initial model)",
            ", ".join(m["edge"] for m in r["missing"]) or "-",
            r["workflow"],
        ]
        if private:
            cells.insert(4, _privacy_text(r["privacy"]).strip() or "-")
        table.add_row(*cells)
    console.print(table)
    console.print(f"latest: s3://{MODELS_BUCKET}/{task_name}/latest.npz, {len(latest)} version(s)")


# -- generate ------------------------------------------------------------------------------
@app.command()
def generate(
    task_file: Annotated[Path, typer.Argument(help="FederatedTask YAML")],
    out: Annotated[Path, typer.Option("--output-dir", "-o", help="directory to write the manifests to")],
    cron: Annotated[bool, typer.Option(help="also write a CronWorkflow for scheduled retraining")] = True,
) -> None:
    """Write everything a cluster needs for the task: round WorkflowTemplate, init and round Workflows,
    a CronWorkflow, and the kubectl commands that label the edge nodes."""
    from edgefed.workflows.generate import write_manifests

    try:
        task = _load(task_file)
    except EdgefedError as err:
        raise _fail(err) from None
    for path in write_manifests(task, out, task_yaml=task_file.read_text() if cron else None):
        console.print(f"wrote {path}")


# -- store -----------------------------------------------------------------------------------
@store_app.command("start")
def store_start(home: HomeOption = None) -> None:
    """Start the embedded store (commands start it on demand; this is rarely needed)."""
    from edgefed.workflows.embedded import EmbeddedRuntime

    runtime = EmbeddedRuntime(home)
    runtime.store.start(detach=True)
    console.print(f"store running at http://{runtime.store.endpoint} (data: {runtime.store.state_dir})")


@store_app.command("stop")
def store_stop(home: HomeOption = None) -> None:
    """Stop the embedded store. Its data stays and is there again at the next start."""
    from edgefed.workflows.embedded import EmbeddedRuntime

    runtime = EmbeddedRuntime(home)
    runtime.store.stop()
    console.print("store stopped")


@store_app.command("status")
def store_status(home: HomeOption = None) -> None:
    """Whether the embedded store runs, and where."""
    from edgefed.workflows.embedded import EmbeddedRuntime

    store = EmbeddedRuntime(home).store
    if store.running:
        console.print(f"running at http://{store.endpoint} (data: {store.state_dir})")
    else:
        console.print(f"not running (data: {store.state_dir})")
        raise typer.Exit(int(ExitCode.FAILED))


def _mount() -> None:
    from edgefed.workflows import submit
    from edgefed.workflows.engine.cli import app as engine_app

    app.add_typer(engine_app, name="engine", help="Run an Argo Workflow YAML file on this machine.")
    submit.register(app)


_mount()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))


__all__ = ["app", "main"]

if __name__ == "__main__":
    main()
