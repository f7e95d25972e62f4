"""DAG templates: tasks scheduled in dependency order, ``depends``, failFast and the DAG's phase.

Scheduling
    ``graphlib.TopologicalSorter`` over the tasks' dependencies: a task is ready once every dependency is
    done, whatever its phase. Its ``depends`` (legacy ``dependencies`` converted as Argo does, see
    :func:`~.document.dependency_logic`) is then evaluated on the dependencies' results (argo-workflows
    ``workflow/controller/dag.go`` ``evaluateDependsLogic``): false gives an Omitted node (node type
    Skipped, "omitted: depends condition not met"), true starts the task. A started task's ``when`` false
    gives Skipped. Ready tasks start in declaration order; the template's ``parallelism`` bounds how many
    of its children run at once. Each task is a coroutine, so a DAG holds no thread while it waits.

``dag.failFast`` (default true) and the template's ``failFast`` (default false)
    Argo's field documentation says ``dag.failFast`` stops scheduling after a failure, but its code
    (v4.1.2 ``dag.go``) only reads it in ``assessDAGPhase``, which returns Running while any node of the
    DAG runs, and ``executeDAG`` creates every ready task before assessing: a task whose dependencies are
    done starts whatever failed elsewhere, and the DAG's phase comes out the same either way. So here too
    ``dag.failFast`` changes nothing (it is read, and must be a boolean). What does stop new tasks is the
    *template's* ``failFast: true`` (``operator.go`` ``checkParallelism``): once one of the DAG's own
    children (a Pod or Retry attempt, a nested DAG or Steps node, the items of a fan-out) Failed or
    errored, no further task or item starts - not even one whose ``depends`` handles the failure - and
    when the running ones are done the DAG fails with "template has failed or errored children and
    failFast enabled" (see :func:`~.fanout.fail_fast_gate`).

DAG phase (argo-workflows ``workflow/controller/dag.go``, ``assessDAGPhase``, checked at commit
``32cbee030e5bfb4f3c0e819312c7ae65a501860e``)
    The DAG's result is decided by its *target* tasks: the leaves (tasks no other task depends on;
    ``dag.target`` is rejected up front). Each target gets a *branch phase*: its own phase if it completed
    (Succeeded/Failed/Error); if it was Skipped or Omitted it inherits the phase flowing in from its
    dependencies (through each child of a fanned-out TaskGroup), preferring Failed/Error over Succeeded.
    The DAG fails with the first failed/errored target branch unless that target's ``continueOn`` allows
    the phase. So a failure that a dependent handled (the dependent ran because its ``depends`` asked for
    ``.Failed``/``.AllFailed``/``.AnySucceeded``..., and completed) does not fail the DAG: ``train`` with one
    failing item, ``aggregate`` with ``depends: train.AnySucceeded || train.AllFailed`` succeeding and
    ``evaluate`` after it gives a Succeeded DAG; if ``aggregate`` fails, ``evaluate`` is Omitted, inherits
    Failed, and the DAG fails. A nested DAG used as a task contributes its own phase (Argo would flow
    through its inner leaves; the result is the same unless the nested DAG itself tolerated failures).
    After the workflow deadline, a DAG that did not start all its tasks fails with "Step exceeded its
    deadline".
"""

from __future__ import annotations

import asyncio
import graphlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from edgefed.workflows.phases import Phase

from .document import dependency_logic
from .errors import NodeError, UnresolvedVariableError
from .expressions import DependsExpr, TaskResults, parse_depends
from .fanout import (
    FAIL_FAST_MESSAGE,
    Call,
    Scheduler,
    Siblings,
    continues,
    expand,
    fail_fast_gate,
    group_phase,
    guarded,
    invoke_all,
    limiter,
    run_exit_hook,
)
from .nodes import Node, NodeRecord, NodeType
from .params import substitute
from .pods import WORKFLOW_DEADLINE_MESSAGE
from .scope import outputs_scope, truthy

__all__ = ["run_dag"]

_OMITTED_MESSAGE = "omitted: depends condition not met"


@dataclass(frozen=True)
class _Graph:
    """A DAG template's tasks with their parsed ``depends``."""

    tasks: dict[str, dict[str, Any]]  # by name, in declaration order
    logic: dict[str, DependsExpr | None]
    deps: dict[str, list[str]]

    @classmethod
    def of(cls, tasks: list[dict[str, Any]]) -> _Graph:
        by_name = {t["name"]: t for t in tasks}
        logic: dict[str, DependsExpr | None] = {}
        for t in tasks:
            text = dependency_logic(t, by_name)
            logic[t["name"]] = parse_depends(text) if text else None
        deps = {n: (e.tasks if e else []) for n, e in logic.items()}
        return cls(by_name, logic, deps)


