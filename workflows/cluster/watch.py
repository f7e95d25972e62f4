"""Watching a task Workflow: :func:`watch_task` polls it and its child rounds until it ends.

Each poll GETs the task Workflow (a GET sees it at once, a list may not yet) and lists the task's
round Workflows by label, keeping those the task Workflow owns; its ``round`` steps' nodes fill in
a round whose child is not listed yet or was already collected. Whenever something changed, the
caller's ``on_update`` gets a :class:`Snapshot`. The interval grows ×1.5 while nothing changes (up to
``ArgoOptions.poll_cap``) and drops back to ``poll`` when something does; the whole watch is bounded
by ``ArgoOptions.timeout``. Ctrl-C or the client's ``cancel`` event stops it with
:class:`~.errors.WatchCancelledError`: the task Workflow keeps running on the cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from edgefed.workflows.cluster.client import ArgoClient
from edgefed.workflows.cluster.errors import (
    ArgoUnavailableError,
    WatchCancelledError,
    WatchTimeoutError,
    WorkflowGoneError,
)
from edgefed.workflows.cluster.view import RoundRow, TaskRun, merge_rounds, node_rounds, round_selector

__all__ = ["Snapshot", "snapshot", "watch_task"]


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """A task Workflow and the rounds it started, at one poll."""

    task: str
    run: TaskRun
    rounds: list[RoundRow]

    @property
    def key(self) -> tuple[object, ...]:
        """What a watcher shows: a change of it is worth telling."""
        return (
            self.run.phase,
            self.run.title,
            self.run.description,
            tuple((r.workflow, r.phase, r.progress) for r in self.rounds),
        )


def snapshot(client: ArgoClient, task: str, name: str) -> Snapshot | None:
    """Task Workflow ``name`` of ``task`` and its rounds now; None when it does not exist."""
    workflow = client.get_workflow(name)
    if workflow is None:
        return None
    run = TaskRun.from_workflow(workflow)
    children = [
        row
        for w in client.list_workflows(round_selector(task))
        if (row := RoundRow.from_workflow(w)) is not None and row.owner == run.uid
    ]
    return Snapshot(task=task, run=run, rounds=merge_rounds(children, node_rounds(workflow)))


def watch_task(
    client: ArgoClient,
    task: str,
    name: str,
    *,
    on_update: Callable[[Snapshot], None] | None = None,
) -> Snapshot:
    """Poll task Workflow ``name`` until it is Succeeded, Failed or Error; its last snapshot."""
    options = client.options
    deadline = time.monotonic() + options.timeout
    interval = options.poll
    last_key: tuple[object, ...] | None = None
    client.connection.active = name
    try:
        while True:
            current = snapshot(client, task, name)
            if current is None:
                raise WorkflowGoneError(
                    name,
                    client.namespace,
                    "submitting the task again resumes after its last committed round",
                )
            if current.key != last_key:
                last_key = current.key
                interval = options.poll
                if on_update is not None:
                    on_update(current)
            if current.run.done:
                return current
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WatchTimeoutError(name, current.run.phase, options.timeout)
            client.wait(min(interval, remaining))
            interval = min(interval * 1.5, options.poll_cap)
    except KeyboardInterrupt:
        raise WatchCancelledError(name, client.namespace) from None
    except ArgoUnavailableError as err:
        lost = ArgoUnavailableError(f"{err}; workflow {name} keeps running on the cluster")
        lost.workflow = name
        raise lost from None
    finally:
        client.connection.active = None
