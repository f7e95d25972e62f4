"""What DAG tasks and steps share: fan-out, child naming, ``continueOn`` and exit hooks.

Fan-out (argo-workflows ``workflow/controller/operator.go`` ``processItem``, ``expandSequence``, ``dag.go``
``expandTask``, ``steps.go`` ``expandStep``)
    A task or step with ``withItems``, ``withParam`` (a JSON list, after substitution) or ``withSequence``
    runs its template once per item, all at once (bounded by the template's ``parallelism`` and the pod
    slots). ``withSequence`` counts from ``start`` (default 0) to ``end`` inclusive, downwards if ``end``
    is smaller, or gives ``count`` numbers from ``start`` (``count: 0``: none); its values may be tags,
    are read with Go's ``strconv.Atoi``, and every item is the string ``fmt.Sprintf(format, i)``
    (``format`` default ``%d``, e.g. ``testuser%02X``). Child ``i`` is named ``<task>(<i>:<item>)``
    (parentheses dropped from the item); an object item renders as ``(<i>:k1:v1,k2:v2)`` with keys
    sorted, and ``{{item}}``/``{{item.<k>}}`` resolve in the child's arguments and ``when``. In a DAG the
    children hang under a TaskGroup node, which is Failed/Error if any child is (the last such child's
    phase); in steps they hang under the step group directly. An empty list gives a Skipped node
    ("Skipped, empty params"); a ``withParam`` that is not a JSON list, or a bad sequence, errors the
    task.

Exit hooks (``exit_handler.go`` ``runOnExitNode``; ``dag.go`` ``executeDAGTask``; ``steps.go``
``executeStepGroup``)
    A task's or step's ``onExit: <template>`` (or ``hooks.exit``, with its own ``arguments`` and an
    optional ``expression``) runs once the node *completed* (Succeeded, Failed or Error; not Skipped or
    Omitted), as node ``<node>.onExit`` under it, like an exit handler (past the workflow deadline too).
    Its arguments: ``hooks.exit.arguments`` resolved with the node's own ``<tasks|steps>.<name>.status``
    and ``.outputs.parameters.*`` in scope, else the workflow's ``spec.arguments`` (Argo's
    ``GetExitHook(spec.arguments)``; an ``onExit`` always gets those). Each item of a fan-out gets its
    own, and in a DAG the TaskGroup too, once all items are done. The hook's outcome changes nothing of
    the node, its DAG or step group, or the workflow; but the node's dependents (the next step group)
    only start after it (``CheckAllHooksFullfilled``). As in Argo the hook is a child of the node (so a
    TaskGroup's ``AnySucceeded``/``AllFailed`` count the group's own hook, while its aggregated outputs
    count only the ``<task>(i:...)`` items). Arguments that cannot be resolved, or a failing
    ``expression``, give an errored hook node.

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
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from edgefed.workflows.phases import Phase

from .errors import NodeError, UnresolvedVariableError
from .expr import ExprError, evaluate_bool
from .gofmt import atoi, sprintf_int
from .nodes import Node, NodeRecord, NodeType
from .params import substitute, substitute_obj
from .pods import WorkflowDeadline
from .scope import WorkflowScope, item_vars, to_str, truthy

__all__ = [
    "FAIL_FAST_MESSAGE",
    "Call",
    "Expansion",
    "Scheduler",
    "Siblings",
    "continues",
    "exit_hook",
    "expand",
    "fail_fast_gate",
    "group_phase",
    "guarded",
    "invoke_all",
    "limiter",
    "loop_problems",
    "run_exit_hook",
    "sequence_items",
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
    #: ``tasks`` (a DAG's) or ``steps``: how their exit hooks' arguments name them.
    kind: str = "tasks"
    #: The template's ``failFast`` (see :func:`fail_fast_gate`): true once nothing new may start.
    fail_fast: Callable[[], bool] | None = None


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


_LOOPS = ("withItems", "withParam", "withSequence")


def loop_problems(spec: Mapping[str, Any], where: str) -> list[str]:
    """What Argo's ``validate.go`` (``addItemsToScope``) refuses in a task's or step's loop fields."""
    loops = [k for k in _LOOPS if k in spec]
    problems = []
    if len(loops) > 1:
        problems.append(f"{where}: only one of withItems, withParam, withSequence can be specified")
    if "withItems" in spec and not isinstance(spec["withItems"], list):
        problems.append(f"{where}.withItems: expected a list")
    seq = spec.get("withSequence")
    if "withSequence" in spec and not isinstance(seq, dict):
        problems.append(f"{where}.withSequence: expected a mapping")
    elif isinstance(seq, dict) and "count" in seq and "end" in seq:
        problems.append(f"{where}.withSequence: only one of count or end can be defined in withSequence")
    return problems


