"""``edgefed models show|get|promote|rollback``: a task's versions out of the registry, and which one serves.

A VERSION is a round number, a model version id (or a unique prefix of at least 8 characters), ``served``
(the promoted one) or ``latest`` (the last committed round); omitted, it is the served version if one was
promoted, else the latest. Everything goes through the registry with the cloud identity; nothing here
rewrites a round: promotions and rollbacks are new records (:mod:`edgefed.steps.promotions`).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgefed.workflows.cli.common import HomeOption, console, err_console, fail_with
from edgefed.workflows.errors import ExitCode

if TYPE_CHECKING:
    from edgefed.steps.registry import ModelRegistry

__all__ = [
    "cloud_registry",
    "models_export",
    "models_get",
    "models_promote",
    "models_rollback",
    "models_show",
    "resolve_version",
]

OutputOption = Annotated[str, typer.Option("--output", "-o", help="table or json")]
VersionArgument = Annotated[
    str | None, typer.Argument(help="round number, version id (prefix), 'served' or 'latest'")
]


def resolve_version(registry: ModelRegistry, task: str, version: str | None) -> int:
    """The committed round ``version`` names (exit 2 naming task and version when it names none)."""
    from edgefed.steps.promotions import served

    rounds = registry.committed_rounds(task)
    if not rounds:
        raise fail_with(
            f"task {task!r} has no committed model (is the name right? `edgefed run` trains it)",
            ExitCode.INVALID,
        )
    if version in (None, "served"):
        record = served(registry, task)
        if record is not None:
            return int(record["round"])
        if version == "served":
            raise fail_with(
                f"task {task!r}: no version was promoted yet (`edgefed models promote`)", ExitCode.INVALID
            )
        return rounds[-1]
    if version == "latest":
        return rounds[-1]
    # A round is at most 5 digits (MAX_ROUNDS); a longer all-digit string is a version id (SeaweedFS's are).
    if version.isdigit() and len(version) <= 5:
        if int(version) not in rounds:
            raise fail_with(
                f"task {task!r} has no committed round {int(version)} (committed: {rounds[0]}..{rounds[-1]})",
                ExitCode.INVALID,
            )
        return int(version)
    if len(version) >= 8:
        matches = [
            r
            for r in rounds
            if (registry.manifest(task, r)["model"].get("versionId") or "").startswith(version)
        ]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise fail_with(
                f"task {task!r}: version {version!r} names rounds {matches}: give more of it",
                ExitCode.INVALID,
            )
    raise fail_with(
        f"task {task!r} has no version {version!r} (a round number, a version id of 8+ characters, 'served' or 'latest')",
        ExitCode.INVALID,
    )


def cloud_registry(runtime: Any) -> ModelRegistry:
    """The model registry of an embedded ``runtime``'s store, with the cloud identity."""
    from edgefed.steps.layout import CLOUD_IDENTITY
    from edgefed.steps.registry import ModelRegistry

    return ModelRegistry(runtime.store.client(CLOUD_IDENTITY))


@contextmanager
def _registry(home: Path | None, task: str, version: str | None) -> Iterator[tuple[ModelRegistry, int]]:
    """The registry (cloud identity, on the embedded store of ``home``) and the round ``version`` names; a
    store error inside (a version whose bytes do not match its manifest...) exits 1 with its message."""
    from edgefed.steps.store import StepError
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    with EmbeddedRuntime(home) as runtime:
        registry = cloud_registry(runtime)
        round_ = resolve_version(registry, task, version)
        try:
            yield registry, round_
        except StepError as err:
            raise fail_with(str(err), ExitCode.FAILED) from None


