"""A step target that runs the real ``edgefed-step`` unless a scripted fault says otherwise.

The warm workers (``EmbeddedRuntime(step_target="tests.rounds.faults:step")``) read the faults file
named by :data:`FAULTS_ENV` at every call, so a test scripts faults while its runtime stays warm::

    [{"step": "evaluate", "task": "t", "round": 2, "exit": 1},
     {"step": "train", "task": "t", "edge": "b", "sleep": 120},
     {"step": "aggregate", "task": "t", "round": 2, "exit": 1, "once": "/tmp/x/marker"}]

A fault matches on step, task and (if given) round and edge; ``once``: only while that file exists
(the first matching call deletes it). ``sleep`` then ``exit`` (or the real step).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

FAULTS_ENV = "EDGEFED_TEST_FAULTS"


def _flags(argv: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in argv if a.startswith("--") and "=" in a)


def _matches(fault: dict[str, Any], step: str, flags: dict[str, str]) -> bool:
    if fault["step"] != step or fault.get("task") != flags.get("--task"):
        return False
    if fault.get("round") is not None and str(fault["round"]) != flags.get("--round"):
        return False
    if fault.get("edge") is not None and fault["edge"] != flags.get("--edge"):
        return False
    if fault.get("once"):
        try:
            os.remove(fault["once"])
        except FileNotFoundError:
            return False
    return True


def step(argv: list[str]) -> int:
    from edgefed.steps import cli

    path = os.environ.get(FAULTS_ENV)
    faults = json.loads(Path(path).read_text()) if path and Path(path).exists() else []
    flags = _flags(argv[1:])
    for fault in faults:
        if _matches(fault, argv[0], flags):
            if "sleep" in fault:
                time.sleep(fault["sleep"])
            if "exit" in fault:
                print(f"scripted fault: {argv[0]} exits {fault['exit']}", file=sys.stderr)
                return int(fault["exit"])
            break
    return cli.run(argv)


def script(path: Path, faults: list[dict[str, Any]]) -> None:
    """Replace the scripted faults (``[]``: none)."""
    path.write_text(json.dumps(faults))
