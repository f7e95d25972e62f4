"""The document: apiVersion, metadata, a CronWorkflow's schedule, the WorkflowSpec (globals, entrypoint,
onExit, hooks, podGC), then each template (``validate.go`` ``ValidateWorkflow``, ``CronWorkflow``)."""

from __future__ import annotations

from typing import Any

from ..argo import API_VERSION
from ..cron import cron_schedule_problem, valid_timezone
from ..problems import Problem, format_path, short
from .calls import arguments, hooks, input_has_value, supplied_by_workflow, workflow_template_ref
from .context import Lint, Path, Template, as_dict, as_list, as_str
from .names import labels, metadata
from .templates import template
from .variables import PARAM_REF

_POD_GC = ("OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess")
#: Workflow variables defined for every workflow.
_WORKFLOW_VARIABLES = frozenset(
    {
        "workflow.name",
        "workflow.namespace",
        "workflow.mainEntrypoint",
        "workflow.serviceAccountName",
        "workflow.uid",
        "workflow.status",
        "workflow.annotations",
        "workflow.annotations.json",
        "workflow.labels",
        "workflow.labels.json",
    }
)


def run(lint: Lint) -> list[Problem]:
    """Lint the whole document; the problems found."""
    doc = lint.doc
    if doc.get("apiVersion") != API_VERSION:
        lint.error(("apiVersion",), f"must be {API_VERSION!r}, found {short(doc.get('apiVersion'))}")
    metadata(lint, as_dict(doc.get("metadata")), ("metadata",))
    spec = as_dict(doc.get("spec"))
    if lint.kind == "CronWorkflow":
        _cron(lint, spec, ("spec",))
        meta = as_dict(spec.get("workflowMetadata"))
        _workflow_spec(lint, as_dict(spec.get("workflowSpec")), ("spec", "workflowSpec"), extra_meta=meta)
    else:
        _workflow_spec(lint, spec, ("spec",))
    return lint.problems


def _cron(lint: Lint, spec: dict[str, Any], path: Path) -> None:
    """validate.go CronWorkflow."""
    schedules = as_list(spec.get("schedules"))
    if "schedule" in spec:
        lint.error((*path, "schedule"), "Argo v4 has no 'schedule'; use 'schedules: [...]'")
    if not schedules:
        lint.error((*path, "schedules"), "a CronWorkflow needs at least one schedule")
    for i, schedule in enumerate(schedules):
        if isinstance(schedule, str):
            problem = cron_schedule_problem(schedule)
            if problem:
                lint.error((*path, "schedules", i), f"cron schedule {schedule!r} is malformed: {problem}")
    timezone = spec.get("timezone")
    if isinstance(timezone, str) and timezone and not valid_timezone(timezone):
        lint.error((*path, "timezone"), f"unknown time zone {timezone!r}")
    policy = spec.get("concurrencyPolicy")
    if policy not in (None, "", "Allow", "Forbid", "Replace"):
        lint.error((*path, "concurrencyPolicy"), f"{policy!r} is not a valid concurrencyPolicy")
    deadline = spec.get("startingDeadlineSeconds")
    if isinstance(deadline, int) and deadline < 0:
        lint.error((*path, "startingDeadlineSeconds"), "must not be negative")


def _workflow_spec(
    lint: Lint, spec: dict[str, Any], path: Path, *, extra_meta: dict[str, Any] | None = None
) -> None:
    raw_templates = as_list(spec.get("templates"))
    for i, body in enumerate(raw_templates):
        if not isinstance(body, dict):
            continue
        tpath = (*path, "templates", i)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            lint.error((*tpath, "name"), "a template needs a name")
            continue
        if name in lint.templates:
            lint.error(
                (*tpath, "name"),
                f"template name {name!r} is not unique (also {format_path(lint.templates[name].path)})",
            )
            continue
        lint.templates[name] = Template(name, body, tpath)

    ref = spec.get("workflowTemplateRef")
    ref_spec: dict[str, Any] | None = None
    if isinstance(ref, dict):
        if raw_templates:
            lint.error((*path, "templates"), "a Workflow with workflowTemplateRef must not define templates")
        ref_spec = workflow_template_ref(lint, ref, (*path, "workflowTemplateRef"))

    params = [p for p in as_list(as_dict(spec.get("arguments")).get("parameters")) if isinstance(p, dict)]
    arguments(lint, as_dict(spec.get("arguments")), (*path, "arguments"), allow_empty=True)
    if ref_spec is not None:
        _referenced_parameters(lint, ref_spec, params, (*path, "arguments", "parameters"))
    lint.literal_params = {
        as_str(p.get("name")): p["value"] for p in params if isinstance(p.get("value"), str)
    }
    param_names = _parameters(lint, spec, path, params, ref_spec)
    lint.globals = _globals(lint, spec, param_names, extra_meta)

    entrypoint = spec.get("entrypoint")
    needs_entrypoint = (
        lint.kind in ("Workflow", "CronWorkflow") and ref_spec is None and not isinstance(ref, dict)
    )
    if not entrypoint:
        if needs_entrypoint:
            lint.error((*path, "entrypoint"), "spec.entrypoint is required")
    elif isinstance(entrypoint, str) and not isinstance(ref, dict):
        _workflow_call(lint, entrypoint, params, (*path, "entrypoint"), what="entrypoint")
    elif isinstance(entrypoint, str) and ref_spec is not None:
        names = {as_str(as_dict(t).get("name")) for t in as_list(ref_spec.get("templates"))}
        if entrypoint not in names:
            lint.error(
                (*path, "entrypoint"),
                f"entrypoint {entrypoint!r} is not a template of the referenced WorkflowTemplate",
            )

    on_exit = spec.get("onExit")
    if isinstance(on_exit, str) and on_exit and not isinstance(ref, dict):
        _workflow_call(lint, on_exit, params, (*path, "onExit"), what="onExit template")
    hooks(lint, as_dict(spec.get("hooks")), (*path, "hooks"))
    labels(
        lint,
        as_dict(as_dict(spec.get("workflowMetadata")).get("labels")),
        (*path, "workflowMetadata", "labels"),
    )
    labels(lint, as_dict(as_dict(spec.get("podMetadata")).get("labels")), (*path, "podMetadata", "labels"))

    pod_gc = as_dict(spec.get("podGC")).get("strategy")
    if pod_gc not in (None, "", *_POD_GC):
        lint.error(
            (*path, "podGC", "strategy"), f"unknown podGC strategy {pod_gc!r}: one of {', '.join(_POD_GC)}"
        )

    defaults = as_dict(spec.get("templateDefaults"))
    lint.default_images = {k: bool(as_dict(defaults.get(k)).get("image")) for k in ("container", "script")}
    for t in lint.templates.values():
        template(lint, t)


