"""DAG and steps templates (``validate.go`` ``validateDAG``/``validateSteps``, ``common/ancestry.go``).

``depends`` is parsed by the engine's parser (:func:`edgefed.workflows.embedded.engine.expressions.
parse_depends`), the one that decides what the embedded engine runs, so the lint and the engine accept
the same expressions: those Argo accepts. Cycles are found with :mod:`graphlib`, as the engine does.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable
from typing import Any

from edgefed.workflows.embedded.engine.expressions import DependsError, parse_depends

from ..problems import format_path
from .calls import call_arguments, hooks, resolve
from .context import UNKNOWN, Lint, Node, Path, Scope, Template, as_dict, as_list, as_str, hint
from .names import field_name_problem, names
from .variables import PARAM_REF, item_scope, node_scope, refs

#: Results that only a task fanning out (withItems/withParam/withSequence) has.
_ITEM_RESULTS = frozenset({"AnySucceeded", "AllFailed"})
_LOOPS = ("withItems", "withParam", "withSequence")
#: Checks an inline template where a task or step defines it (the template rules, passed in).
CheckInline = Callable[[Template], None]


def dag(lint: Lint, t: Template, scope: Scope, *, check_inline: CheckInline) -> None:
    body = as_dict(t.body.get("dag"))
    dpath = (*t.path, "dag")
    tasks = [task if isinstance(task, dict) else {} for task in as_list(body.get("tasks"))]
    if not tasks:
        lint.error((*dpath, "tasks"), f"DAG template {t.name!r} must have at least one task")
        return
    names(lint, tasks, (*dpath, "tasks"), param=False)
    using_depends = any(task.get("depends") for task in tasks)
    by_name = {as_str(task.get("name")): i for i, task in enumerate(tasks) if task.get("name")}
    nodes: dict[str, Node] = {}
    deps: dict[str, dict[str, str]] = {}  # task -> {dependency: "items"|"task"}
    fields: dict[str, str] = {}  # task -> the field naming its dependencies
    unsure: set[str] = set()  # tasks whose dependencies are unknown (unparsable, or on a cycle)
    for i, task in enumerate(tasks):
        tpath = (*dpath, "tasks", i)
        name = as_str(task.get("name"))
        _task_fields(lint, t, task, tpath, using_depends=using_depends)
        found = _dependencies(lint, task, tpath, by_name)
        if found is None:
            unsure.add(name)
            found = {}
        if name:
            deps[name] = found
            fields[name] = "depends" if task.get("depends") else "dependencies"
        nodes[name] = _node(lint, task, tpath, name=name, what=f"task {name!r}", check_inline=check_inline)
    for name, found in deps.items():
        for dep, how in found.items():
            if how == "items" and dep in nodes and not nodes[dep].fans_out:
                lint.error(
                    (*dpath, "tasks", by_name[name], "depends"),
                    f"depends uses '{dep}.AnySucceeded'/'{dep}.AllFailed', but task {dep!r} does not fan out (withItems/withParam/withSequence)",
                )
    ancestors = _ancestors(lint, deps, fields, by_name, dpath, unsure)

    target_names = body.get("target")
    if isinstance(target_names, str):
        for name in target_names.split():
            if not PARAM_REF.fullmatch(name) and name not in by_name:
                lint.error((*dpath, "target"), f"target {name!r} is not a task of this DAG")

    # variables: each task sees its ancestors; the rest of the template sees every task
    for i, task in enumerate(tasks):
        name = as_str(task.get("name"))
        visible = None if name in unsure else ancestors.get(name, set())
        _node_refs(lint, task, (*dpath, "tasks", i), scope, "tasks", nodes, visible)
    rest = {k: v for k, v in t.body.items() if k != "dag"}
    rest["dag"] = {k: v for k, v in body.items() if k != "tasks"}
    refs(lint, rest, t.path, node_scope(scope, "tasks", nodes, visible=None))


def steps(lint: Lint, t: Template, scope: Scope, *, check_inline: CheckInline) -> None:
    spath = (*t.path, "steps")
    nodes: dict[str, Node] = {}
    seen: dict[str, Path] = {}
    earlier: set[str] = set()
    located: list[tuple[dict[str, Any], Path, set[str]]] = []
    for g, group in enumerate(as_list(t.body.get("steps"))):
        this_group: set[str] = set()
        for j, step in enumerate(as_list(group)):
            step = as_dict(step)
            path = (*spath, g, j)
            name = step.get("name")
            if not isinstance(name, str) or not name:
                lint.error((*path, "name"), "a step needs a name")
                continue
            problem = field_name_problem(name)
            if problem:
                lint.error((*path, "name"), f"step name {name!r} {problem}")
            if name in seen:
                lint.error(
                    (*path, "name"),
                    f"step name {name!r} is not unique in template {t.name!r} (also {format_path(seen[name])})",
                )
            seen.setdefault(name, path)
            nodes[name] = _node(lint, step, path, name=name, what=f"step {name!r}", check_inline=check_inline)
            located.append((step, path, set(earlier)))
            this_group.add(name)
        earlier |= this_group
    for step, path, visible in located:
        _node_refs(lint, step, path, scope, "steps", nodes, visible)
    rest = {k: v for k, v in t.body.items() if k != "steps"}
    refs(lint, rest, t.path, node_scope(scope, "steps", nodes, visible=None))


def _task_fields(lint: Lint, t: Template, task: dict[str, Any], tpath: Path, *, using_depends: bool) -> None:
    """validate.go validateDAG: a DAG using depends uses neither dependencies nor continueOn, and then
    (or with dependencies) no task name starts with a digit."""
    name = as_str(task.get("name"))
    if task.get("dependencies") and using_depends:
        lint.error(
            (*tpath, "dependencies"),
            f"DAG template {t.name!r} uses 'depends', so no task may use 'dependencies'",
        )
    if task.get("continueOn") is not None and using_depends:
        lint.error(
            (*tpath, "continueOn"),
            f"DAG template {t.name!r} uses 'depends', which cannot be combined with 'continueOn': "
            "use 'dep.Failed' / 'dep.Errored' in depends instead",
        )
    if name and name[0].isdigit() and (using_depends or task.get("dependencies")):
        lint.error(
            (*tpath, "name"),
            f"task name {name!r} cannot begin with a digit when using 'depends' or 'dependencies'",
        )


def _dependencies(
    lint: Lint, task: dict[str, Any], tpath: Path, by_name: dict[str, int]
) -> dict[str, str] | None:
    """The tasks this one depends on -> "items" (asks .AnySucceeded/.AllFailed) or "task"; None: unknown."""
    found: dict[str, str] = {}
    depends = task.get("depends")
    if isinstance(depends, str) and depends.strip():
        try:
            parsed = parse_depends(depends)
        except DependsError as err:
            lint.error((*tpath, "depends"), f"cannot parse depends {depends!r}: {err.detail}")
            return None
        for dep in parsed.tasks:
            if dep not in by_name:
                lint.error(
                    (*tpath, "depends"),
                    f"depends names task {dep!r}, which is not in this DAG{hint(dep, by_name)}",
                )
                continue
            results = {result for result, _negated in parsed.references(dep)}
            found[dep] = "items" if results & _ITEM_RESULTS else "task"
    for j, dep in enumerate(as_list(task.get("dependencies"))):
        if not isinstance(dep, str) or dep not in by_name:
            lint.error(
                (*tpath, "dependencies", j),
                f"dependency {dep!r} is not a task in this DAG{hint(str(dep), by_name)}",
            )
        else:
            found.setdefault(dep, "task")
    return found


def _ancestors(
    lint: Lint,
    deps: dict[str, dict[str, str]],
    fields: dict[str, str],
    by_name: dict[str, int],
    dpath: Path,
    unsure: set[str],
) -> dict[str, set[str]]:
    """Each task's transitive dependencies (common.GetTaskAncestry), reporting cycles (verifyNoCycles).

    A cycle graphlib finds is reported once, starting at its task listed first, and its first edge is
    dropped so the search goes on; the tasks on it join ``unsure``.
    """
    graph = {node: {dep for dep in found if dep in deps} for node, found in deps.items()}
    while True:
        try:
            order = tuple(graphlib.TopologicalSorter(graph).static_order())
            break
        except graphlib.CycleError as exc:
            # each node is a dependency of the next; reversed, each depends on the next
            ring = list(reversed(exc.args[1]))[:-1]
            first = min(range(len(ring)), key=lambda k: by_name[ring[k]])
            ring = ring[first:] + ring[:first]
            node = ring[0]
            lint.error(
                (*dpath, "tasks", by_name[node], fields[node]),
                f"dependency cycle: {' -> '.join([*ring, node])}",
            )
            graph[node].discard(ring[1] if len(ring) > 1 else node)
            unsure.update(ring)
    ancestors: dict[str, set[str]] = {}
    for node in order:  # dependencies come first
        ancestors[node] = set(graph.get(node, ())).union(*(ancestors[dep] for dep in graph.get(node, ())))
    return ancestors


def _node(
    lint: Lint, holder: dict[str, Any], path: Path, *, name: str, what: str, check_inline: CheckInline
) -> Node:
    """What every task and step is checked for: at most one loop, the template it calls and the
    arguments it passes, its hooks and onExit."""
    loops = [k for k in _LOOPS if holder.get(k) not in (None, "", [])]
    if len(loops) > 1:
        lint.error(
            path, f"only one of withItems, withParam, withSequence can be given (found {', '.join(loops)})"
        )
    target = resolve(lint, holder, path, what=what)
    if target is not None and target is not UNKNOWN and target.origin == "inline":
        check_inline(target)
    call_arguments(lint, as_dict(holder.get("arguments")), (*path, "arguments"), target)
    hooks(lint, as_dict(holder.get("hooks")), (*path, "hooks"))
    if isinstance(holder.get("onExit"), str) and holder["onExit"]:
        resolve(lint, {"template": holder["onExit"]}, path, what=f"onExit of {what}")
    return Node(name, target, bool(loops), daemon=bool(target and target.body.get("daemon")))


def _node_refs(
    lint: Lint,
    holder: dict[str, Any],
    path: Path,
    scope: Scope,
    prefix: str,
    nodes: dict[str, Node],
    visible: set[str] | None,
) -> None:
    """The variables of one task or step: it sees ``visible`` (None: all) and its items; its hooks also
    see the node itself."""
    items = item_scope(lint, holder, path)
    body = {k: v for k, v in holder.items() if k not in ("inline", "hooks")}
    refs(lint, body, path, node_scope(scope, prefix, nodes, visible=visible, items=items))
    if holder.get("hooks"):
        seen = None if visible is None else visible | {as_str(holder.get("name"))}
        refs(
            lint,
            holder["hooks"],
            (*path, "hooks"),
            node_scope(scope, prefix, nodes, visible=seen, items=items),
        )


__all__ = ["CheckInline", "dag", "steps"]