def models_show(
    task_name: Annotated[str, typer.Argument(help="task name (metadata.name)")],
    version: VersionArgument = None,
    output: OutputOption = "table",
    home: HomeOption = None,
) -> None:
    """One version's metrics, lineage and hashes, whether it serves, and the promotion history."""
    from edgefed.steps.layout import MODELS_BUCKET
    from edgefed.steps.promotions import history
    from edgefed.steps.store import StepError

    with _registry(home, task_name, version) as (registry, round_):
        # the round as committed (its manifest's first version), checked against the store, and its bytes
        audited = next(r for r in registry.audit(task_name) if r.round == round_)
        manifest, problems = audited.manifest, list(audited.problems)
        try:
            registry.verified_object(manifest["model"], f"model of round {round_} of {task_name!r}")
        except StepError as err:
            problems.append(str(err))
        verified = not problems
        evaluation = registry.evaluation(task_name, round_)
        records = history(registry, task_name)
    serving = records[-1]["round"] if records else None
    shown = {
        "task": task_name,
        "round": round_,
        "serves": serving == round_,
        "model": {
            **manifest["model"],
            "url": f"s3://{MODELS_BUCKET}/{manifest['model']['key']}",
            "verified": verified,
        },
        "problems": problems,
        "evaluation": evaluation,
        "parent": manifest.get("parent"),
        "contributors": manifest.get("contributors", []),
        "missing": manifest.get("missing", []),
        "examples": manifest.get("examples"),
        "workflow": manifest.get("workflow"),
        "committedAt": manifest.get("committedAt"),
        "promotions": records,
    }
    if output == "json":
        print(json.dumps(shown, indent=2, sort_keys=True))
    else:
        from rich.table import Table

        table = Table(
            title=f"{task_name} round {round_}{'  (serving)' if shown['serves'] else ''}", show_header=False
        )
        table.add_column("field")
        table.add_column("value")
        model = shown["model"]
        table.add_row("model", f"{model['url']} (version {model.get('versionId')})")
        table.add_row("sha256", f"{model['sha256']}  {'verified' if verified else 'DOES NOT MATCH'}")
        table.add_row("committed", f"{shown['committedAt']} by workflow {shown['workflow']}")
        if evaluation:
            table.add_row(
                "evaluation", ", ".join(f"{k} {v:.4f}" for k, v in evaluation.items() if isinstance(v, float))
            )
        parent = shown["parent"] or {}
        table.add_row(
            "parent", f"round {parent.get('round')} ({parent.get('sha256', '')[:12]})" if parent else "-"
        )
        table.add_row(
            "learned from",
            ", ".join(
                f"{c['edge']} ({c.get('examples')} rows, update {c.get('sha256', '')[:12]})"
                for c in shown["contributors"]
            )
            or "(initial model)",
        )
        table.add_row(
            "sat out", ", ".join(f"{m['edge']}: {m.get('reason')}" for m in shown["missing"]) or "-"
        )
        for record in records:
            table.add_row(
                f"{record['action']} #{record['seq']}",
                f"round {record['round']} by {record['by']} at {record['at']}: {record['reason']}",
            )
        console.print(table)
    if not verified:
        raise fail_with("; ".join(problems), ExitCode.FAILED)


def models_get(
    task_name: Annotated[str, typer.Argument(help="task name (metadata.name)")],
    version: VersionArgument = None,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="file to write (default ./<task>-r<round>.npz); never overwritten"),
    ] = None,
    home: HomeOption = None,
) -> None:
    """The weights file (.npz) of a version, verified against the SHA-256 its manifest records."""
    with _registry(home, task_name, version) as (registry, round_):
        target = to or Path(f"{task_name}-r{round_:05d}.npz")
        if target.exists():
            raise fail_with(
                f"{target} exists: refusing to overwrite it (--to another path)", ExitCode.INVALID
            )
        data = registry.model_bytes(task_name, round_)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    console.print(
        f"wrote {target}: round {round_} of {task_name}, {len(data)} bytes, SHA-256 verified", highlight=False
    )


def _by(by: str | None) -> str:
    if by:
        return by
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


ReasonOption = Annotated[str, typer.Option("--reason", "-m", help="why (recorded with who and when)")]
ByOption = Annotated[str | None, typer.Option("--by", help="who (default: user@host)")]


def _print_record(record: dict[str, Any], output: str) -> None:
    if output == "json":
        print(json.dumps(record, indent=2, sort_keys=True))
        return
    replaced = record["replaces"]
    console.print(
        f"{record['task']}: round {record['round']} serves ({record['action']} #{record['seq']} by {record['by']}: "
        f"{record['reason']})" + (f"; it replaces round {replaced['round']}" if replaced else ""),
        highlight=False,
    )


def models_promote(
    task_name: Annotated[str, typer.Argument(help="task name (metadata.name)")],
    version: Annotated[str, typer.Argument(help="round number, version id (prefix) or 'latest'")],
    reason: ReasonOption = "promoted by hand",
    by: ByOption = None,
    output: OutputOption = "table",
    home: HomeOption = None,
) -> None:
    """Make a committed version the one that serves (a new record; no round is rewritten)."""
    from edgefed.steps.promotions import promote

    with _registry(home, task_name, version) as (registry, round_):
        record = promote(registry, task_name, round_, by=_by(by), reason=reason)
    _print_record(record, output)


