"""Shared test helpers: task documents and CLI invocation."""

from __future__ import annotations

import copy
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent


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


def write_task(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def edgefed(*args: str, home: Path, timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the real ``edgefed`` CLI in a subprocess with its own state directory."""
    env = {**os.environ, "EDGEFED_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "edgefed.workflows.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=kwargs.pop("cwd", REPO),
        **kwargs,
    )


def interrupt_after(round_: int):
    """An ``on_round`` callback that interrupts the task (as Ctrl-C would) once ``round_`` is reported."""

    def on_round(report) -> None:
        if report.round == round_:
            raise KeyboardInterrupt

    return on_round