async def run_dag(
    run: Scheduler, node: Node, tmpl: dict[str, Any], scope: dict[str, str], exit_handler: bool
) -> None:
    """Run a DAG template's tasks under ``node`` and set its phase (see the module docstring)."""
    await _DagRun(run, node, tmpl, scope, exit_handler).execute()


class _DagRun:
    """The state of one DAG node while its tasks run."""

    def __init__(
        self, run: Scheduler, node: Node, tmpl: dict[str, Any], scope: dict[str, str], exit_handler: bool
    ) -> None:
        self.run, self.records, self.node, self.tmpl, self.scope = run, run.records, node, tmpl, scope
        self.exit_handler = exit_handler
        dag = tmpl["dag"]
        self.graph = _Graph.of(dag["tasks"])
        fail_fast = dag.get("failFast")
        if isinstance(fail_fast, str):
            fail_fast = substitute(fail_fast, scope, where="dag.failFast")
        truthy(fail_fast, True)  # read as Argo reads it, and as there without effect (module docstring)
        self.gate = fail_fast_gate(run.records, node, tmpl)
        self.siblings = Siblings(node, limiter(tmpl, scope), exit_handler, fail_fast=self.gate)
        self.order = {name: i for i, name in enumerate(self.graph.tasks)}
        self.sorter = graphlib.TopologicalSorter(self.graph.deps)
        self.task_nodes: dict[str, Node] = {}  # finished (or omitted) tasks
        self.started: set[str] = set()
        self.running: dict[asyncio.Task[Node | None], str] = {}

    async def execute(self) -> None:
        self.records.set_phase(self.node, Phase.RUNNING)
        self.sorter.prepare()
        while True:
            self._start_ready()
            if not self.running:
                break
            done, _ = await asyncio.wait(self.running, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                self._finished(self.running.pop(finished), finished.result())
        self._finish()

    def _finished(self, tname: str, result: Node | None) -> None:
        if result is None:  # the template's failFast kept it from starting: nor do its dependents
            self.started.discard(tname)
            return
        self.task_nodes[tname] = result
        self.sorter.done(tname)

    def _start_ready(self) -> None:
        """Omit or start every ready task, in declaration order, until none is ready."""
        while ready := sorted(self.sorter.get_ready(), key=self.order.__getitem__):
            for tname in ready:
                task, name = self.graph.tasks[tname], f"{self.node.name}.{tname}"
                if not self._depends_met(tname):
                    omitted = self.records.skip(
                        name, tname, task.get("template"), self.node, Phase.OMITTED, _OMITTED_MESSAGE
                    )
                    self._finished(tname, omitted)
                    continue
                if (self.gate and self.gate()) or self.run.deadline.stops(self.exit_handler):
                    continue  # never started: nor are its dependents
                self.started.add(tname)
                call = Call(name, tname, self._scope(self.run.workflow.workflow_outputs()))
                work = _run_task(self.run, task, call, self.siblings)
                guard = guarded(self.records, work, call, task.get("template"), self.node)
                self.running[asyncio.ensure_future(guard)] = tname

    def _depends_met(self, tname: str) -> bool:
        expr = self.graph.logic[tname]
        if expr is None:
            return True
        return expr.evaluate({d: _results(self.records, self.task_nodes[d]) for d in self.graph.deps[tname]})

    def _scope(self, workflow: dict[str, str]) -> dict[str, str]:
        """The DAG's scope with ``tasks.*`` of the finished tasks and ``workflow`` on top."""
        scope = dict(self.scope)
        scope.update(outputs_scope(self.task_nodes, "tasks", self.records, self.run.templates))
        scope.update(workflow)
        return scope

    def _finish(self) -> None:
        graph, node = self.graph, self.node
        # declaration order, not the order the tasks finished in
        node.children = [self.task_nodes[t].id for t in graph.tasks if t in self.task_nodes]
        phase, message = _assess(self.records, node, graph, self.task_nodes)
        if self.gate and self.gate():
            phase, message = Phase.FAILED, FAIL_FAST_MESSAGE
        if self.run.deadline.stops(self.exit_handler) and len(self.started) < len(graph.tasks):
            phase, message = Phase.FAILED, WORKFLOW_DEADLINE_MESSAGE
        if phase == Phase.SUCCEEDED:
            self.run.workflow.boundary_outputs(node, self.tmpl, self._scope(self.run.workflow.snapshot()))
        self.records.set_phase(node, phase, message)


async def _run_task(run: Scheduler, task: dict[str, Any], call: Call, siblings: Siblings) -> Node | None:
    """One task: its template, or a TaskGroup over its items (None: failFast kept it from starting)."""
    tname, template, records = task["name"], task.get("template"), run.records
    try:
        expansion = expand(task, call.scope, call.name, tname, f"tasks.{tname}")
    except (NodeError, UnresolvedVariableError) as exc:
        errored = records.skip(call.name, tname, template, siblings.parent, Phase.ERROR, str(exc))
        await run_exit_hook(run, task, errored, call.scope, siblings)
        return errored
    if not expansion.fanned_out:
        return await run.invoke(task, expansion.calls[0], siblings)
    if not expansion.calls:
        return records.skip(
            call.name, tname, template, siblings.parent, Phase.SKIPPED, "Skipped, empty params"
        )
    group = records.new(call.name, tname, NodeType.TASK_GROUP, template, siblings.parent)
    records.set_phase(group, Phase.RUNNING)
    started = await invoke_all(run, [(task, c) for c in expansion.calls], replace(siblings, parent=group))
    children = [c for c in started if c is not None]  # the items failFast did not keep from starting
    group.children = [c.id for c in children]  # item order, not the order the children were created in
    if len(children) < len(started):
        records.set_phase(group, Phase.FAILED, FAIL_FAST_MESSAGE)
    else:
        records.set_phase(group, *group_phase(children))
    # executeDAGTask runs the task's exit hook for the fulfilled TaskGroup too, after the items' own
    await run_exit_hook(run, task, group, call.scope, siblings)
    return group


def _results(records: NodeRecord, node: Node) -> TaskResults:
    """What a ``depends`` expression sees of a finished task."""
    any_succeeded = all_failed = False
    if node.type == NodeType.TASK_GROUP:
        children = records.children(node)
        any_succeeded = any(c.phase == Phase.SUCCEEDED for c in children)
        all_failed = bool(children) and all(c.phase == Phase.FAILED for c in children)
    return TaskResults(
        succeeded=node.phase == Phase.SUCCEEDED,
        failed=node.phase == Phase.FAILED,
        errored=node.phase == Phase.ERROR,
        skipped=node.phase == Phase.SKIPPED,
        omitted=node.phase == Phase.OMITTED,
        daemoned=False,
        any_succeeded=any_succeeded,
        all_failed=all_failed,
    )


def _assess(
    records: NodeRecord, node: Node, graph: _Graph, task_nodes: Mapping[str, Node]
) -> tuple[Phase, str]:
    """Argo's ``assessDAGPhase`` (see the module docstring).

    failFast only changes *when* Argo stops assessing; the engine assesses once, after every started
    node finished, so every target is considered and the first failure is reported.
    """
    depended = {d for ds in graph.deps.values() for d in ds}
    targets = sorted(n for n in graph.tasks if n not in depended)
    memo: dict[str, tuple[Phase, str] | None] = {}

    def incoming(dep: str) -> list[tuple[Phase, str]]:
        dn = task_nodes.get(dep)
        if dn is None:
            return []
        if dn.type == NodeType.TASK_GROUP:
            kids = records.children(dn)
            if kids:
                return [(c.phase, c.name) if c.completed else (dn.phase, dn.name) for c in kids]
        if dn.completed:
            return [(dn.phase, dn.name)]
        b = branch(dep)
        return [b] if b else []

    def branch(name: str) -> tuple[Phase, str] | None:
        if name in memo:
            return memo[name]
        tn = task_nodes.get(name)
        if tn is None:
            result = None
        elif tn.completed:
            result = (tn.phase, tn.name)
        else:
            flows = [f for d in graph.deps[name] for f in incoming(d)]
            bad = [f for f in flows if Phase.is_failure(f[0])]
            result = bad[0] if bad else (Phase.SUCCEEDED, tn.name)
        memo[name] = result
        return result

    phase, message = Phase.SUCCEEDED, ""
    for tname in targets:
        b = branch(tname)
        if b is None:
            phase = Phase.FAILED
            message = message or f"task '{node.name}.{tname}' was not run after an earlier failure"
            continue
        bphase, origin = b
        if Phase.is_failure(bphase):
            if continues(graph.tasks[tname], bphase):
                continue
            if phase == Phase.SUCCEEDED or not message:
                phase = bphase
                message = f"task '{origin}' {'failed' if bphase == Phase.FAILED else 'errored'}"
    return phase, message
