"""Variable scope: what ``{{...}}`` tags resolve to, and how parameters get their values.

A scope is a flat ``{name: str}`` map that :func:`~.params.substitute` reads. The layers, as in Argo:

* workflow: ``workflow.name``, ``.namespace``, ``.uid``, ``.serviceAccountName``, ``.creationTimestamp``,
  ``.mainEntrypoint``, ``.status``, ``.labels.<k>``, ``.annotations.<k>``, ``.parameters.<p>`` (and
  ``workflow.parameters`` as a JSON list), ``.outputs.parameters.<g>`` (set whenever a node's output
  parameter with a ``globalName`` is produced) and, for the exit handler, ``.failures``;
* template: the workflow scope plus the template's ``inputs.parameters.<p>`` (and the JSON list);
* node: ``tasks.<t>.*`` / ``steps.<s>.*`` of finished tasks and steps: ``id``, ``status``, ``startedAt``,
  ``finishedAt``, ``outputs.result``, ``exitCode``, ``outputs.parameters.<p>``;
* aggregate: a fanned-out task's or step's outputs as JSON lists over its children (Argo's
  ``processAggregateNodeOutputs``);
* item: ``item`` and ``item.<k>`` of one fan-out child;
* retry: ``retries`` and ``lastRetry.*`` in a retried template (:func:`last_retry_scope`).

The same map, expanded on its dots, is what ``{{=...}}`` expressions see (:mod:`.expr`). The
workflow's resolved ``spec.arguments`` are also the arguments of the entrypoint and of the exit
handlers (:attr:`WorkflowScope.arguments`). Values are rendered as Go's ``%v``/JSON would render them
in Argo (:func:`to_str`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from edgefed.workflows.phases import Phase

from .errors import NodeError, UnresolvedVariableError, WorkflowInvalidError
from .gofmt import format_float
from .nodes import Node, NodeRecord, NodeType, timestamp
from .params import substitute

__all__ = [
    "WorkflowScope",
    "aggregate_scope",
    "declared_outputs",
    "item_vars",
    "last_retry_scope",
    "maybe_json",
    "node_scope",
    "outputs_scope",
    "to_str",
    "truthy",
]


def to_str(v: Any) -> str:
    """Render a YAML/JSON value the way Go's ``%v``/JSON would in Argo."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    return str(v)


def truthy(v: Any, default: bool) -> bool:
    """A YAML boolean that may also be written as a string (``"true"``, ``"1"``, ``"yes"``)."""
    if v is None:
        return default
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


def maybe_json(value: str) -> Any:
    """``value`` parsed as JSON, or ``value`` itself if it is not JSON."""
    try:
        return json.loads(value)
    except (ValueError, TypeError):
        return value


def item_vars(item: Any) -> tuple[dict[str, str], str]:
    """Scope entries and the name label for one fan-out item (Argo's ``processItem``).

    An object item renders as ``k1:v1,k2:v2`` with the pairs sorted; ``item.<k>`` is defined for each key.
    The label drops parentheses (``generateNodeName``: node names must keep their ``(i:...)`` readable).
    """
    if isinstance(item, dict):
        scope = {"item": to_str(item)}
        labels = []
        for k, v in item.items():
            scope[f"item.{k}"] = to_str(v)
            labels.append(f"{k}:{to_str(v)}")
        return scope, _label(",".join(sorted(labels)))
    return {"item": to_str(item)}, _label(to_str(item))


def _label(text: str) -> str:
    return text.replace("(", "").replace(")", "")


def last_retry_scope(last: Node | None, attempts: int, *, expression: bool) -> dict[str, str]:
    """``lastRetry.exitCode``, ``.status``, ``.duration``, ``.message`` of a Retry node's last attempt.

    argo-workflows ``operator.go``: in the template of the next attempt (``executeTemplate``: before the
    first retry ``exitCode`` and ``duration`` are ``"0"``, ``status`` and ``message`` empty) and in
    ``retryStrategy.expression`` (``buildRetryStrategyLocalScope``, with ``retries``: the attempts so far
    minus one; an attempt without an exit code gives ``"-1"``). The duration is Go's ``%v`` of whole
    seconds, as the node's RFC 3339 times give it on a cluster.
    """
    if last is None:
        return {
            "lastRetry.exitCode": "0",
            "lastRetry.duration": "0",
            "lastRetry.status": "",
            "lastRetry.message": "",
        }
    exit_code = (last.outputs or {}).get("exitCode")
    seconds = 0.0
    if last.started_at is not None and last.finished_at is not None:
        seconds = float(int(last.finished_at.timestamp()) - int(last.started_at.timestamp()))
    scope = {
        "lastRetry.exitCode": exit_code if exit_code is not None else ("-1" if expression else "0"),
        "lastRetry.status": str(last.phase),
        "lastRetry.duration": format_float(seconds, "g"),
        "lastRetry.message": last.message,
    }
    if expression:
        scope["retries"] = str(attempts - 1)
    return scope


