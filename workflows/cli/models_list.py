"""``edgefed models list TASK``: a task's committed model versions, with metrics and lineage."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from edgefed.workflows.cli.common import HomeOption, console, err_console, privacy_text
from edgefed.workflows.errors import ExitCode

__all__ = ["models_list"]


def models_list(
    task_name: Annotated[str, typer.Argument(help="task name (metadata.name)")],
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    home: HomeOption = None,
) -> None:
    """The task's committed model versions with round, metrics and contributing edges, each checked
    against the store (its manifest as committed; the model version it names there, same size and ETag):
    exit 1 naming any round that is not."""
    from rich.table import Table

    from edgefed.steps.layout import CLOUD_IDENTITY, MODELS_BUCKET, latest_key
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    with EmbeddedRuntime(home) as runtime:
        registry = ModelRegistry(runtime.store.client(CLOUD_IDENTITY))
        rows = []
        for audited in registry.audit(task_name):  # each round as committed, checked against the store
            round_, manifest = audited.round, audited.manifest
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
                    "verified": audited.verified,
                    "problems": list(audited.problems),
                }
            )
        latest = registry.latest_versions(task_name)
    problems = [f"round {r['round']}: {p}" for r in rows for p in r["problems"]]
    if output == "json":
        print(json.dumps({"task": task_name, "versions": rows, "latest": latest}, indent=2))
        _fail_on(problems)
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
        "check",
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
            "ok" if r["verified"] else "[red]NOT AS COMMITTED[/red]",
        ]
        if private:
            cells.insert(4, privacy_text(r["privacy"]).strip() or "-")
        table.add_row(*cells)
    console.print(table)
    console.print(f"latest: s3://{MODELS_BUCKET}/{latest_key(task_name)}, {len(latest)} version(s)")
    _fail_on(problems)


def _fail_on(problems: list[str]) -> None:
    """Exit 1 naming every round that is not as its commit left it."""
    if problems:
        for problem in problems:
            err_console.print(f"[red]{problem}[/red]")
        raise typer.Exit(int(ExitCode.FAILED))
