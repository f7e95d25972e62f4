"""What DAG tasks and steps share: fan-out (``withItems``/``withParam``), child naming, ``continueOn``.

Fan-out (argo-workflows ``workflow/controller/operator.go`` ``processItem``, ``dag.go``, ``steps.go``)
    A task or step with ``withItems`` or ``withParam`` (a JSON list, after substitution) runs its template
    once per item, all at once (bounded by the template's ``parallelism`` and the pod slots). Child ``i``
    is named ``<task>(<i>:<item>)``; an object item renders as ``(<i>:k1:v1,k2:v2)`` with keys sorted, and
    ``{{item}}``/``{{item.<k>}}`` resolve in the child's arguments and ``when``. In a DAG the children hang
    under a TaskGroup node, which is Failed/Error if any child is (the last such child's phase); in steps
    they hang under the step group directly. An empty list gives a Skipped node ("Skipped, empty
    params"); a ``withParam`` that is not a JSON list errors the task.

``continueOn`` (``failed``/``error``)
    The one rule: a Failed (Error) task or step whose ``continueOn.failed`` (``.error``) is set does not
    fail its DAG or step group; :func:`continues` is what the DAG assessment, failFast and the step groups
    ask.

The scheduling itself runs on one asyncio event loop: a task, step or item is a coroutine, not a thread,
so coordinating 10,000 children costs no thread at all (see :mod:`.pods` for the bounded process threads).
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections import ChainMap
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from edgefed.workflows.phases import Phase

from .errors import NodeError
from .nodes import Node, NodeRecord
from .params import substitute, substitute_obj
from .pods import WorkflowDeadline
from .scope import WorkflowScope, item_vars, to_str

__all__ = [
    "Call",
    "Expansion",
    "Scheduler",
    "Siblings",
    "continues",
    "expand",
    "group_phase",
    "guarded",
    "invoke_all",
    "limiter",
]


@dataclass(frozen=True)
class Call:
    """One invocation of a task's or step's template, after fan-out."""

    name: str
    display: str
    #: Where its arguments and ``when`` are resolved (the item's variables over the caller's scope).
    scope: Mapping[str, str]


@dataclass(frozen=True)
class Siblings:
    """Where calls run: their parent node, the bound on how many run at once, and for which part."""

    parent: Node
    #: The template's ``parallelism`` over its children (None: unbounded), see :func:`limiter`.
    limiter: asyncio.Semaphore | None
    #: Whether they belong to the exit handler (which runs after the workflow deadline too).
    exit_handler: bool


@dataclass(frozen=True)
class Expansion:
    """The calls a task or step makes: one, or one per item when it fans out."""

    calls: list[Call]
    fanned_out: bool


def expand(
    spec: Mapping[str, Any], scope: Mapping[str, str], name: str, display: str, where: str
) -> Expansion:
    """The calls of a task/step named ``name``; raise :class:`NodeError` for a ``withParam`` not a list."""
    items = _items(spec, scope, where)
    if items is None:
        return Expansion([Call(name, display, scope)], fanned_out=False)
    calls = []
    for i, item in enumerate(items):
        item_scope, label = item_vars(item)
        child_scope = ChainMap(item_scope, scope)  # not a copy per item: the caller's scope is shared
        calls.append(Call(f"{name}({i}:{label})", f"{display}({i}:{label})", child_scope))
    return Expansion(calls, fanned_out=True)


def _items(spec: Mapping[str, Any], scope: Mapping[str, str], where: str) -> list[Any] | None:
    """The items of withItems/withParam (None if the task/step does not fan out)."""
    if "withItems" in spec:
        return list(substitute_obj(spec["withItems"], scope, where=f"{where}.withItems"))
    if "withParam" in spec:
        text = substitute(to_str(spec["withParam"]), scope, where=f"{where}.withParam")
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise NodeError(f"withParam value could not be parsed as a JSON list: {text.strip()}") from exc
        if not isinstance(items, list):
            raise NodeError(f"withParam value could not be parsed as a JSON list: {text.strip()}")
        return items
    return None


def limiter(tmpl: Mapping[str, Any], scope: Mapping[str, str]) -> asyncio.Semaphore | None:
    """A dag/steps template's ``parallelism`` as a semaphore over its children (None if unbounded)."""
    if tmpl.get("parallelism") is None:
        return None
    n = int(substitute(to_str(tmpl["parallelism"]), scope, where="parallelism"))
    return asyncio.Semaphore(max(1, n))


def continues(spec: Mapping[str, Any], phase: Phase) -> bool:
    """Whether the task's/step's ``continueOn`` lets a node in ``phase`` pass."""
    cont = spec.get("continueOn") or {}
    return bool(
        (phase == Phase.FAILED and cont.get("failed")) or (phase == Phase.ERROR and cont.get("error"))
    )


def group_phase(children: Sequence[Node]) -> tuple[Phase, str]:
    """A TaskGroup's phase and message: Failed/Error if any child is (the last such child's)."""
    phase, message = Phase.SUCCEEDED, ""
    for child in children:
        if Phase.is_failure(child.phase):
            phase, message = child.phase, f"child '{child.name}' {child.phase.lower()}"
    return phase, message


class Scheduler(Protocol):
    """What DAG and steps scheduling need from the run (the executor's ``_WorkflowRun``)."""

    records: NodeRecord
    workflow: WorkflowScope
    templates: Mapping[str, dict[str, Any]]
    deadline: WorkflowDeadline

    def invoke(self, spec: dict[str, Any], call: Call, siblings: Siblings) -> Awaitable[Node]:
        """Resolve one call's arguments, check ``when`` and run its template under ``siblings.parent``."""
        ...


async def guarded(
    records: NodeRecord, work: Awaitable[Node], call: Call, template: str | None, parent: Node
) -> Node:
    """``work``'s node; an engine bug becomes an errored node instead of breaking the siblings."""
    try:
        return await work
    except Exception as exc:
        traceback.print_exc()
        return records.skip(call.name, call.display, template, parent, Phase.ERROR, f"engine error: {exc}")


async def invoke_all(
    run: Scheduler, calls: Sequence[tuple[dict[str, Any], Call]], siblings: Siblings
) -> list[Node]:
    """Run every ``(spec, call)`` at once; the nodes in the order of ``calls``."""
    return list(
        await asyncio.gather(
            *(
                guarded(
                    run.records, run.invoke(spec, call, siblings), call, spec.get("template"), siblings.parent
                )
                for spec, call in calls
            )
        )
    )
