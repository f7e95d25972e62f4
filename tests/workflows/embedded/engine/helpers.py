"""Helpers shared by the embedded-engine tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgefed.workflows.embedded.engine import WorkflowResult, load_document

WORKFLOWS = Path(__file__).parent / "workflows"


def load(name: str) -> dict[str, Any]:
    """The test workflow ``workflows/<name>.yaml`` as a dict."""
    return load_document(WORKFLOWS / f"{name}.yaml")


def child_pids() -> set[int]:
    """PIDs of the live (non-zombie) direct children of this process, from /proc."""
    me = os.getpid()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == me and state != "Z":
            found.add(int(entry))
    return found


def phases(result: WorkflowResult) -> dict[str, str]:
    """display name -> phase (display names must be unique in the workflow under test)."""
    return {n.display_name: n.phase for n in result.nodes.values()}


def edge_fan_out(edge: dict[str, Any], items: list[str], *, join: bool = False) -> dict[str, Any]:
    """A DAG running template ``edge`` (its input ``edge`` set) once per item.

    ``join``: then a ``join`` task echoing the edges' aggregated ``model`` outputs, with the round's
    ``depends: edge.Succeeded || edge.Failed || edge.Errored`` (it runs whatever the edges did).
    """
    tasks: list[dict[str, Any]] = [
        {
            "name": "edge",
            "template": "edge",
            "withItems": items,
            "arguments": {"parameters": [{"name": "edge", "value": "{{item}}"}]},
        }
    ]
    templates: list[dict[str, Any]] = [
        {"name": "main", "dag": {"tasks": tasks}},
        {"name": "edge", "inputs": {"parameters": [{"name": "edge"}]}, **edge},
    ]
    if join:
        models = {"name": "models", "value": "{{tasks.edge.outputs.parameters.model}}"}
        tasks.append(
            {
                "name": "join",
                "template": "join",
                "depends": "edge.Succeeded || edge.Failed || edge.Errored",
                "arguments": {"parameters": [models]},
            }
        )
        templates.append(
            {
                "name": "join",
                "inputs": {"parameters": [{"name": "models"}]},
                "container": {"image": "x", "command": ["echo", "{{inputs.parameters.models}}"]},
            }
        )
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "fan-out-"},
        "spec": {"entrypoint": "main", "templates": templates},
    }
