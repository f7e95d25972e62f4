"""Playbooks of :class:`~tests.workflows.cluster.fake_argo.FakeArgo`: how a created workflow plays out.

A playbook maps the created document to the ``status`` objects its GETs return in turn (the last one
repeats). Two keys of a status are the fake's, not Argo's, and never served:

* ``x-children``: ``{name: {"labels": {...}, "status": {...}}}``: when the status is first served,
  these child Workflows are created (or their status replaced), with an ownerReference to the
  workflow, as a task Workflow's ``round`` steps create child round Workflows;
* ``x-annotations``: merged into the workflow's ``metadata.annotations`` (the task Workflow's
  ``progress`` step patches its title and description).

:func:`running`, :func:`succeeded` and :func:`failed` build a single workflow's statuses;
:func:`task_statuses` a whole task Workflow's, round by round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from edgefed.workflows.build.names import ROUND_TEMPLATE

__all__ = [
    "Playbook",
    "default_playbook",
    "failed",
    "round_outputs",
    "running",
    "succeeded",
    "task_statuses",
]

_STAMP = "2024-05-01T12:{:02d}:{:02d}Z"

#: A playbook: the created workflow document -> the ``status`` objects its GETs return in turn.
Playbook = Callable[[dict[str, Any]], list[dict[str, Any]]]


def _at(second: int) -> str:
    return _STAMP.format(*divmod(second % 3600, 60))


def running(*, pending: int = 1, running: int = 1, progress: str | None = None) -> list[dict[str, Any]]:
    """``pending`` × Pending then ``running`` × Running (the last one repeats: it never ends)."""
    status: dict[str, Any] = {"phase": "Running", "startedAt": _at(0)}
    if progress:
        status["progress"] = progress
    return [{"phase": "Pending"}] * pending + [status] * running


def succeeded(
    outputs: Mapping[str, str], *, pending: int = 1, running_: int = 1, seconds: int = 5
) -> list[dict[str, Any]]:
    """Pending/Running polls, then Succeeded with ``outputs`` as ``status.outputs.parameters``."""
    final: dict[str, Any] = {
        "phase": "Succeeded",
        "startedAt": _at(0),
        "finishedAt": _at(seconds),
        "progress": "4/4",
        "outputs": {"parameters": [{"name": k, "value": v} for k, v in outputs.items()]},
    }
    return [*running(pending=pending, running=running_), final]


def failed(
    node: str = "aggregate",
    message: str = "quorum not met: 0 of 2 edges contributed (quorum 1)",
    *,
    workflow_message: str = "child 'aggregate' failed",
    phase: str = "Failed",
    running_: int = 1,
) -> list[dict[str, Any]]:
    """Running polls, then ``phase`` with one failed Pod node ``node`` carrying ``message``."""
    dag = {
        "id": "dag",
        "name": "wf",
        "displayName": "wf",
        "type": "DAG",
        "templateName": "round",
        "phase": phase,
        "message": workflow_message,
        "children": ["leaf"],
    }
    leaf = {
        "id": "leaf",
        "name": f"wf.{node}",
        "displayName": node,
        "type": "Pod",
        "templateName": node,
        "phase": phase,
        "message": message,
        "startedAt": _at(1),
        "finishedAt": _at(4),
    }
    final = {
        "phase": phase,
        "message": workflow_message,
        "startedAt": _at(0),
        "finishedAt": _at(5),
        "nodes": {"dag": dag, "leaf": leaf},
    }
    return [*running(pending=0, running=running_), final]


def round_outputs(round_: int) -> dict[str, str]:
    """What round ``round_`` outputs here: ``accuracy`` = 0.5 + 0.1 × round, both edges contributed."""
    return {
        "model-version": f"v{round_}",
        "contributors": "2",
        "missing-edges": "[]",
        "accuracy": f"{0.5 + 0.1 * round_:.4f}",
        "loss": f"{1.0 / round_:.4f}",
    }


def _round_node(task: str, round_: int, phase: str, outputs: Mapping[str, str] | None) -> dict[str, Any]:
    name = f"{task}-r{round_:05d}-a1"
    node: dict[str, Any] = {
        "id": f"round-{round_}",
        "name": f"{task}.rounds.round({round_})",
        "displayName": "round",
        "type": "Pod",
        "templateName": ROUND_TEMPLATE,
        "phase": phase,
        "startedAt": _at(10 * round_),
        "inputs": {"parameters": [{"name": "round", "value": str(round_)}, {"name": "name", "value": name}]},
    }
    if phase != "Running":
        node["finishedAt"] = _at(10 * round_ + 5)
    if outputs:
        node["outputs"] = {"parameters": [{"name": k, "value": v} for k, v in outputs.items()]}
    return node


def _child(task: str, round_: int, status: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{task}-r{round_:05d}-a1": {
            "labels": {"edgefed.io/task": task, "edgefed.io/round": str(round_), "edgefed.io/kind": "round"},
            "spec": {"workflowTemplateRef": {"name": f"{task}-round"}},
            "status": status,
        }
    }


def task_statuses(
    task: str,
    rounds: Iterable[int],
    *,
    last: int | None = None,
    fail_round: int | None = None,
    outputs: Callable[[int], dict[str, str]] = round_outputs,
) -> list[dict[str, Any]]:
    """A task Workflow's statuses that run ``rounds`` one after another: for each, a poll with its
    child Running (1 of 4 pods done), then one with it Succeeded; then the task Succeeded with the
    task outputs. ``fail_round``: that round's child fails and the task with it. ``last``: the
    task's last round, shown in the title (default: the last of ``rounds``)."""
    rounds = list(rounds)
    last = last if last is not None else (rounds[-1] if rounds else 0)
    statuses: list[dict[str, Any]] = [{"phase": "Pending"}]
    nodes: dict[str, Any] = {}
    done: int | None = None
    for round_ in rounds:
        title = {"workflows.argoproj.io/title": f"{task}: round {round_} of {last}"}
        nodes[f"round-{round_}"] = _round_node(task, round_, "Running", None)
        statuses.append(
            {
                "phase": "Running",
                "startedAt": _at(0),
                "nodes": dict(nodes),
                "x-annotations": title,
                "x-children": _child(task, round_, running(pending=0, progress="1/4")[0]),
            }
        )
        if round_ == fail_round:
            child = failed()[-1]
            nodes[f"round-{round_}"] = {
                **_round_node(task, round_, "Failed", None),
                "message": "workflow phase Failed",
            }
            statuses.append(
                {
                    "phase": "Failed",
                    "message": "child 'round' failed",
                    "startedAt": _at(0),
                    "finishedAt": _at(10 * round_ + 6),
                    "nodes": dict(nodes),
                    "x-children": _child(task, round_, child),
                }
            )
            return statuses
        result = outputs(round_)
        child = succeeded(result, pending=0, running_=0)[-1]
        nodes[f"round-{round_}"] = _round_node(task, round_, "Succeeded", result)
        statuses.append(
            {
                "phase": "Running",
                "startedAt": _at(0),
                "nodes": dict(nodes),
                "x-children": _child(task, round_, child),
            }
        )
        done = round_
    final_outputs = {
        "model-version": f"v{done}" if done else "v0",
        "accuracy": outputs(done)["accuracy"] if done else "",
        "rounds-run": str(len(rounds)),
        "last-round": str(done or 0),
        "stop-reason": f"all {last} rounds done",
    }
    statuses.append(
        {
            "phase": "Succeeded",
            "startedAt": _at(0),
            "finishedAt": _at(10 * (done or 0) + 6),
            "nodes": dict(nodes),
            "outputs": {"parameters": [{"name": k, "value": v} for k, v in final_outputs.items()]},
            "x-annotations": {"workflows.argoproj.io/title": f"{task}: done, round {done or 0} of {last}"},
        }
    )
    return statuses


def default_playbook(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A task Workflow runs rounds 1 and 2; any other workflow Pending → Running → Succeeded with a
    round's outputs (its ``edgefed.io/round`` label's; 1 without one)."""
    labels = document.get("metadata", {}).get("labels") or {}
    if labels.get("edgefed.io/kind") == "task":
        return task_statuses(labels.get("edgefed.io/task", "task"), [1, 2])
    return succeeded(round_outputs(int(labels.get("edgefed.io/round", "1")) or 1))