def models_rollback(
    task_name: Annotated[str, typer.Argument(help="task name (metadata.name)")],
    reason: ReasonOption = "rolled back by hand",
    by: ByOption = None,
    output: OutputOption = "table",
    home: HomeOption = None,
) -> None:
    """Serve again the version the current promotion replaced."""
    from edgefed.steps.promotions import PromotionError, rollback

    with _registry(home, task_name, "latest") as (registry, _):  # "latest": an unknown task is named
        try:
            record = rollback(registry, task_name, by=_by(by), reason=reason)
        except PromotionError as err:
            raise fail_with(str(err), ExitCode.INVALID) from None
    _print_record(record, output)


def models_export(
    task_name: Annotated[str, typer.Argument(help="task name (metadata.name)")],
    version: VersionArgument = None,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="directory to create (default ./<task>-r<round>); never overwritten"),
    ] = None,
    tflite: Annotated[bool, typer.Option("--tflite", help="also a TFLite file, for small edges")] = False,
    output: OutputOption = "table",
    home: HomeOption = None,
) -> None:
    """A version for serving: Keras .keras, a TensorFlow SavedModel (TF Serving layout, a signature by
    feature column) and optionally TFLite, with export.json naming what it is and where it came from."""
    from edgefed.steps.datasets import DatasetError, info

    with _registry(home, task_name, version) as (registry, round_):
        target = to or Path(f"{task_name}-r{round_:05d}")
        if target.exists():
            raise fail_with(
                f"{target} exists: refusing to overwrite it (--to another path)", ExitCode.INVALID
            )
        manifest = registry.manifest(task_name, round_)
        spec = manifest.get("modelSpec") or registry.manifest(task_name, 0).get("modelSpec")
        if spec is None:
            raise fail_with(
                f"task {task_name!r} round {round_}: its manifest does not record the model (committed by an "
                "edgefed before model lineage); nothing to rebuild it from",
                ExitCode.FAILED,
            )
        data = registry.model_bytes(task_name, round_)
    dataset = manifest.get("datasetName") or registry.manifest(task_name, 0).get("datasetName")
    recorded = manifest.get("columns") or registry.manifest(task_name, 0).get("columns")
    try:
        columns = list(recorded["features"]) if recorded else list(info(dataset).feature_columns)
    except (DatasetError, TypeError):
        columns = [f"x{i}" for i in range(_features(spec))]  # a dataset edgefed has no schema of
    provenance = {
        "task": task_name,
        "round": round_,
        "modelVersionId": manifest["model"].get("versionId"),
        "modelSha256": manifest["model"]["sha256"],
        "dataset": dataset,
        "contract": manifest.get("contract"),
    }
    with tempfile.TemporaryDirectory(prefix="edgefed-export-") as scratch:
        weights = Path(scratch) / "weights.npz"
        weights.write_bytes(data)
        command = [sys.executable, "-m", "edgefed.steps.export", f"--weights={weights}"]
        command += [f"--model={json.dumps(spec)}", f"--features={json.dumps(columns)}", f"--out={target}"]
        command += [f"--version={round_}", f"--provenance={json.dumps(provenance)}"]
        command += ["--tflite"] if tflite else []
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        # TensorFlow runs in a child process: the control plane never imports it (see pyproject's import rules)
        working = f"exporting round {round_} of {task_name} (TensorFlow)..."
        if not console.is_terminal:  # no spinner in a log: say once what the next seconds are spent on
            err_console.print(working, highlight=False)
        with console.status(working):
            done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["the exporter failed"])[-1]
        raise fail_with(f"export of round {round_} of {task_name!r} to {target}: {last}", ExitCode.FAILED)
    description = json.loads(done.stdout.strip().splitlines()[-1])
    if output == "json":
        print(json.dumps(description, indent=2, sort_keys=True))
        return
    console.print(f"exported round {round_} of {task_name} to {target}/:", highlight=False)
    for kind, entry in description["files"].items():
        console.print(
            f"  {kind:<10} {target / entry['path']}  sha256 {entry['sha256'][:16]}", highlight=False
        )
    console.print(
        f"  serve it: tensorflow_model_server --model_name={task_name} "
        f"--model_base_path={target.resolve() / 'saved_model'}",
        highlight=False,
    )


def _features(spec: dict[str, Any]) -> int:
    n = 1
    for d in spec["inputShape"]:
        n *= int(d)
    return n