def _parameters(
    lint: Lint,
    spec: dict[str, Any],
    path: Path,
    params: list[dict[str, Any]],
    ref_spec: dict[str, Any] | None,
) -> set[str]:
    """The workflow parameters' names (with those a referenced WorkflowTemplate adds); warns of those
    without a value in a Workflow (validate.go validateArgumentsValues: allowEmptyValues is false when a
    Workflow is submitted)."""
    param_names = {as_str(p.get("name")) for p in params}
    inherited: list[dict[str, Any]] = []
    if ref_spec is not None:
        inherited = [
            p
            for p in as_list(as_dict(ref_spec.get("arguments")).get("parameters"))
            if isinstance(p, dict) and as_str(p.get("name")) not in param_names
        ]
        param_names |= {as_str(p.get("name")) for p in inherited}
    if lint.kind in ("Workflow", "CronWorkflow"):
        for i, p in enumerate(as_list(as_dict(spec.get("arguments")).get("parameters"))):
            if isinstance(p, dict) and p.get("value") is None and p.get("valueFrom") is None:
                lint.warn(
                    (*path, "arguments", "parameters", i),
                    f"parameter {as_str(p.get('name'))!r} has no value: Argo rejects the Workflow unless it is "
                    "supplied at submission (argo submit -p)",
                )
        for p in inherited:
            if p.get("value") is None and p.get("valueFrom") is None:
                lint.warn(
                    (*path, "arguments"),
                    f"parameter {as_str(p.get('name'))!r} of the referenced WorkflowTemplate has no value and this "
                    "Workflow does not set one: Argo rejects it unless supplied at submission (argo submit -p)",
                )
    return param_names


def _globals(
    lint: Lint, spec: dict[str, Any], param_names: set[str], extra_meta: dict[str, Any] | None
) -> set[str]:
    """The workflow.* variables every template may use (validate.go ValidateWorkflow: globalParams)."""
    exact = set(_WORKFLOW_VARIABLES)
    if param_names:
        exact |= {"workflow.parameters", "workflow.parameters.json"}
        exact |= {f"workflow.parameters.{n}" for n in param_names}
    for source in (
        as_dict(lint.doc.get("metadata")),
        as_dict(spec.get("workflowMetadata")),
        extra_meta or {},
    ):
        exact |= {f"workflow.annotations.{k}" for k in as_dict(source.get("annotations"))}
        exact |= {f"workflow.labels.{k}" for k in as_dict(source.get("labels"))}
        exact |= {f"workflow.labels.{k}" for k in as_dict(source.get("labelsFrom"))}
    if spec.get("priority") is not None:
        exact.add("workflow.priority")
    if spec.get("onExit") or as_dict(spec.get("hooks")).get("exit"):
        exact.add("workflow.failures")
    lint.any_workflow_output = False
    for t in lint.templates.values():
        outputs = as_dict(t.body.get("outputs"))
        for kind in ("parameters", "artifacts"):
            for out in as_list(outputs.get(kind)):
                g = as_str(as_dict(out).get("globalName"))
                if g and PARAM_REF.search(g):
                    lint.any_workflow_output = True
                elif g:
                    exact.add(f"workflow.outputs.{kind}.{g}")
    return exact


def _workflow_call(lint: Lint, name: str, params: list[dict[str, Any]], path: Path, *, what: str) -> None:
    """The entrypoint or onExit template exists; in a Workflow, spec.arguments supply its inputs."""
    target = lint.templates.get(name)
    if target is None:
        lint.error(path, f"{what} {name!r} is not a template of this document{lint.names_hint(name)}")
    elif lint.kind in ("Workflow", "CronWorkflow"):
        supplied_by_workflow(lint, target, params, path)


__all__ = ["run"]


def _referenced_parameters(
    lint: Lint, ref_spec: dict[str, Any], params: list[dict[str, Any]], path: Path
) -> None:
    """A Workflow from a WorkflowTemplate must give every template parameter without a value: the
    server merges the two argument lists, then refuses an empty one (validate.go ValidateWorkflow,
    via the submitted Workflow: "spec.arguments.<name>.value or ....valueFrom is required")."""
    given = {as_str(p.get("name")) for p in params if p.get("value") is not None or p.get("valueFrom")}
    for p in as_list(as_dict(ref_spec.get("arguments")).get("parameters")):
        name = as_str(as_dict(p).get("name"))
        if name and name not in given and not input_has_value(as_dict(p)):
            lint.error(path, f"spec.arguments.{name}.value or spec.arguments.{name}.valueFrom is required")
