"""``edgefed serve edge|cloud|generate``: the joint inference service, on this machine or for a cluster.

``edge`` and ``cloud`` run one side against the embedded store, in a child process (``python -m
edgefed.steps.serving``: TensorFlow stays out of the control plane) with that side's own identities;
Ctrl-C stops it. ``generate`` writes the Deployments and Services of both sides for ``kubectl apply``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from edgefed.workflows.cli.common import HomeOption, ValuesOption, console, fail, fail_with, load_for_cluster
from edgefed.workflows.errors import EdgefedError, ExitCode

__all__ = ["app"]

app = typer.Typer(
    help="Joint inference: a small model at each edge, a bigger one in the cloud.", no_args_is_help=True
)

TaskName = Annotated[str, typer.Argument(help="task name (metadata.name) whose model serves")]
PortOption = Annotated[int, typer.Option("--port", help="port on 127.0.0.1")]
VersionOption = Annotated[
    int | None, typer.Option("--version", help="round to serve (default: the served one)")
]


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt


def _run(args: list[str], env: dict[str, str]) -> None:
    """Run the service in a child process until it ends; Ctrl-C or SIGTERM stops it (exit 130)."""
    command = [sys.executable, "-m", "edgefed.steps.serving", *args]
    child = subprocess.Popen(command, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})
    signal.signal(signal.SIGTERM, _interrupted)  # a stopped `edgefed serve` never leaves its service behind
    try:
        code = child.wait()
    except KeyboardInterrupt:
        child.terminate()
        child.wait(timeout=30)
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if code != 0:
        raise fail_with(
            f"the {args[0]} service stopped with exit status {code} (its message is above)", ExitCode.FAILED
        )


def _identity_env(runtime, identity: str, *, site: bool = False) -> dict[str, str]:
    from edgefed.steps.interface import Env

    creds = runtime.store.credentials(identity)
    access, key = (Env.SITE_ACCESS_KEY, Env.SITE_SECRET_KEY) if site else (Env.ACCESS_KEY, Env.SECRET_KEY)
    return {access: creds.access_key, key: creds.secret_key}


@app.command("cloud")
def serve_cloud(
    task_name: TaskName, port: PortOption = 8081, version: VersionOption = None, home: HomeOption = None
) -> None:
    """The cloud side: the task's served (or a given) version answers what edges forward."""
    from edgefed.steps import layout
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    with EmbeddedRuntime(home, detach_store=True) as runtime:
        env = _identity_env(runtime, layout.CLOUD_IDENTITY)
        store = f"http://{runtime.store.endpoint}"
    args = ["cloud", f"--task={task_name}", f"--store={store}", f"--port={port}"]
    _run([*args, *([f"--version={version}"] if version is not None else [])], env)


@app.command("edge")
def serve_edge(
    task_name: TaskName,
    edge: Annotated[str, typer.Option("--edge", help="the edge whose model serves")],
    cloud: Annotated[
        str | None, typer.Option("--cloud", help="the cloud service's URL (none: edge only)")
    ] = None,
    rule: Annotated[
        str, typer.Option("--rule", help="hard examples: confidence or margin below --threshold")
    ] = "confidence",
    threshold: Annotated[float, typer.Option("--threshold", min=0.0, max=1.0)] = 0.8,
    source: Annotated[
        str, typer.Option("--source", help="deployed (the edge's own store) or registry")
    ] = "deployed",
    port: PortOption = 8080,
    version: VersionOption = None,
    home: HomeOption = None,
) -> None:
    """The edge side: answers what it is sure of, forwards hard examples to --cloud, keeps them in its own store."""
    from edgefed.steps import layout
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    if rule not in ("confidence", "margin"):
        raise typer.BadParameter("expected confidence or margin", param_hint="--rule")
    if source not in ("deployed", "registry"):
        raise typer.BadParameter("expected deployed or registry", param_hint="--source")
    with EmbeddedRuntime(home, detach_store=True) as runtime:
        runtime.store.ensure_edges([edge])
        runtime.store.provision([edge])
        env = {
            **_identity_env(runtime, layout.edge_identity(edge)),
            **_identity_env(runtime, layout.site_identity(edge), site=True),
        }
        store = f"http://{runtime.store.endpoint}"
    args = [
        "edge",
        f"--task={task_name}",
        f"--edge={edge}",
        f"--store={store}",
        f"--site-store={store}",
        f"--rule={rule}",
        f"--threshold={threshold}",
        f"--source={source}",
        f"--port={port}",
    ]
    args += [f"--cloud={cloud}"] if cloud else []
    args += [f"--version={version}"] if version is not None else []
    _run(args, env)


@app.command("generate")
def serve_generate(
    task_file: Annotated[Path, typer.Argument(help="the FederatedTask YAML (its edges, stores, Secrets)")],
    out: Annotated[Path, typer.Option("--output-dir", "-o")] = Path("out"),
    cloud_task: Annotated[
        str | None, typer.Option("--cloud-task", help="the task whose model the cloud serves")
    ] = None,
    threshold: Annotated[float, typer.Option("--threshold", min=0.0, max=1.0)] = 0.8,
    rule: Annotated[
        str, typer.Option("--rule", help="hard examples: confidence or margin below --threshold")
    ] = "confidence",
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="where the cloud Service lives")
    ] = "edgefed",
    values: ValuesOption = None,
) -> None:
    """Write the Deployments and Services of the cloud side and of every edge (pinned to its node)."""
    from edgefed.workflows.build.generate import dump_yaml
    from edgefed.workflows.build.serving import serving_manifests

    if rule not in ("confidence", "margin"):
        raise typer.BadParameter("expected confidence or margin", param_hint="--rule")
    try:
        task, settings = load_for_cluster(task_file, values)
    except EdgefedError as err:
        raise fail(err) from None
    out.mkdir(parents=True, exist_ok=True)
    for name, document in serving_manifests(
        task, cloud_task=cloud_task, threshold=threshold, rule=rule, namespace=namespace, settings=settings
    ).items():
        (out / name).write_text(dump_yaml(document))
        console.print(f"wrote {out / name}", highlight=False)