def sequence_items(seq: Mapping[str, Any]) -> list[str]:
    """Argo's ``expandSequence`` of an already substituted ``withSequence``; NodeError if it is bad."""

    def number(key: str) -> int:
        try:
            return atoi(to_str(seq[key]))
        except ValueError as exc:
            raise NodeError(f"withSequence.{key}: {exc}") from None

    start = number("start") if seq.get("start") is not None else 0
    if seq.get("end") is not None:
        end = number("end")
    elif seq.get("count") is not None:
        count = number("count")
        if count == 0:
            return []
        end = start + count - 1
    else:
        raise NodeError("neither end nor count was specified in withSequence")
    fmt = to_str(seq.get("format") or "") or "%d"
    step = 1 if start <= end else -1
    items = []
    for i in range(start, end + step, step):
        text = sprintf_int(fmt, i)
        try:  # wfv1.ParseItem(`"` + text + `"`): the formatted text is read as a JSON string
            items.append(json.loads(f'"{text}"'))
        except ValueError as exc:
            raise NodeError(
                f"withSequence.format: {fmt!r} gives {text!r}, not a JSON string: {exc}"
            ) from None
    return items


def _items(spec: Mapping[str, Any], scope: Mapping[str, str], where: str) -> list[Any] | None:
    """The items of withItems/withParam/withSequence (None if the task/step does not fan out)."""
    if "withSequence" in spec:
        seq = substitute_obj(spec["withSequence"] or {}, scope, where=f"{where}.withSequence")
        return sequence_items(seq)
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


#: argo-workflows ``operator.go`` ``checkParallelism``.
FAIL_FAST_MESSAGE = "template has failed or errored children and failFast enabled"
_COUNTED = (NodeType.POD, NodeType.STEPS, NodeType.DAG)


def fail_fast_gate(records: NodeRecord, node: Node, tmpl: Mapping[str, Any]) -> Callable[[], bool] | None:
    """A dag/steps template's ``failFast: true`` (default false) as a check "may nothing new start?".

    Argo's ``checkParallelism`` refuses to create a node under a failFast template once one of the nodes
    whose boundary it is (``getUnsuccessfulChildren``: Pods - Retry attempts included -, nested Steps and
    DAG nodes) Failed or errored. Those are the template node's descendants down to, not into, nested
    dag/steps nodes.
    """
    if not truthy(tmpl.get("failFast"), False):
        return None

    def boundary(parent: Node) -> Iterator[Node]:
        for child in records.children(parent):
            yield child
            if child.type not in (NodeType.DAG, NodeType.STEPS):
                yield from boundary(child)

    def tripped() -> bool:
        return any(c.type in _COUNTED and Phase.is_failure(c.phase) for c in boundary(node))

    return tripped


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

    def invoke(self, spec: dict[str, Any], call: Call, siblings: Siblings) -> Awaitable[Node | None]:
        """Resolve one call's arguments, check ``when`` and run its template under ``siblings.parent``
        (None: the template's failFast kept it from starting)."""
        ...

    def execute_template(
        self,
        *,
        name: str,
        display: str,
        template_name: str,
        arguments: dict[str, str],
        parent: Node | None,
        exit_handler: bool = False,
    ) -> Awaitable[Node]:
        """A node for ``template_name`` run to a fulfilled phase."""
        ...


def exit_hook(spec: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """(field, hook) of a task's/step's exit hook: ``onExit`` wins over ``hooks.exit`` (``GetExitHook``)."""
    if spec.get("onExit"):
        return "onExit", {"template": spec["onExit"]}
    hook = (spec.get("hooks") or {}).get("exit")
    if isinstance(hook, Mapping) and hook.get("template"):
        return "hooks.exit", hook
    return None


async def run_exit_hook(
    run: Scheduler, spec: Mapping[str, Any], node: Node, scope: Mapping[str, str], siblings: Siblings
) -> None:
    """Run the exit hook of ``spec`` for its completed ``node`` (see the module docstring)."""
    found = exit_hook(spec)
    if found is None or not node.completed:
        return
    field, hook = found
    prefix = f"{siblings.kind}.{spec['name']}"
    local = {**scope, f"{prefix}.status": str(node.phase)}
    for pname, value in ((node.outputs or {}).get("parameters") or {}).items():
        local[f"{prefix}.outputs.parameters.{pname}"] = value
    name, display = f"{node.name}.onExit", f"{node.display_name}.onExit"
    try:
        if hook.get("expression") and not evaluate_bool(to_str(hook["expression"]), local):
            return
        given = (hook.get("arguments") or {}).get("parameters") or []
        arguments = dict(run.workflow.arguments)
        if given:
            arguments = {
                a["name"]: substitute(
                    to_str(a.get("value", "")), local, where=f"{field}.arguments.parameters.{a['name']}"
                )
                for a in given
            }
    except (NodeError, UnresolvedVariableError, ExprError) as exc:
        run.records.skip(name, display, hook.get("template"), node, Phase.ERROR, f"{field}: {exc}")
        return
    await run.execute_template(
        name=name,
        display=display,
        template_name=to_str(hook["template"]),
        arguments=arguments,
        parent=node,
        exit_handler=True,
    )


async def guarded(
    records: NodeRecord, work: Awaitable[Node | None], call: Call, template: str | None, parent: Node
) -> Node | None:
    """``work``'s node; an engine bug becomes an errored node instead of breaking the siblings."""
    try:
        return await work
    except Exception as exc:
        traceback.print_exc()
        return records.skip(call.name, call.display, template, parent, Phase.ERROR, f"engine error: {exc}")


async def invoke_all(
    run: Scheduler, calls: Sequence[tuple[dict[str, Any], Call]], siblings: Siblings
) -> list[Node | None]:
    """Run every ``(spec, call)`` at once; the nodes in the order of ``calls`` (None: never started)."""
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
