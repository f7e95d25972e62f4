"""Calls between templates: which template a task, step, hook or ``onExit`` names, and the arguments it
passes (``validate.go`` ``validateTemplateHolder``, ``validateArguments``, ``ProcessArgs``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..argo import ARTIFACT_LOCATIONS, count
from ..problems import short
from .context import UNKNOWN, Lint, Path, Template, as_dict, as_list, as_str
from .names import names


def resolve(lint: Lint, holder: dict[str, Any], path: Path, *, what: str) -> Template | None:
    """The template ``holder`` calls; ``UNKNOWN`` when not checkable; ``None`` when broken (reported)."""
    name, ref, inline = holder.get("template"), holder.get("templateRef"), holder.get("inline")
    if name and ref:
        lint.error(path, "template and templateRef cannot both be given")
        return None
    if isinstance(inline, dict):
        return Template(f"{as_str(holder.get('name'))}(inline)", inline, (*path, "inline"), origin="inline")
    if isinstance(name, str) and name:
        t = lint.templates.get(name)
        if t is None:
            lint.error(
                (*path, "template"),
                f"{what} calls template {name!r}, which is not defined in spec.templates{lint.names_hint(name)}",
            )
        return t
    if isinstance(ref, dict):
        return resolve_ref(lint, ref, (*path, "templateRef"))
    lint.error(path, f"{what} needs template, templateRef or inline")
    return None


def resolve_ref(lint: Lint, ref: dict[str, Any], path: Path) -> Template | None:
    wft, name = as_str(ref.get("name")), as_str(ref.get("template"))
    if not wft:
        lint.error((*path, "name"), "templateRef.name is required")
        return None
    if not name:
        lint.error((*path, "template"), "templateRef.template is required")
        return None
    if "{{" in wft or "{{" in name:
        return UNKNOWN  # resolved at run time
    kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") else "WorkflowTemplate"
    if lint.index is None:
        key = f"{kind}/{wft}/{name}"
        if key not in lint.ref_warned:
            lint.ref_warned.add(key)
            lint.warn(
                path,
                f"templateRef {kind} {wft!r} template {name!r} not checked: no WorkflowTemplates were given (out of scope)",
            )
        return UNKNOWN
    if kind == lint.kind and wft == as_dict(lint.doc.get("metadata")).get("name"):
        spec: dict[str, Any] | None = as_dict(lint.doc.get("spec"))
    else:
        spec = lint.index.get((kind, wft))
    if spec is None:
        lint.error((*path, "name"), f"{kind} {wft!r} is not among the given templates")
        return None
    for i, body in enumerate(as_list(spec.get("templates"))):
        if isinstance(body, dict) and body.get("name") == name:
            return Template(name, body, ("spec", "templates", i), origin=f"{kind} {wft}")
    lint.error((*path, "template"), f"{kind} {wft!r} has no template {name!r}")
    return None


def workflow_template_ref(lint: Lint, ref: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """The spec a ``workflowTemplateRef`` names, when the templates were given."""
    name = as_str(ref.get("name"))
    kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") else "WorkflowTemplate"
    if lint.index is None:
        lint.warn(path, f"{kind} {name!r} not checked: no WorkflowTemplates were given (out of scope)")
        return None
    spec = lint.index.get((kind, name))
    if spec is None:
        lint.error((*path, "name"), f"{kind} {name!r} is not among the given templates")
    return spec


def hooks(lint: Lint, given: dict[str, Any], path: Path) -> None:
    """validate.go validateHooks: a non-exit hook needs an expression; every hook calls a template."""
    for name, hook in given.items():
        hook = as_dict(hook)
        hpath = (*path, name)
        if name != "exit" and not hook.get("expression"):
            lint.error(
                hpath, f"hook {name!r} needs an expression (only the 'exit' hook runs unconditionally)"
            )
        target = resolve(lint, hook, hpath, what=f"hook {name!r}")
        call_arguments(lint, as_dict(hook.get("arguments")), (*hpath, "arguments"), target)


def arguments(lint: Lint, args: dict[str, Any], path: Path, *, allow_empty: bool) -> None:
    """validate.go validateArguments: named, valued (unless ``allow_empty``), valueFrom as an argument allows."""
    params = as_list(args.get("parameters"))
    names(lint, params, (*path, "parameters"), param=True)
    names(lint, as_list(args.get("artifacts")), (*path, "artifacts"), param=True)
    for i, p in enumerate(params):
        p = as_dict(p)
        ppath = (*path, "parameters", i)
        value_from = p.get("valueFrom")
        if value_from is None and p.get("value") is None and not allow_empty:
            lint.error(ppath, f"argument {as_str(p.get('name'))!r} needs value or valueFrom")
        if isinstance(value_from, dict) and not _argument_value_from_ok(value_from):
            lint.error(
                (*ppath, "valueFrom"),
                "an argument's valueFrom only allows default, configMapKeyRef, event and supplied",
            )
        enum = p.get("enum")
        if (
            isinstance(enum, list)
            and p.get("value") is not None
            and str(p["value"]) not in [str(e) for e in enum]
        ):
            lint.error((*ppath, "value"), f"{short(p['value'])} is not in enum {enum}")


def call_arguments(lint: Lint, args: dict[str, Any], path: Path, target: Template | None) -> None:
    """The arguments of a call match the inputs of the template called (ProcessArgs: "was not supplied")."""
    arguments(lint, args, path, allow_empty=False)
    if target is None or target is UNKNOWN:
        return
    params = {as_str(p.get("name")): p for p in target.input_params()}
    _match_inputs(
        lint, as_list(args.get("parameters")), params, (path, "parameters"), target, input_has_value
    )
    artifacts = {as_str(a.get("name")): a for a in target.input_artifacts()}
    _match_inputs(
        lint, as_list(args.get("artifacts")), artifacts, (path, "artifacts"), target, _artifact_has_source
    )


def _match_inputs(
    lint: Lint,
    given: list[Any],
    declared: dict[str, dict[str, Any]],
    where: tuple[Path, str],
    target: Template,
    needs_none: Callable[[Mapping[str, Any]], bool],
) -> None:
    """Each given parameter (artifact) is an input of ``target``; each input is given, unless
    ``needs_none`` (it has a default, a source)."""
    path, section = where
    noun = "parameter" if section == "parameters" else "artifact"
    names: set[str] = set()
    for i, item in enumerate(given):
        name = as_str(as_dict(item).get("name"))
        names.add(name)
        if name and name not in declared:
            listed = ", ".join(declared) or "none"
            lint.error(
                (*path, section, i, "name"),
                f"template {target.name!r} declares no input {noun} {name!r} (it declares: {listed})",
            )
    for name, item in declared.items():
        if name and name not in names and not needs_none(item):
            default = " and has no default" if noun == "parameter" else ""
            lint.error(path, f"input {noun} {name!r} of template {target.name!r} is not supplied{default}")


def supplied_by_workflow(lint: Lint, target: Template, params: list[dict[str, Any]], path: Path) -> None:
    """Entrypoint/onExit inputs come from spec.arguments (validate.go: ProcessArgs with wfArgs)."""
    given = {as_str(p.get("name")) for p in params}
    for p in target.input_params():
        name = as_str(p.get("name"))
        if name and name not in given and not input_has_value(p):
            lint.error(
                path,
                f"template {target.name!r} needs input parameter {name!r} (no default), which spec.arguments.parameters does not supply",
            )


def input_has_value(p: Mapping[str, Any]) -> bool:
    return p.get("value") is not None or p.get("default") is not None or p.get("valueFrom") is not None


def _argument_value_from_ok(value_from: Mapping[str, Any]) -> bool:
    """validate.go validateArgumentsValues: what an argument's valueFrom may hold."""
    has_source = bool(value_from.get("configMapKeyRef") or value_from.get("event")) or (
        value_from.get("supplied") is not None
    )
    return has_source and not any(value_from.get(k) for k in ("path", "jsonPath", "parameter", "expression"))


def _artifact_has_source(a: Mapping[str, Any]) -> bool:
    return bool(a.get("optional")) or bool(a.get("from")) or count(a, ARTIFACT_LOCATIONS) > 0


__all__ = [
    "arguments",
    "call_arguments",
    "hooks",
    "input_has_value",
    "resolve",
    "resolve_ref",
    "supplied_by_workflow",
    "workflow_template_ref",
]
