"""Constants and small builders the cluster tests share."""

from __future__ import annotations

from typing import Any

from edgefed.workflows.spec import FederatedTask, parse_task
from tests.helpers import task_doc

__all__ = ["NS", "TOKEN", "make_task", "parameters_of"]

TOKEN = "s3cr3t-token-do-not-print"
NS = "argo"


def make_task(rounds: int = 3, name: str = "t1", **spec: Any) -> FederatedTask:
    return parse_task(task_doc(name, ("a", "b"), rounds=rounds, **spec))


def parameters_of(document: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p.get("value") for p in document["spec"].get("arguments", {}).get("parameters", [])}
