"""Loading an Argo Workflow document and checking, up front, that the engine can execute all of it.

The check walks the whitelist of :mod:`.rules` (every field executed, ignored, rejected or unknown).

Then semantic checks: the entrypoint and every referenced template exist, names are unique, ``depends``
parses and names existing tasks, no dependency cycles, ``continueOn`` is not combined with ``depends``,
and every expression (``{{=...}}`` tags, ``retryStrategy.expression``) parses and is in the subset that
:mod:`.expr` runs. All problems are collected and raised together (:class:`UnsupportedFeatureError` if
any feature is unsupported, else :class:`WorkflowInvalidError`).
"""

from __future__ import annotations

import copy
import graphlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import UnsupportedFeatureError, WorkflowInvalidError
from .expr import check_expressions
from .expressions import ExpressionError, parse_depends
from .fanout import exit_hook, loop_problems
from .resource import check_resource
from .rules import DOCUMENT, STEP, Rule
from .rules import NOT_SUPPORTED as _NS
from .yamlio import load_yaml

__all__ = [
    "check_document",
    "dependency_logic",
    "load_document",
    "load_yaml",
    "resolve_template_ref",
    "template_kind",
]


def load_document(path: str | Path) -> dict[str, Any]:
    """Read a Workflow document from a YAML (or JSON) file."""
    with open(path, encoding="utf-8") as fh:
        doc = load_yaml(fh.read())
    if not isinstance(doc, dict):
        raise WorkflowInvalidError(f"{path}: not a YAML mapping")
    return doc


def template_kind(tmpl: dict[str, Any]) -> str | None:
    """``container``, ``script``, ``dag`` or ``steps`` (None if the template has none of them)."""
    kinds = [k for k in ("container", "script", "dag", "steps") if k in tmpl]
    return kinds[0] if len(kinds) == 1 else None


