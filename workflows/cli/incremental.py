"""``edgefed incremental check|generate JOB.yaml TASK.yaml``: the incremental learning job.

``check`` runs the job's check Workflow once on the embedded engine (what its CronWorkflow runs on a
cluster): probe every edge, decide, and when a trigger fired retrain the served model and promote the
candidate only if it is better. ``generate`` writes the job's Argo objects (check Workflow and template,
CronWorkflows, Argo Events EventSource and Sensor) for ``kubectl apply`` beside the task's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgefed.workflows.cli.common import HomeOption, ValuesOption, console, fail, fail_with, load_for_cluster
from edgefed.workflows.errors import EdgefedError, ExitCode

__all__ = ["app", "print_decision"]

app = typer.Typer(
    help="Incremental learning: new edge data retrains the served model, promoted only if better.",
    no_args_is_help=True,
)

JobArgument = Annotated[Path, typer.Argument(help="the IncrementalLearningJob YAML")]
TaskArgument = Annotated[Path, typer.Argument(help="the FederatedTask YAML the job retrains")]


def _load(job_file: Path, task_file: Path, values: Path | None) -> tuple[Any, Any, Any]:
    from edgefed.workflows.spec.incremental import load_job

    try:
        job = load_job(job_file)
        task, settings = load_for_cluster(task_file, values)
    except EdgefedError as err:
        raise fail(err) from None
    if job.spec.task != task.name:
        raise fail_with(
            f"{job_file}: spec.task is {job.spec.task!r} but {task_file} is task {task.name!r}",
            ExitCode.INVALID,
        )
    return job, task, settings


def print_decision(decision: dict[str, Any]) -> None:
    """The check's decision and outcome, as a person reads them."""
    for probe in decision.get("probes", []):
        fresh = (
            ""
            if probe.get("freshAccuracy") is None
            else f", served model on fresh rows {probe['freshAccuracy']:.4f}"
        )
        console.print(
            f"  {probe['edge']:<16} {probe['rows']} rows, {probe['newRows']} new{fresh}", highlight=False
        )
    for edge in decision.get("unreported", []):
        console.print(f"  {edge:<16} not probed (its step failed)", highlight=False)
    if not decision["retrain"]:
        console.print(f"no retraining: {'; '.join(decision['reasons'])}", highlight=False)
        return
    console.print(
        f"trigger fired: {'; '.join(decision['reasons'])}\n"
        f"retrained from round {decision['baseRound']} to {decision['targetRound']}",
        highlight=False,
    )
    outcome = decision.get("outcome")
    if outcome:
        verdict = "PROMOTED" if outcome["promoted"] else "NOT promoted"
        console.print(f"{verdict}: {outcome['reason']}", highlight=False)


@app.command("check")
def check(
    job_file: JobArgument,
    task_file: TaskArgument,
    trigger: Annotated[
        str, typer.Option("--trigger", help="check (the data triggers), schedule (retrain anyway)")
    ] = "check",
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    home: HomeOption = None,
) -> None:
    """Run the job's check once on the embedded engine (what its CronWorkflow runs on a cluster)."""
    from edgefed.workflows.embedded.incremental import run_check
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    if trigger not in ("check", "schedule"):
        raise typer.BadParameter("expected check or schedule", param_hint="--trigger")
    job, task, _ = _load(job_file, task_file, None)
    with EmbeddedRuntime(home) as runtime, console.status(f"{job.name}: checking {task.name}'s edges..."):
        result = run_check(runtime, job, task, trigger=trigger)
    if output == "json":
        print(
            json.dumps(
                {"workflow": result.workflow, "succeeded": result.succeeded, "decision": result.decision},
                indent=2,
                sort_keys=True,
            )
        )
    elif result.decision:
        print_decision(result.decision)
    if not result.succeeded:
        raise fail_with(f"check {result.workflow} failed: {result.message}", ExitCode.FAILED)


@app.command("generate")
def generate(
    job_file: JobArgument,
    task_file: TaskArgument,
    out: Annotated[Path, typer.Option("--output-dir", "-o", help="directory to write into")] = Path("out"),
    values: ValuesOption = None,
) -> None:
    """Write the job's Argo objects (check Workflow + WorkflowTemplate, CronWorkflows, EventSource + Sensor)
    and the MinIO policies of the EventSource's notification-only identities."""
    from edgefed.workflows.build.generate import dump_yaml, write_notification_policies
    from edgefed.workflows.build.incremental import job_manifests

    job, task, settings = _load(job_file, task_file, values)
    out.mkdir(parents=True, exist_ok=True)
    for name, document in job_manifests(job, task, settings=settings).items():
        (out / name).write_text(dump_yaml(document))
        console.print(f"wrote {out / name}", highlight=False)
    # the EventSource's notification-only identities: one MinIO policy per edge, and how to install them
    for path in write_notification_policies(task, out, prefix=job.name):
        console.print(f"wrote {path}", highlight=False)
