"""Steps templates: step groups run one after another, the steps of a group all at once.

argo-workflows ``workflow/controller/steps.go`` (``executeSteps``, ``executeStepGroup``): group ``i`` is a
StepGroup node ``<steps node>[<i>]``; its steps (and the items of a fanned-out step, see :mod:`.fanout`)
run concurrently, bounded by the template's ``parallelism``; ``when`` false gives Skipped. A group
fails when one of its children Failed or errored and the step's ``continueOn`` does not allow it; then
the steps node fails and later groups never run. After each group, ``steps.<name>.*`` (a fanned-out
step's outputs aggregated over its children) resolve in the next groups and in the template's outputs.
Past the workflow deadline no further group starts ("Step exceeded its deadline"). With the template's
``failFast: true`` (``operator.go`` ``checkParallelism``), once a child Failed or errored no further step
or item starts (``continueOn`` notwithstanding): the group and the steps node fail with "template has
failed or errored children and failFast enabled" (see :func:`~.fanout.fail_fast_gate`). A step's exit
hook (``onExit``/``hooks.exit``) runs before its group is done (see :mod:`.fanout`).
"""

from __future__ import annotations

from typing import Any

from edgefed.workflows.phases import Phase

from .errors import NodeError, UnresolvedVariableError
from .fanout import (
    FAIL_FAST_MESSAGE,
    Call,
    Scheduler,
    Siblings,
    continues,
    expand,
    fail_fast_gate,
    invoke_all,
    limiter,
)
from .nodes import Node, NodeType
from .pods import WORKFLOW_DEADLINE_MESSAGE
from .scope import aggregate_scope, declared_outputs, node_scope

__all__ = ["run_steps"]


async def run_steps(
    run: Scheduler, node: Node, tmpl: dict[str, Any], scope: dict[str, str], exit_handler: bool
) -> None:
    """Run a steps template's groups under ``node`` and set its phase."""
    records = run.records
    bound = limiter(tmpl, scope)
    gate = fail_fast_gate(records, node, tmpl)
    local = dict(scope)
    records.set_phase(node, Phase.RUNNING)
    for gi, group in enumerate(tmpl["steps"]):
        if run.deadline.stops(exit_handler):
            records.set_phase(node, Phase.FAILED, WORKFLOW_DEADLINE_MESSAGE)
            return
        sg = records.new(f"{node.name}[{gi}]", f"[{gi}]", NodeType.STEP_GROUP, node.template_name, node)
        records.set_phase(sg, Phase.RUNNING)
        local.update(run.workflow.workflow_outputs())
        runs: list[tuple[dict[str, Any], Call]] = []
        finished: list[tuple[dict[str, Any], Node]] = []  # (step, node) for every child of the group
        expanded: dict[str, list[Node]] = {}
        direct: dict[str, Node] = {}
        for step in group:
            sname = step["name"]
            base = f"{sg.name}.{sname}"
            try:
                expansion = expand(step, local, base, sname, f"steps.{sname}")
            except (NodeError, UnresolvedVariableError) as exc:
                direct[sname] = records.skip(base, sname, step.get("template"), sg, Phase.ERROR, str(exc))
                finished.append((step, direct[sname]))
                continue
            if expansion.fanned_out and not expansion.calls:
                direct[sname] = records.skip(
                    base, sname, step.get("template"), sg, Phase.SKIPPED, "Skipped, empty params"
                )
                finished.append((step, direct[sname]))
                continue
            if expansion.fanned_out:
                expanded[sname] = []
            runs.extend((step, c) for c in expansion.calls)
        siblings = Siblings(sg, bound, exit_handler, kind="steps", fail_fast=gate)
        children = await invoke_all(run, runs, siblings)
        for (step, _call), child in zip(runs, children, strict=True):
            if child is None:  # the template's failFast kept it from starting
                continue
            finished.append((step, child))
            if step["name"] in expanded:
                expanded[step["name"]].append(child)
            else:
                direct[step["name"]] = child
        ordered: list[str] = []  # declaration/item order for the tree
        for step in group:
            sname = step["name"]
            if sname in expanded:
                ordered.extend(k.id for k in expanded[sname])
            elif sname in direct:
                ordered.append(direct[sname].id)
        sg.children = ordered
        failed = next(
            (c for s, c in finished if Phase.is_failure(c.phase) and not continues(s, c.phase)), None
        )
        for sname, child in direct.items():
            local.update(node_scope(f"steps.{sname}", child))
        for step in group:
            if step["name"] in expanded:
                declared = declared_outputs(run.templates.get(step.get("template") or ""))
                local.update(aggregate_scope(f"steps.{step['name']}", expanded[step["name"]], declared))
        if gate is not None and gate():  # checkParallelism: the leaf step group and the steps node fail
            records.set_phase(sg, Phase.FAILED, FAIL_FAST_MESSAGE)
            records.set_phase(node, Phase.FAILED, FAIL_FAST_MESSAGE)
            return
        if failed is not None:
            msg = f"child '{failed.name}' {'failed' if failed.phase == Phase.FAILED else 'errored'}"
            records.set_phase(sg, Phase.FAILED, msg)
            records.set_phase(node, Phase.FAILED, msg)
            return
        records.set_phase(sg, Phase.SUCCEEDED)
    local.update(run.workflow.snapshot())
    run.workflow.boundary_outputs(node, tmpl, local)
    records.set_phase(node, Phase.SUCCEEDED)
