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
