"""``edgefed models deploy TASK.yaml [VERSION]`` and ``edgefed edges status TASK.yaml``: models at the edges.

``deploy`` builds the deployment Workflow (:mod:`edgefed.workflows.build.deploy`) and runs it on the embedded
engine, or writes it for ``argo submit`` (``--generate DIR``). ``edges status`` is the edge side's view (the
LocalController's, in Sedna's terms): per edge, its data rows, its last contract verdict, the model version it
runs and the last round it contributed to. Both take the task's YAML: the edges, their stores and Secrets
are in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgefed.workflows.cli.common import (
    HomeOption,
    ValuesOption,
    console,
    fail,
    fail_with,
    load,
    load_for_cluster,
)
from edgefed.workflows.cli.models_manage import OutputOption, cloud_registry, resolve_version
from edgefed.workflows.errors import EdgefedError, ExitCode

__all__ = ["edges_status", "models_deploy"]

TaskFileArgument = Annotated[Path, typer.Argument(help="the FederatedTask YAML (its edges and stores)")]


def models_deploy(
    task_file: TaskFileArgument,
    version: Annotated[
        str, typer.Argument(help="round number, version id (prefix), 'served' or 'latest'")
    ] = "served",
    edges: Annotated[
        str | None, typer.Option("--edges", help="comma-separated edges (default: every edge of the task)")
    ] = None,
    generate: Annotated[
        Path | None,
        typer.Option(
            "--generate", help="write the deployment Workflow into DIR for argo submit instead of running it"
        ),
    ] = None,
    values: ValuesOption = None,
    home: HomeOption = None,
) -> None:
    """Copy a committed (by default the served) version into each edge's own store, as an Argo Workflow."""
    from edgefed.workflows.build.deploy import deploy_workflow
    from edgefed.workflows.build.generate import dump_yaml
    from edgefed.workflows.build.workflows import to_document

    try:
        task, settings = load_for_cluster(task_file, values)
    except EdgefedError as err:
        raise fail(err) from None
    chosen = [e.strip() for e in edges.split(",") if e.strip()] if edges else None
    if generate is not None:
        if not version.isdigit():
            raise fail_with(
                "--generate needs the round number to deploy (the cluster's registry is not read here)",
                ExitCode.INVALID,
            )
        try:
            document = to_document(deploy_workflow(task, int(version), edges=chosen, settings=settings))
        except ValueError as err:
            raise fail_with(str(err), ExitCode.INVALID) from None
        generate.mkdir(parents=True, exist_ok=True)
        path = generate / f"{task.name}-deploy-r{int(version):05d}.yaml"
        path.write_text(dump_yaml(document))
        console.print(f"wrote {path}: argo submit {path}", highlight=False)
        return
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime
    from edgefed.workflows.embedded.task import local_task

    task = local_task(task)
    with EmbeddedRuntime(home) as runtime:
        registry = cloud_registry(runtime)
        round_ = resolve_version(registry, task.name, version)
        try:
            document = to_document(deploy_workflow(task, round_, edges=chosen, settings=settings))
        except ValueError as err:
            raise fail_with(str(err), ExitCode.INVALID) from None
        overrides = runtime.prepare(task)
        overrides.pop("edges", None)  # the deployment's own edge list (only those asked)
        with console.status(f"deploying round {round_} of {task.name}..."):
            outcome = runtime.execute(document, overrides)
        record = _deployment(registry, task.name, outcome.workflow)
    for entry in (record or {}).get("edges", []):
        mark = "deployed" if entry["deployed"] else f"NOT deployed: {entry.get('reason')}"
        console.print(f"  {entry['edge']:<16} {mark}", highlight=False)
    if not outcome.succeeded:
        raise fail_with(f"deployment {outcome.workflow} failed: {outcome.message}", ExitCode.FAILED)
    console.print(
        f"round {round_} of {task.name} runs at {len(record['edges'])} edge(s) ({outcome.workflow})",
        highlight=False,
    )


def _deployment(registry: Any, task: str, workflow: str) -> dict[str, Any] | None:
    from edgefed.steps import layout
    from edgefed.steps.store import DataUnavailableError, get_bytes

    try:
        return json.loads(get_bytes(registry.client, registry.bucket, layout.deployment_key(task, workflow)))
    except DataUnavailableError:
        return None