def declared_outputs(template: Mapping[str, Any] | None) -> list[str]:
    """The names of a template's output parameters."""
    return [p["name"] for p in ((template or {}).get("outputs") or {}).get("parameters") or []]


def node_scope(prefix: str, node: Node) -> dict[str, str]:
    """``<prefix>.id``, ``.status``, times, ``.outputs.result``, ``.exitCode``, ``.outputs.parameters.*``."""
    scope = {
        f"{prefix}.id": node.id,
        f"{prefix}.status": str(node.phase),
    }
    if node.started_at:
        scope[f"{prefix}.startedAt"] = timestamp(node.started_at) or ""
    if node.finished_at:
        scope[f"{prefix}.finishedAt"] = timestamp(node.finished_at) or ""
    outputs = node.outputs or {}
    if outputs.get("result") is not None:
        scope[f"{prefix}.outputs.result"] = outputs["result"]
    if outputs.get("exitCode") is not None:
        scope[f"{prefix}.exitCode"] = outputs["exitCode"]
        scope[f"{prefix}.outputs.exitCode"] = outputs["exitCode"]
    for name, value in (outputs.get("parameters") or {}).items():
        scope[f"{prefix}.outputs.parameters.{name}"] = value
    return scope


def aggregate_scope(prefix: str, children: list[Node], declared: Sequence[str] = ()) -> dict[str, str]:
    """Argo's ``processAggregateNodeOutputs``: JSON lists over the children, in item order.

    Only *succeeded* children contribute (a failed edge's partial output must not be aggregated), and
    every output parameter the template declares is defined, as ``[]`` if no child produced it, so a
    ``depends: train.AllFailed`` consumer can still resolve ``{{tasks.train.outputs.parameters.x}}``.
    """
    results: list[Any] = []
    params: list[dict[str, str]] = []
    per_name: dict[str, list[Any]] = {name: [] for name in declared}
    for child in children:
        if child.phase != Phase.SUCCEEDED or not child.outputs:
            continue
        if child.outputs.get("parameters"):
            params.append(dict(child.outputs["parameters"]))
            for name, value in child.outputs["parameters"].items():
                per_name.setdefault(name, []).append(maybe_json(value))
        if child.outputs.get("result") is not None:
            results.append(maybe_json(child.outputs["result"]))
    scope = {
        f"{prefix}.outputs.result": json.dumps(results),
        f"{prefix}.outputs.parameters": json.dumps(params),
    }
    for name, values in per_name.items():
        scope[f"{prefix}.outputs.parameters.{name}"] = json.dumps(values)
    return scope


def outputs_scope(
    finished: Mapping[str, Node],
    kind: str,
    records: NodeRecord,
    templates: Mapping[str, Mapping[str, Any]],
) -> dict[str, str]:
    """``<kind>.<name>.*`` for every finished task: a node's own scope, or a TaskGroup's aggregate."""
    scope: dict[str, str] = {}
    for name, node in finished.items():
        prefix = f"{kind}.{name}"
        if node.type == NodeType.TASK_GROUP:
            declared = declared_outputs(templates.get(node.template_name or ""))
            # the items only (dag.go buildLocalScopeFromTask: names "<group>(" - not the group's exit hook)
            items = [c for c in records.children(node) if c.name.startswith(node.name + "(")]
            scope.update(aggregate_scope(prefix, items, declared))
            scope[f"{prefix}.status"] = str(node.phase)
            scope[f"{prefix}.id"] = node.id
        else:
            scope.update(node_scope(prefix, node))
    return scope


