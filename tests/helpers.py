"""Shared test helpers: task documents and CLI invocation."""

from __future__ import annotations

import copy
import os
import runpy
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.driver import TaskResult
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime
    from edgefed.workflows.embedded.store import EmbeddedStore
    from edgefed.workflows.spec import FederatedTask

REPO = Path(__file__).resolve().parent.parent


def under_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """``CI`` is set to something true (``.ci/run`` runs with ``CI=true``): checks that may skip for a
    user without ``../shared`` must run there."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


#: Set to 1 to rewrite golden files from what the code generates now (CI only compares).
REGEN_ENV = "EDGEFED_REGEN"


def assert_golden(path: Path, text: str, *, regenerate: str) -> None:
    """``path`` holds exactly ``text``; with ``EDGEFED_REGEN=1`` it is written first.

    ``regenerate``: the command that rewrites it, for the failure message.
    """
    if os.environ.get(REGEN_ENV) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    hint = f"{REGEN_ENV}=1 uv run --frozen pytest {regenerate}"
    assert path.is_file(), f"{path.relative_to(REPO)} is missing: {hint}"
    assert path.read_text() == text, (
        f"{path.relative_to(REPO)} differs from what the code generates now; if the change is intended: {hint}"
    )


def package_dirs() -> dict[str, str]:
    """setup.py's ``PACKAGE_DIR``: installed package -> source directory."""
    return dict(runpy.run_path(str(REPO / "setup.py"), run_name="edgefed_setup")["PACKAGE_DIR"])


def task_doc(
    name: str = "t1",
    edges: tuple[str, ...] = ("a", "b"),
    *,
    dataset: str = "heart",
    input_shape: tuple[int, ...] = (32,),
    classes: int = 2,
    **spec: Any,
) -> dict[str, Any]:
    """A valid FederatedTask document; keyword arguments override spec fields."""
    doc = {
        "apiVersion": "edgefed.io/v1alpha1",
        "kind": "FederatedTask",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "logistic", "inputShape": list(input_shape), "classes": classes},
            "dataset": dataset,
            "edges": [
                {
                    "name": e,
                    "node": f"node-{e}",
                    "dataset": {"bucket": f"edge-{e}", "key": f"{dataset}/train.parquet"},
                }
                for e in edges
            ],
            "training": {"batchSize": 16, "learningRate": 0.1, "localEpochs": 1},
            "rounds": 2,
            "quorum": 1,
        },
    }
    doc["spec"].update(copy.deepcopy(spec))
    return doc


def digits_task_doc(
    name: str, edges: tuple[str, ...], *, hidden: int | None = None, **spec: Any
) -> dict[str, Any]:
    """:func:`task_doc` on the digits data (64 features, 10 classes); ``hidden``: an MLP with one hidden layer
    of that width (the model's seed from ``seed``, default 0) instead of the logistic model."""
    seed = spec.pop("seed", 0)
    if hidden is not None:
        spec["model"] = {
            "name": "mlp",
            "inputShape": [64],
            "classes": 10,
            "params": {"hidden": [hidden]},
            "seed": seed,
        }
    return task_doc(name, edges, dataset="digits", input_shape=(64,), classes=10, **spec)


def write_task(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def edgefed(*args: str, home: Path, timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the real ``edgefed`` CLI in a subprocess with its own state directory (``env``: more variables)."""
    env = {
        **os.environ,
        "EDGEFED_HOME": str(home),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "COLUMNS": "200",
        **kwargs.pop("env", {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "edgefed.workflows.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=kwargs.pop("cwd", REPO),
        **kwargs,
    )


@contextmanager
def seeded_runtime(
    store: EmbeddedStore,
    home: Path,
    dataset: str,
    edges: tuple[str, ...],
    *,
    split: str | None = None,
    hold_back: float = 0.0,
    **options: Any,
) -> Iterator[EmbeddedRuntime]:
    """An embedded runtime on the session ``store`` (not started or stopped here) whose ``edges``
    hold their part of ``dataset`` (less ``hold_back`` of it); warm workers import TensorFlow once for all
    its rounds. ``options``: more :class:`EmbeddedRuntime` options (``step_target``...)."""
    from edgefed.steps import layout
    from edgefed.workflows.data.seeding import seed
    from edgefed.workflows.embedded.runtime import EmbeddedRuntime

    with EmbeddedRuntime(home, store=store, parallelism=options.pop("parallelism", 2), **options) as rt:
        store.ensure_edges(edges)
        store.provision(edges)
        rt.seeded = seed(
            store.client(layout.ADMIN_IDENTITY), dataset, edges=list(edges), split=split, hold_back=hold_back
        )[0]
        yield rt


def run_task(
    runtime: EmbeddedRuntime, task: FederatedTask, **options: Any
) -> tuple[TaskResult, ModelRegistry]:
    """Run ``task``'s task Workflow on ``runtime`` (what ``edgefed run`` does); the result and the task's
    model registry. ``options``: of :func:`edgefed.workflows.embedded.task.run_task` (``on_round``...)."""
    from edgefed.steps import layout
    from edgefed.steps.registry import ModelRegistry
    from edgefed.workflows.embedded.task import run_task as run_task_workflow

    registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
    return run_task_workflow(runtime, task, **options), registry


def interrupt_after(round_: int):
    """An ``on_round`` callback that interrupts the task (as Ctrl-C would) once ``round_`` is reported."""

    def on_round(report) -> None:
        if report.round == round_:
            raise KeyboardInterrupt

    return on_round


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """An ASGI ``app`` served by uvicorn on a free loopback port, in a thread; yields its URL."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