def dependency_logic(task: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> str | None:
    """The ``depends`` string of a DAG task; legacy ``dependencies`` are converted as Argo does.

    argo-workflows ``workflow/common/ancestry.go`` ``expandDependency``: ``dependencies: [A]`` becomes
    ``(A.Succeeded || A.Skipped || A.Daemoned)``, plus ``|| A.Failed`` / ``|| A.Errored`` when task A has
    ``continueOn.failed`` / ``continueOn.error``; several dependencies are joined with ``&&``.
    """
    if task.get("depends"):
        return str(task["depends"])
    deps = task.get("dependencies") or []
    if not deps:
        return None
    parts = []
    for dep in deps:
        alts = [f"{dep}.Succeeded", f"{dep}.Skipped", f"{dep}.Daemoned"]
        cont = (tasks.get(dep) or {}).get("continueOn") or {}
        if cont.get("failed"):
            alts.append(f"{dep}.Failed")
        if cont.get("error"):
            alts.append(f"{dep}.Errored")
        parts.append("(" + " || ".join(alts) + ")")
    return " && ".join(parts)


class _Checker:
    def __init__(self) -> None:
        self.unsupported: list[str] = []
        self.invalid: list[str] = []

    def walk(self, obj: Any, rules: dict[str, Rule], path: str) -> None:
        if not isinstance(obj, dict):
            self.invalid.append(f"{path}: expected a mapping, got {type(obj).__name__}")
            return
        for key, value in obj.items():
            sub = f"{path}.{key}" if path else str(key)
            rule = rules.get(key)
            if rule is None:
                self.unsupported.append(f"{sub}: unknown field ({_NS})")
            elif rule in ("ok", "ignore"):
                continue
            elif isinstance(rule, str) and rule.startswith("!"):
                hint = rule[1:]
                self.unsupported.append(f"{sub}: {_NS}" + (f" ({hint})" if hint else ""))
            elif isinstance(rule, dict):
                if value is not None:
                    self.walk(value, rule, sub)
            elif isinstance(rule, list):
                if value is None:
                    continue
                if not isinstance(value, list):
                    self.invalid.append(f"{sub}: expected a list")
                    continue
                for i, item in enumerate(value):
                    label = f"{sub}[{i}]"
                    if isinstance(item, dict) and "name" in item:
                        label += f" (name: {item['name']})"
                    self.walk(item, rule[0], label)
            elif callable(rule):
                self.unsupported.extend(rule(value, sub))


def resolve_template_ref(doc: Mapping[str, Any], templates: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``doc`` with its ``spec.workflowTemplateRef`` replaced by the referenced template's spec.

    Argo's join of a Workflow onto its WorkflowTemplate: the template's spec, overridden field by field
    by the Workflow's own spec, with ``arguments.parameters`` merged by name (the Workflow's values win).
    A Workflow without a reference is returned unchanged. Hand-written because no library executes
    Argo documents; the merge follows ``JoinWorkflowSpec`` in Argo's ``workflow/util/merge.go``.
    """
    spec = doc.get("spec") or {}
    ref = spec.get("workflowTemplateRef")
    if not ref:
        return dict(doc)
    name = (ref or {}).get("name")
    kinds = ("ClusterWorkflowTemplate",) if ref.get("clusterScope") else ("WorkflowTemplate",)
    found = [t for t in templates if t.get("kind") in kinds and (t.get("metadata") or {}).get("name") == name]
    if not found:
        given = ", ".join(sorted((t.get("metadata") or {}).get("name", "?") for t in templates)) or "none"
        raise WorkflowInvalidError(
            [
                f"spec.workflowTemplateRef: no {kinds[0]} named {name!r} was given to the engine (given: {given})"
            ]
        )
    if spec.get("templates"):
        raise WorkflowInvalidError(
            ["spec.templates: a Workflow with a workflowTemplateRef cannot define templates"]
        )
    merged = copy.deepcopy(found[0].get("spec") or {})
    own = {k: v for k, v in spec.items() if k not in ("workflowTemplateRef", "arguments")}
    merged.update(copy.deepcopy(own))
    parameters = {p["name"]: dict(p) for p in ((merged.get("arguments") or {}).get("parameters") or [])}
    for p in (spec.get("arguments") or {}).get("parameters") or []:
        parameters[p["name"]] = {**parameters.get(p["name"], {}), **p}
    if parameters:
        merged.setdefault("arguments", {})["parameters"] = list(parameters.values())
    merged.pop("workflowMetadata", None)  # labels/annotations of the created Workflow: cluster-only
    return {**doc, "spec": merged}


def check_document(doc: Any) -> None:
    """Check everything the engine needs before running; raise with every problem found."""
    c = _Checker()
    if not isinstance(doc, dict):
        raise WorkflowInvalidError("the document is not a mapping")
    if doc.get("apiVersion") != "argoproj.io/v1alpha1":
        c.invalid.append(f"apiVersion: expected 'argoproj.io/v1alpha1', got {doc.get('apiVersion')!r}")
    if doc.get("kind") != "Workflow":
        c.invalid.append(f"kind: expected 'Workflow', got {doc.get('kind')!r}")
    c.walk(doc, DOCUMENT, "")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        c.invalid.append("spec: missing")
        _raise(c)
        return
    expr_unsupported, expr_invalid = check_expressions(doc)
    c.unsupported.extend(expr_unsupported)
    c.invalid.extend(expr_invalid)

    templates = spec.get("templates") or []
    if not isinstance(templates, list) or not templates:
        c.invalid.append("spec.templates: missing or empty")
        _raise(c)
        return
    names: dict[str, int] = {}
    for i, t in enumerate(templates):
        if not isinstance(t, dict):
            continue
        name = t.get("name")
        if not name:
            c.invalid.append(f"spec.templates[{i}].name: missing")
        elif name in names:
            c.invalid.append(f"spec.templates[{i}] (name: {name}): duplicate template name")
        else:
            names[name] = i

    def ref(name: Any, where: str) -> None:
        if not name:
            c.invalid.append(f"{where}: missing template name")
        elif name not in names:
            c.invalid.append(f"{where}: template '{name}' not found")

    ref(spec.get("entrypoint"), "spec.entrypoint")
    if spec.get("onExit"):
        ref(spec["onExit"], "spec.onExit")
    for i, t in enumerate(templates):
        if isinstance(t, dict):
            _check_template(c, t, f"spec.templates[{i}] (name: {t.get('name')})", ref)
    _raise(c)


def _check_template(c: _Checker, t: dict[str, Any], where: str, ref: Callable[[Any, str], None]) -> None:
    kinds = [k for k in ("container", "script", "dag", "steps") if k in t]
    rejected_kinds = [k for k in ("suspend", "resource", "containerSet", "http", "plugin", "data") if k in t]
    if not kinds and not rejected_kinds:
        c.invalid.append(f"{where}: template has no container, script, dag or steps")
    if len(kinds) > 1:
        c.invalid.append(f"{where}: template has more than one of {', '.join(kinds)}")
    unsupported, invalid = check_resource(t, where)
    c.unsupported.extend(unsupported)
    c.invalid.extend(invalid)
    if "pendingTimeout" in t and ("dag" in t or "steps" in t):  # Argo's validate.go
        kind = "DAG" if "dag" in t else "Steps"
        c.invalid.append(f"{where}.pendingTimeout: {kind} template doesn't support pendingTimeout field")
    for k in ("container", "script"):
        body = t.get(k)
        if isinstance(body, dict) and not body.get("command"):
            c.unsupported.append(
                f"{where}.{k}.command: required by the embedded engine (image entrypoints are not used)"
            )
    if isinstance(t.get("script"), dict) and "source" not in t["script"]:
        c.invalid.append(f"{where}.script.source: missing")
    if "retryStrategy" in t and ("dag" in t or "steps" in t):
        c.unsupported.append(f"{where}.retryStrategy: on a dag/steps template is {_NS}")
    for i, p in enumerate((t.get("outputs") or {}).get("parameters") or []):
        vf = p.get("valueFrom") or {} if isinstance(p, dict) else {}
        if "path" in vf and "parameter" in vf:
            c.invalid.append(f"{where}.outputs.parameters[{i}].valueFrom: both path and parameter")
        if "path" in vf and ("dag" in t or "steps" in t):
            c.invalid.append(f"{where}.outputs.parameters[{i}].valueFrom.path: only for container/script")
        if "parameter" in vf and ("container" in t or "script" in t):
            c.invalid.append(f"{where}.outputs.parameters[{i}].valueFrom.parameter: only for dag/steps")
    if "dag" in t and isinstance(t["dag"], dict):
        _check_dag(c, t["dag"], f"{where}.dag", ref)
    if "steps" in t:
        _check_steps(c, t["steps"], f"{where}.steps", ref)


def _check_dag(c: _Checker, dag: dict[str, Any], where: str, ref: Callable[[Any, str], None]) -> None:
    tasks = dag.get("tasks") or []
    if not tasks:
        c.invalid.append(f"{where}.tasks: missing or empty")
        return
    by_name: dict[str, dict[str, Any]] = {}
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        name = task.get("name")
        tw = f"{where}.tasks[{i}] (name: {name})"
        if not name:
            c.invalid.append(f"{where}.tasks[{i}].name: missing")
            continue
        if name in by_name:
            c.invalid.append(f"{tw}: duplicate task name")
        by_name[name] = task
        ref(task.get("template"), f"{tw}.template")
        c.invalid.extend(loop_problems(task, tw))
        if (hook := exit_hook(task)) is not None:
            ref(hook[1].get("template"), f"{tw}.{hook[0]}")
    graph: dict[str, set[str]] = {}
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not task.get("name"):
            continue
        name = task["name"]
        tw = f"{where}.tasks[{i}] (name: {name})"
        if task.get("depends") and task.get("dependencies"):
            c.invalid.append(f"{tw}: both depends and dependencies")
        if task.get("depends") and task.get("continueOn"):
            c.invalid.append(f"{tw}: continueOn cannot be combined with depends (invalid in Argo)")
        deps: list[str] = []
        if task.get("depends"):
            try:
                deps = parse_depends(str(task["depends"])).tasks
            except ExpressionError as exc:
                c.invalid.append(f"{tw}.depends: {exc}")
        elif task.get("dependencies"):
            if not isinstance(task["dependencies"], list):
                c.invalid.append(f"{tw}.dependencies: expected a list")
            else:
                deps = [str(d) for d in task["dependencies"]]
        for d in deps:
            if d not in by_name:
                c.invalid.append(f"{tw}: depends on unknown task '{d}'")
            if d == name:
                c.invalid.append(f"{tw}: depends on itself")
        graph[name] = {d for d in deps if d in by_name and d != name}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1]) if len(exc.args) > 1 else ""
        c.invalid.append(f"{where}.tasks: dependency cycle {cycle}")


def _check_steps(c: _Checker, steps: Any, where: str, ref: Callable[[Any, str], None]) -> None:
    if not isinstance(steps, list) or not steps:
        c.invalid.append(f"{where}: expected a non-empty list of step groups")
        return
    for g, group in enumerate(steps):
        if not isinstance(group, list):
            c.invalid.append(f"{where}[{g}]: expected a list of steps (YAML '- - name: ...')")
            continue
        seen: set[str] = set()
        for s, step in enumerate(group):
            label = f"{where}[{g}][{s}]"
            if isinstance(step, dict) and "name" in step:
                label += f" (name: {step['name']})"
            c.walk(step, STEP, label)
            if not isinstance(step, dict):
                continue
            if not step.get("name"):
                c.invalid.append(f"{label}.name: missing")
            elif step["name"] in seen:
                c.invalid.append(f"{label}: duplicate step name in the group")
            else:
                seen.add(step["name"])
            ref(step.get("template"), f"{label}.template")
            c.invalid.extend(loop_problems(step, label))
            if (hook := exit_hook(step)) is not None:
                ref(hook[1].get("template"), f"{label}.{hook[0]}")


def _raise(c: _Checker) -> None:
    if c.unsupported:
        raise UnsupportedFeatureError(c.unsupported + c.invalid)
    if c.invalid:
        raise WorkflowInvalidError(c.invalid)