def edge_status(runtime: Any, task: Any, edge: Any, manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """One edge's view: data rows (and the dataset's ETag), last verdict, deployed version, last contribution."""
    import pyarrow.parquet as pq

    from edgefed.steps import layout
    from edgefed.steps.store import DataUnavailableError, StepError, get_bytes, get_object

    site = runtime.store.client(layout.site_identity(edge.name))
    cloud = runtime.store.client(layout.CLOUD_IDENTITY)
    bucket, _, key = edge.dataset.url.removeprefix("s3://").partition("/")
    status: dict[str, Any] = {"edge": edge.name, "dataset": edge.dataset.url}
    try:
        import io

        read = get_object(site, bucket, key)
        status.update(rows=pq.ParquetFile(io.BytesIO(read.data)).metadata.num_rows, etag=read.etag)
    except (StepError, OSError, ValueError) as err:
        status.update(rows=None, dataProblem=str(err))
    verdicts = [
        o.object_name
        for o in cloud.list_objects(
            layout.UPDATES_BUCKET,
            prefix=f"{layout.update_prefix(edge.name)}{task.name}/round-",
            recursive=True,
        )
        if o.object_name.endswith("/verdict.json")
    ]
    status["verdict"] = None
    if verdicts:
        verdict = json.loads(get_bytes(cloud, layout.UPDATES_BUCKET, max(verdicts)))
        status["verdict"] = {
            "passed": verdict.get("passed"),
            "round": verdict.get("round"),
            "contract": verdict.get("contract") or (verdict.get("summary") or {}).get("contract"),
            "failed": [f.get("name", f) if isinstance(f, dict) else f for f in verdict.get("failed", [])],
            # the bytes it judged: data that passed is checked again only when they change
            "datasetEtag": verdict.get("datasetEtag"),
        }
    try:
        status["deployed"] = json.loads(
            get_bytes(site, layout.edge_bucket(edge.name), layout.deployed_current_key(task.name))
        )
    except DataUnavailableError:
        status["deployed"] = None
    status["lastContribution"] = next(
        (
            {"round": m["round"], "examples": c.get("examples"), "etag": (c.get("dataset") or {}).get("etag")}
            for m in reversed(manifests)
            for c in m.get("contributors", [])
            if c["edge"] == edge.name
        ),
        None,
    )
    return status


def edges_status(
    task_file: TaskFileArgument, output: OutputOption = "table", home: HomeOption = None
) -> None:
    """Per edge: data rows, last contract verdict, deployed model version, last round it contributed to."""
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    try:
        task = load(task_file)
    except EdgefedError as err:
        raise fail(err) from None
    with EmbeddedRuntime(home) as runtime:
        runtime.prepare(task)
        registry = cloud_registry(runtime)
        manifests = [registry.manifest(task.name, r) for r in registry.committed_rounds(task.name)]
        statuses = [edge_status(runtime, task, edge, manifests) for edge in task.spec.edges]
    if output == "json":
        print(json.dumps(statuses, indent=2, sort_keys=True))
        return
    from rich.table import Table

    table = Table(title=f"{task.name}: edges")
    for column in ("edge", "rows", "new rows", "contract", "deployed", "last round"):
        table.add_column(column)
    for s in statuses:
        verdict = s["verdict"]
        shown_verdict = (
            "-"
            if verdict is None
            else (
                f"{'PASS' if verdict['passed'] else 'FAIL'} (round {verdict['round']})"
                + ("" if verdict["passed"] else f": {', '.join(map(str, verdict['failed']))}")
            )
        )
        last = s["lastContribution"]
        new_rows = "-" if last is None or s["rows"] is None else str(s["rows"] - int(last["examples"] or 0))
        deployed = s["deployed"]
        table.add_row(
            s["edge"],
            "-" if s["rows"] is None else str(s["rows"]),
            new_rows,
            shown_verdict,
            "-" if deployed is None else f"round {deployed['round']} ({deployed['sha256'][:12]})",
            "-" if last is None else str(last["round"]),
        )
    console.print(table)