class WorkflowScope:
    """The workflow layer of the scope, the workflow's output parameters, and parameter resolution."""

    def __init__(
        self,
        *,
        name: str,
        namespace: str,
        spec: Mapping[str, Any],
        metadata: Mapping[str, Any],
        overrides: Mapping[str, Any],
    ) -> None:
        """Raise :class:`WorkflowInvalidError` for an undeclared, missing or out-of-enum parameter."""
        #: ``workflow.outputs.parameters``: ``{globalName: value}``.
        self.outputs: dict[str, str] = {}
        self.values: dict[str, str] = {
            "workflow.name": name,
            "workflow.namespace": namespace,
            "workflow.uid": str(uuid.uuid4()),
            "workflow.serviceAccountName": to_str(spec.get("serviceAccountName") or "default"),
            "workflow.creationTimestamp": timestamp(datetime.now(UTC)) or "",
            "workflow.mainEntrypoint": spec["entrypoint"],
            "workflow.status": str(Phase.RUNNING),
        }
        for k, v in (metadata.get("labels") or {}).items():
            self.values[f"workflow.labels.{k}"] = to_str(v)
        for k, v in (metadata.get("annotations") or {}).items():
            self.values[f"workflow.annotations.{k}"] = to_str(v)
        parameters = self._parameters((spec.get("arguments") or {}).get("parameters") or [], overrides)
        # Values may refer to workflow.* variables (e.g. {{workflow.name}}).
        for pname, value in parameters.items():
            parameters[pname] = substitute(value, self.values, strict=False)
            self.values[f"workflow.parameters.{pname}"] = parameters[pname]
        #: ``spec.arguments.parameters`` as resolved: the entrypoint's and the exit handlers' arguments
        #: (argo-workflows ``operator.go``: ``executeTemplate(..., woc.execWf.Spec.Arguments)``).
        self.arguments: dict[str, str] = dict(parameters)
        self.values["workflow.parameters"] = json.dumps(
            [{"name": k, "value": v} for k, v in parameters.items()]
        )

    @staticmethod
    def _parameters(declared: list[dict[str, Any]], overrides: Mapping[str, Any]) -> dict[str, str]:
        names = [p.get("name") for p in declared]
        unknown = [k for k in overrides if k not in names]
        if unknown:
            raise WorkflowInvalidError(
                [f"parameter '{k}' is not declared in spec.arguments.parameters" for k in unknown]
            )
        problems = []
        values: dict[str, str] = {}
        for i, p in enumerate(declared):
            name = p["name"]
            if name in overrides:
                value = to_str(overrides[name])
            elif "value" in p:
                value = to_str(p["value"])
            elif "default" in p:
                value = to_str(p["default"])
            else:
                problems.append(f"spec.arguments.parameters[{i}] (name: {name}): no value supplied")
                continue
            enum = p.get("enum")
            if enum and value not in [to_str(e) for e in enum]:
                problems.append(
                    f"spec.arguments.parameters[{i}] (name: {name}): value {value!r} not in enum {enum}"
                )
            values[name] = value
        if problems:
            raise WorkflowInvalidError(problems)
        return values

    def snapshot(self) -> dict[str, str]:
        """A copy of the workflow layer as it is now."""
        return dict(self.values)

    def workflow_outputs(self) -> dict[str, str]:
        """The ``workflow.outputs.*`` entries produced so far."""
        return {k: v for k, v in self.values.items() if k.startswith("workflow.outputs.")}

    def set_output(self, name: str, value: str) -> None:
        """An output parameter with ``globalName: name`` was produced."""
        self.outputs[name] = value
        self.values[f"workflow.outputs.parameters.{name}"] = value

    def set_status(self, phase: Phase, failures: list[dict[str, Any]]) -> None:
        """What the exit handler sees: ``workflow.status`` and ``workflow.failures``."""
        self.values["workflow.status"] = str(phase)
        self.values["workflow.failures"] = json.dumps(failures)

    def template_scope(self, inputs: Mapping[str, str]) -> dict[str, str]:
        """The scope a template's body is resolved in: the workflow layer plus its inputs."""
        scope = self.snapshot()
        for k, v in inputs.items():
            scope[f"inputs.parameters.{k}"] = v
        scope["inputs.parameters"] = json.dumps([{"name": k, "value": v} for k, v in inputs.items()])
        return scope

    def resolve_inputs(self, template: Mapping[str, Any], arguments: Mapping[str, str]) -> dict[str, str]:
        """``inputs.parameters`` from the caller's arguments, else ``value``/``default``; enums checked."""
        values: dict[str, str] = {}
        for p in (template.get("inputs") or {}).get("parameters") or []:
            name = p["name"]
            if name in arguments:
                value = arguments[name]
            elif "value" in p:
                value = to_str(p["value"])
            elif "default" in p:
                value = to_str(p["default"])
            else:
                raise NodeError(f"inputs.parameters.{name} was not supplied")
            value = substitute(value, self.values, where=f"inputs.parameters.{name}")
            enum = p.get("enum")
            if enum and value not in [to_str(e) for e in enum]:
                raise NodeError(f"inputs.parameters.{name}: value {value!r} is not in enum {enum}")
            values[name] = value
        return values

    def boundary_outputs(self, node: Node, template: Mapping[str, Any], scope: Mapping[str, str]) -> None:
        """outputs.parameters of a dag/steps template (``valueFrom.parameter``)."""
        params: dict[str, str] = {}
        for p in (template.get("outputs") or {}).get("parameters") or []:
            vf = p.get("valueFrom") or {}
            where = f"outputs.parameters.{p['name']}"
            if "parameter" in vf:
                try:
                    value = substitute(to_str(vf["parameter"]), scope, where=where)
                except UnresolvedVariableError:
                    if "default" not in vf:
                        raise
                    value = to_str(vf["default"])
            elif "value" in p:
                value = substitute(to_str(p["value"]), scope, where=where)
            elif "default" in vf:
                value = to_str(vf["default"])
            else:
                continue
            params[p["name"]] = value
            if p.get("globalName"):
                self.set_output(p["globalName"], value)
        if params:
            node.outputs = {"parameters": params}
