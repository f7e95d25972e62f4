"""``edgefed data seed DATASET``: each edge's partition of a packaged dataset into that edge's own bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgefed.workflows.cli.common import HomeOption, console, fail, fail_with, load, progress
from edgefed.workflows.errors import EdgefedError, ExitCode

__all__ = ["data_seed"]

#: Up to this many edges, each shard seeded gets a line of its own; beyond, the progress lines only.
_EACH_SHARD_SHOWN = 20


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
    virtual: Annotated[
        int | None, typer.Option("--virtual", help="make N virtual edges v001.. (instead of --edges)")
    ] = None,
    task_out: Annotated[
        Path | None, typer.Option("--task-out", help="with --virtual: write a FederatedTask for them here")
    ] = None,
    sampling: Annotated[
        float | None,
        typer.Option("--sampling", min=0.0, max=1.0, help="with --task-out: the fraction each round asks"),
    ] = None,
    rounds: Annotated[int, typer.Option("--rounds", help="with --task-out: the task's rounds")] = 10,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="the shards as parquet or feather (Arrow IPC: wide data reads several times faster); "
            "default parquet, feather with --virtual",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Write each edge's partition (Parquet, or Feather) into that edge's bucket, plus the held-out test set
    (Parquet)."""
    from edgefed.steps import datasets
    from edgefed.steps.layout import ADMIN_IDENTITY
    from edgefed.steps.store import FORMATS
    from edgefed.workflows.data.seeding import seed as seed_data
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    try:
        task = load(task_file) if task_file else None
        name = dataset or (task.spec.dataset if task else None)
        if name is None:
            raise typer.BadParameter("give a DATASET or --task")
        edge_names = [e.strip() for e in edges.split(",")] if edges else None
        if virtual is not None:
            from edgefed.workflows.data.virtual import virtual_edge_names

            if edges or task is not None:
                raise typer.BadParameter("--virtual makes its own edges: leave out --edges and --task")
            edge_names = virtual_edge_names(virtual)
        elif task_out is not None:
            raise typer.BadParameter("--task-out needs --virtual N", param_hint="--task-out")
        fmt = fmt or ("feather" if virtual is not None else "parquet")
        if fmt not in FORMATS:
            raise typer.BadParameter(
                f"expected one of {', '.join(FORMATS)}, got {fmt!r}", param_hint="--format"
            )
        if task_out is not None and task_out.exists():
            raise fail_with(f"{task_out} exists: refusing to overwrite it", ExitCode.INVALID)
        locations = None
        if task is not None:
            edge_names = edge_names or [e.name for e in task.spec.edges]
            locations = {e.name: (e.dataset.bucket, e.dataset.key) for e in task.spec.edges}
        with EmbeddedRuntime(home) as runtime:
            names = edge_names or (list(datasets.HEART_HOSPITALS) if name == "heart" else None)
            if names is None:
                raise typer.BadParameter(f"--edges is required for {name}")
            runtime.store.ensure_edges(names)
            runtime.store.provision(names)
            client = runtime.store.client(ADMIN_IDENTITY)
            for bucket, _ in (locations or {}).values():
                if not client.bucket_exists(bucket):
                    client.make_bucket(bucket)
            with progress(len(names) + 1, f"seeding {name}") as advance:

                def seeded(o: Any) -> None:
                    if len(names) <= _EACH_SHARD_SHOWN:  # a few shards: one line each; many: progress only
                        console.print(
                            f"{o.edge or 'test set':>14}  {o.rows:>6} rows  -> {o.url}", highlight=False
                        )
                    advance()

                parts, _ = seed_data(
                    client,
                    name,
                    edges=names,
                    split=split,
                    seed=seed,
                    limit=limit,
                    locations=locations,
                    on_object=seeded,
                    fmt=fmt,
                )
    except datasets.DatasetError as err:
        raise fail_with(str(err), ExitCode.INVALID) from None
    except EdgefedError as err:
        raise fail(err) from None
    console.print(f"seeded {name}: {len(parts.edges)} edges, {parts.info.num_features} features")
    if task_out is not None:
        import yaml

        from edgefed.workflows.data.virtual import virtual_task
        from edgefed.workflows.spec import parse_task

        document = virtual_task(
            name,
            list(parts.edges),
            name=f"{name}-{len(parts.edges)}-edges",
            rounds=rounds,
            sampling=sampling,
            suffix=FORMATS[fmt],
        )
        parse_task(document)  # a spec error here is a bug of virtual_task, not of the user's input
        task_out.write_text(yaml.safe_dump(document, sort_keys=False))
        console.print(f"wrote {task_out}: edgefed run {task_out}", highlight=False)
