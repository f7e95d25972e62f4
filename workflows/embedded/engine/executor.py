"""The scheduler: executes an Argo Workflow document on this machine.

Hand-written because no Python library executes Argo Workflow documents; the behaviour follows the
argo-workflows controller (``workflow/controller/operator.go``, ``dag.go``, ``steps.go``).

Scheduling model
    Every template invocation runs in a thread. A DAG or steps node coordinates its children: it starts a
    thread per ready task/step and sleeps on one run-wide condition variable that every finishing node
    notifies (no polling). Container/script nodes take a slot of a semaphore of size ``parallelism``
    (engine option, bounded by ``spec.parallelism``) before their process starts; a template's own
    ``parallelism`` bounds how many of its children run at once. Processes are run by a pluggable
    :class:`~.runners.Runner`.

Node naming (as Argo)
    The root node is named after the workflow; a DAG task is ``<dag node>.<task>``; fan-out children are
    ``<task>(<i>:<item>)`` (an object item renders as ``(<i>:k1:v1,k2:v2)`` with keys sorted, like Argo's
    ``processItem``); a step group is ``<steps node>[<i>]`` and its steps ``<steps node>[<i>].<step>``;
    retry attempts are ``<node>(<n>)``; the exit handler is ``<workflow>.onExit``. The display name is the
    last component (``train(0:cleveland)``, ``[0]``, ``train(0:x)(1)``). Node ``children`` lists contained
    nodes (DAG -> tasks, TaskGroup -> items, Retry -> attempts, Steps -> step groups -> steps), which is
    how ``argo get`` draws the tree (Argo's own ``children`` encode dependency edges instead).

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

failFast (default true)
    Argo: "stop scheduling new steps as soon as it detects that one of the DAG nodes is failed; then wait
    until all DAG nodes are completed before failing the DAG". A failure counts here only when nothing
    handles it: the task has no matching ``continueOn`` and no dependent's ``depends`` mentions it with
    ``.Failed``, ``.Errored``, ``.AllFailed``, ``.AnySucceeded``, ``.Omitted`` or under ``!``. Otherwise
    the handled failure would stop the very task meant to handle it. Running nodes always finish.

Other Argo behaviour followed
    A task whose ``depends`` is false once all its dependencies are done is Omitted (node type Skipped);
    ``when`` false gives Skipped; an empty ``withParam``/``withItems`` gives a Skipped node ("Skipped,
    empty params"). A fan-out group is Failed/Error if any child is (the last such child's phase).
    Aggregated outputs of a fanned-out task are JSON lists over its *succeeded* children, in item order.
    Retries: ``retryPolicy`` Always / OnFailure (default: Failed attempts) / OnError and OnTransientError
    (Error attempts); a deadline kill is Failed (Argo's message "Pod was active on the node longer than the
    specified deadline"). The workflow deadline fails running nodes with "Step exceeded its deadline" and
    stops scheduling; the exit handler still runs. A Succeeded workflow whose exit handler fails takes the
    handler's phase (``operator.go``: "if main workflow succeeded, but the exit node was unsuccessful the
    workflow is now considered unsuccessful").
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import re
import string
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .document import check_document, dependency_logic, resolve_template_ref, template_kind
from .errors import (
    EngineError,
    NodeDeadlineExceededError,
    RunnerError,
    UnresolvedVariableError,
    WorkflowInvalidError,
)
from .expressions import DependsExpr, ExpressionError, TaskResults, evaluate_when, parse_depends
from .params import map_tmp_paths, substitute, substitute_obj
from .runners import LocalProcessRunner, NodeExecution, Runner
from .secrets import SecretResolver

__all__ = ["Engine", "EngineOptions", "Node", "NodeCallback", "WorkflowResult"]

SUCCEEDED, FAILED, ERROR, SKIPPED, OMITTED = "Succeeded", "Failed", "Error", "Skipped", "Omitted"
PENDING, RUNNING = "Pending", "Running"
_COMPLETED = (SUCCEEDED, FAILED, ERROR)
_FULFILLED = (SUCCEEDED, FAILED, ERROR, SKIPPED, OMITTED)
_RESULT_LIMIT = 256 * 1024  # Argo caps outputs.result at 256 kB
_HANDLING_RESULTS = {"Failed", "Errored", "AllFailed", "AnySucceeded", "Omitted"}
_DEADLINE_MSG = "Pod was active on the node longer than the specified deadline"
_WF_DEADLINE_MSG = "Step exceeded its deadline"


@dataclass
class Node:
    """One node of the run, as in Argo's ``status.nodes``."""

    id: str
    name: str
    display_name: str
    type: str  # DAG, Steps, StepGroup, TaskGroup, Pod, Retry, Skipped
    template_name: str | None
    phase: str = PENDING
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    parent_id: str | None = None
    children: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # parameters: {name: value}, result, exitCode
    log_path: Path | None = None
    pod_name: str | None = None

    @property
    def fulfilled(self) -> bool:
        return self.phase in _FULFILLED

    @property
    def completed(self) -> bool:
        return self.phase in _COMPLETED

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (timestamps as RFC 3339, paths as strings)."""
        return {
            "id": self.id,
            "name": self.name,
            "displayName": self.display_name,
            "type": self.type,
            "templateName": self.template_name,
            "phase": self.phase,
            "message": self.message,
            "startedAt": _ts(self.started_at),
            "finishedAt": _ts(self.finished_at),
            "children": list(self.children),
            "inputs": dict(self.inputs),
            "outputs": copy.deepcopy(self.outputs),
            "logPath": str(self.log_path) if self.log_path else None,
            "podName": self.pod_name,
        }


NodeCallback = Callable[[Node], None]


@dataclass(frozen=True, kw_only=True)
class EngineOptions:
    """Everything the engine is configured with (no globals)."""

    #: Maximum number of container/script processes at once (``spec.parallelism`` can lower it).
    parallelism: int = 4
    #: Directory under which each run gets ``<run_dir>/<workflow name>``; a temp dir if None.
    run_dir: Path | None = None
    #: Resolves ``secretKeyRef`` (name, key) -> value or None.
    secret_resolver: SecretResolver | None = None
    #: Runs container/script nodes; a :class:`LocalProcessRunner` if None.
    runner: Runner | None = None
    #: Called (from engine threads, serialized) whenever a node is created or changes phase.
    on_node: NodeCallback | None = None
    #: ``{{workflow.namespace}}`` when the document has none.
    namespace: str = "default"
    #: Overrides ``metadata.name``/``generateName``.
    workflow_name: str | None = None
    #: WorkflowTemplates (documents) that a ``spec.workflowTemplateRef`` may name, as on a cluster.
    templates: tuple[Mapping[str, Any], ...] = ()


@dataclass
class WorkflowResult:
    """The outcome of :meth:`Engine.run`."""

    name: str
    phase: str  # Succeeded, Failed or Error
    message: str
    nodes: dict[str, Node]
    root_id: str
    exit_handler_id: str | None
    outputs: dict[str, str]  # workflow.outputs.parameters
    run_dir: Path
    started_at: datetime
    finished_at: datetime

    @property
    def succeeded(self) -> bool:
        return self.phase == SUCCEEDED

    def node_by_name(self, name: str) -> Node:
        """The node with the full name ``name`` (e.g. ``wf.train(0:a)``); KeyError if none."""
        for node in self.nodes.values():
            if node.name == name:
                return node
        raise KeyError(name)

    def find(self, display_name: str) -> list[Node]:
        """Every node whose display name is ``display_name``."""
        return [n for n in self.nodes.values() if n.display_name == display_name]

    def pods(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.type == "Pod"]


class Engine:
    """Executes Argo Workflow documents on this machine."""

    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()

    @staticmethod
    def check(document: Mapping[str, Any], *, templates: Sequence[Mapping[str, Any]] = ()) -> None:
        """Up-front check only: raise :class:`UnsupportedFeatureError`/:class:`WorkflowInvalidError`."""
        check_document(resolve_template_ref(document, templates))

    def run(
        self, document: Mapping[str, Any], *, parameters: Mapping[str, Any] | None = None
    ) -> WorkflowResult:
        """Run ``document`` (resolving a ``workflowTemplateRef`` against ``options.templates``);
        ``parameters`` override ``spec.arguments.parameters``."""
        document = resolve_template_ref(document, self.options.templates)
        check_document(document)
        return _WorkflowRun(self.options, dict(document), dict(parameters or {})).execute()


# ------------------------------------------------------------------------------------------------ helpers


def _ts(t: datetime | None) -> str | None:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def _fnv32a(text: str) -> int:
    h = 0x811C9DC5
    for b in text.encode():
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def _to_str(v: Any) -> str:
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


def _truthy(v: Any, default: bool) -> bool:
    if v is None:
        return default
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _parse_duration(v: Any) -> float:
    """Go duration (``"1m30s"``, ``"500ms"``) or plain seconds."""
    text = _to_str(v).strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r}")
    return total


def _item_vars(item: Any) -> tuple[dict[str, str], str]:
    """Scope entries and the name label for one fan-out item (Argo's ``processItem``)."""
    if isinstance(item, dict):
        scope = {"item": _to_str(item)}
        labels = []
        for k, v in item.items():
            scope[f"item.{k}"] = _to_str(v)
            labels.append(f"{k}:{_to_str(v)}")
        return scope, ",".join(sorted(labels))
    return {"item": _to_str(item)}, _to_str(item)


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except (ValueError, TypeError):
        return value


def _node_scope(prefix: str, node: Node) -> dict[str, str]:
    scope = {
        f"{prefix}.id": node.id,
        f"{prefix}.status": node.phase,
    }
    if node.started_at:
        scope[f"{prefix}.startedAt"] = _ts(node.started_at) or ""
    if node.finished_at:
        scope[f"{prefix}.finishedAt"] = _ts(node.finished_at) or ""
    outputs = node.outputs or {}
    if outputs.get("result") is not None:
        scope[f"{prefix}.outputs.result"] = outputs["result"]
    if outputs.get("exitCode") is not None:
        scope[f"{prefix}.exitCode"] = outputs["exitCode"]
        scope[f"{prefix}.outputs.exitCode"] = outputs["exitCode"]
    for name, value in (outputs.get("parameters") or {}).items():
        scope[f"{prefix}.outputs.parameters.{name}"] = value
    return scope


def _aggregate_scope(prefix: str, children: list[Node], declared: Sequence[str] = ()) -> dict[str, str]:
    """Argo's ``processAggregateNodeOutputs``: JSON lists over the children, in item order.

    Only *succeeded* children contribute (a failed edge's partial output must not be aggregated), and
    every output parameter the template declares is defined, as ``[]`` if no child produced it, so a
    ``depends: train.AllFailed`` consumer can still resolve ``{{tasks.train.outputs.parameters.x}}``.
    """
    results: list[Any] = []
    params: list[dict[str, str]] = []
    per_name: dict[str, list[Any]] = {name: [] for name in declared}
    for child in children:
        if child.phase != SUCCEEDED or not child.outputs:
            continue
        if child.outputs.get("parameters"):
            params.append(dict(child.outputs["parameters"]))
            for name, value in child.outputs["parameters"].items():
                per_name.setdefault(name, []).append(_maybe_json(value))
        if child.outputs.get("result") is not None:
            results.append(_maybe_json(child.outputs["result"]))
    scope = {
        f"{prefix}.outputs.result": json.dumps(results),
        f"{prefix}.outputs.parameters": json.dumps(params),
    }
    for name, values in per_name.items():
        scope[f"{prefix}.outputs.parameters.{name}"] = json.dumps(values)
    return scope


class _NodeError(EngineError):
    """Turns the node it happens in into phase Error with this message."""


@dataclass
class _DagState:
    task_nodes: dict[str, Node] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    running: int = 0
    stop: bool = False


# ------------------------------------------------------------------------------------------------ the run


class _WorkflowRun:
    def __init__(self, options: EngineOptions, doc: dict[str, Any], parameters: dict[str, Any]) -> None:
        self.options = options
        self.doc = copy.deepcopy(doc)
        self.spec: dict[str, Any] = self.doc["spec"]
        meta = self.doc.get("metadata") or {}
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        self.name: str = (
            options.workflow_name or meta.get("name") or f"{meta.get('generateName', 'workflow-')}{suffix}"
        )
        self.namespace: str = meta.get("namespace") or options.namespace
        self.templates: dict[str, dict[str, Any]] = {t["name"]: t for t in self.spec["templates"]}
        self.runner: Runner = options.runner or LocalProcessRunner()

        base = Path(options.run_dir) if options.run_dir else Path(tempfile.mkdtemp(prefix="edgefed-engine-"))
        base.mkdir(parents=True, exist_ok=True)
        run_dir = base / self.name
        n = 1
        while run_dir.exists():
            n += 1
            run_dir = base / f"{self.name}-{n}"
        run_dir.mkdir(parents=True)
        self.run_dir = run_dir

        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self._cb_lock = threading.Lock()
        self.nodes: dict[str, Node] = {}
        self.wf_outputs: dict[str, str] = {}
        self.gscope: dict[str, str] = self._global_scope(meta, parameters)

        limit = max(1, int(options.parallelism))
        if self.spec.get("parallelism") is not None:
            limit = max(1, min(limit, int(_to_str(self.spec["parallelism"]))))
        self.pod_slots = threading.BoundedSemaphore(limit)

        self.deadline: float | None = None
        self.deadline_hit = threading.Event()
        if self.spec.get("activeDeadlineSeconds") is not None:
            self.deadline_seconds = float(_to_str(self.spec["activeDeadlineSeconds"]))
        else:
            self.deadline_seconds = None

    # -- scope
    def _global_scope(self, meta: Mapping[str, Any], overrides: dict[str, Any]) -> dict[str, str]:
        created = datetime.now(UTC)
        scope = {
            "workflow.name": self.name,
            "workflow.namespace": self.namespace,
            "workflow.uid": str(uuid.uuid4()),
            "workflow.serviceAccountName": _to_str(self.spec.get("serviceAccountName") or "default"),
            "workflow.creationTimestamp": _ts(created) or "",
            "workflow.mainEntrypoint": self.spec["entrypoint"],
            "workflow.status": RUNNING,
        }
        for k, v in (meta.get("labels") or {}).items():
            scope[f"workflow.labels.{k}"] = _to_str(v)
        for k, v in (meta.get("annotations") or {}).items():
            scope[f"workflow.annotations.{k}"] = _to_str(v)
        declared = (self.spec.get("arguments") or {}).get("parameters") or []
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
                value = _to_str(overrides[name])
            elif "value" in p:
                value = _to_str(p["value"])
            elif "default" in p:
                value = _to_str(p["default"])
            else:
                problems.append(f"spec.arguments.parameters[{i}] (name: {name}): no value supplied")
                continue
            enum = p.get("enum")
            if enum and value not in [_to_str(e) for e in enum]:
                problems.append(
                    f"spec.arguments.parameters[{i}] (name: {name}): value {value!r} not in enum {enum}"
                )
            values[name] = value
        if problems:
            raise WorkflowInvalidError(problems)
        # Values may refer to workflow.* variables (e.g. {{workflow.name}}).
        for name, value in values.items():
            values[name] = substitute(value, scope, strict=False)
            scope[f"workflow.parameters.{name}"] = values[name]
        scope["workflow.parameters"] = json.dumps([{"name": k, "value": v} for k, v in values.items()])
        return scope

    def global_scope(self) -> dict[str, str]:
        with self.lock:
            return dict(self.gscope)

    def _set_global_output(self, name: str, value: str) -> None:
        with self.lock:
            self.wf_outputs[name] = value
            self.gscope[f"workflow.outputs.parameters.{name}"] = value

    # -- nodes
    def _node_id(self, name: str) -> str:
        if name == self.name:
            return self.name
        return f"{self.name}-{_fnv32a(name)}"

    def _new_node(
        self, name: str, display: str, type_: str, template: str | None, parent: Node | None
    ) -> Node:
        node = Node(
            id=self._node_id(name),
            name=name,
            display_name=display,
            type=type_,
            template_name=template,
            parent_id=parent.id if parent else None,
        )
        with self.lock:
            self.nodes[node.id] = node
            if parent is not None:
                parent.children.append(node.id)
        self._notify(node)
        return node

    def _set_phase(self, node: Node, phase: str, message: str | None = None) -> None:
        with self.cond:
            node.phase = phase
            if message is not None:
                node.message = message
            now = datetime.now(UTC)
            if phase == RUNNING and node.started_at is None:
                node.started_at = now
            if phase in _FULFILLED:
                if node.started_at is None:
                    node.started_at = now
                node.finished_at = now
            self.cond.notify_all()
        self._notify(node)

    def _notify(self, node: Node) -> None:
        cb = self.options.on_node
        if cb is None:
            return
        with self._cb_lock:
            try:
                cb(node)
            except Exception:  # a broken progress callback must not break the run
                traceback.print_exc()

    def _skip_node(
        self, name: str, display: str, template: str | None, parent: Node, phase: str, message: str
    ) -> Node:
        node = self._new_node(name, display, "Skipped", template, parent)
        self._set_phase(node, phase, message)
        return node

    def _children(self, node: Node) -> list[Node]:
        with self.lock:
            return [self.nodes[c] for c in node.children]

    # -- entry point
    def execute(self) -> WorkflowResult:
        started = datetime.now(UTC)
        timer = None
        if self.deadline_seconds is not None:
            self.deadline = time.monotonic() + self.deadline_seconds
            timer = threading.Timer(self.deadline_seconds, self._deadline_fired)
            timer.daemon = True
            timer.start()
        try:
            root = self.execute_template(
                name=self.name,
                display=self.name,
                template_name=self.spec["entrypoint"],
                arguments={},
                parent=None,
            )
        finally:
            if timer is not None:
                timer.cancel()
        status = {SUCCEEDED: SUCCEEDED, SKIPPED: SUCCEEDED, OMITTED: SUCCEEDED, FAILED: FAILED}.get(
            root.phase, ERROR
        )
        phase, message = status, root.message
        if self.deadline_hit.is_set() and status != SUCCEEDED:
            phase, message = FAILED, f"{_WF_DEADLINE_MSG} (activeDeadlineSeconds: {self.deadline_seconds:g})"
        exit_id = None
        if self.spec.get("onExit"):
            with self.lock:
                self.gscope["workflow.status"] = phase
                self.gscope["workflow.failures"] = json.dumps(self._failures())
            exit_node = self.execute_template(
                name=f"{self.name}.onExit",
                display=f"{self.name}.onExit",
                template_name=self.spec["onExit"],
                arguments={},
                parent=None,
                exit_handler=True,
            )
            exit_id = exit_node.id
            if phase == SUCCEEDED and exit_node.phase in (FAILED, ERROR):
                phase, message = (
                    exit_node.phase,
                    exit_node.message or f"exit handler {exit_node.phase.lower()}",
                )
        return WorkflowResult(
            name=self.name,
            phase=phase,
            message=message,
            nodes=dict(self.nodes),
            root_id=root.id,
            exit_handler_id=exit_id,
            outputs=dict(self.wf_outputs),
            run_dir=self.run_dir,
            started_at=started,
            finished_at=datetime.now(UTC),
        )

    def _deadline_fired(self) -> None:
        self.deadline_hit.set()
        with self.cond:
            self.cond.notify_all()

    def _failures(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "displayName": n.display_name,
                    "message": n.message,
                    "templateName": n.template_name,
                    "phase": n.phase,
                    "podName": n.pod_name or "",
                    "finishedAt": _ts(n.finished_at),
                }
                for n in self.nodes.values()
                if n.type == "Pod" and n.phase in (FAILED, ERROR)
            ]

    # -- templates
    def execute_template(
        self,
        *,
        name: str,
        display: str,
        template_name: str,
        arguments: dict[str, str],
        parent: Node | None,
        exit_handler: bool = False,
    ) -> Node:
        tmpl = self.templates[template_name]
        kind = template_kind(tmpl)
        if kind == "dag":
            type_ = "DAG"
        elif kind == "steps":
            type_ = "Steps"
        else:
            type_ = "Retry" if tmpl.get("retryStrategy") else "Pod"
        node = self._new_node(name, display, type_, template_name, parent)
        try:
            inputs = self._resolve_inputs(tmpl, arguments)
            node.inputs = inputs
            scope = self.global_scope()
            for k, v in inputs.items():
                scope[f"inputs.parameters.{k}"] = v
            scope["inputs.parameters"] = json.dumps([{"name": k, "value": v} for k, v in inputs.items()])
            if kind == "dag":
                self._run_dag(node, tmpl, scope, exit_handler)
            elif kind == "steps":
                self._run_steps(node, tmpl, scope, exit_handler)
            elif type_ == "Retry":
                self._run_retry(node, tmpl, scope, exit_handler)
            else:
                self._run_pod(node, tmpl, scope, 0, exit_handler)
        except (_NodeError, UnresolvedVariableError, ExpressionError, ValueError) as exc:
            self._set_phase(node, ERROR, str(exc))
        except Exception as exc:  # an engine bug must not hang the run: report it on the node
            self._set_phase(node, ERROR, f"engine error: {exc.__class__.__name__}: {exc}")
            traceback.print_exc()
        if not node.fulfilled:
            self._set_phase(node, ERROR, node.message or "node did not complete")
        return node

    def _resolve_inputs(self, tmpl: dict[str, Any], arguments: Mapping[str, str]) -> dict[str, str]:
        values: dict[str, str] = {}
        for p in (tmpl.get("inputs") or {}).get("parameters") or []:
            name = p["name"]
            if name in arguments:
                value = arguments[name]
            elif "value" in p:
                value = _to_str(p["value"])
            elif "default" in p:
                value = _to_str(p["default"])
            else:
                raise _NodeError(f"inputs.parameters.{name} was not supplied")
            value = substitute(value, self.global_scope(), where=f"inputs.parameters.{name}")
            enum = p.get("enum")
            if enum and value not in [_to_str(e) for e in enum]:
                raise _NodeError(f"inputs.parameters.{name}: value {value!r} is not in enum {enum}")
            values[name] = value
        return values

    def _limiter(self, tmpl: dict[str, Any], scope: Mapping[str, str]) -> threading.BoundedSemaphore | None:
        if tmpl.get("parallelism") is None:
            return None
        n = int(substitute(_to_str(tmpl["parallelism"]), scope, where="parallelism"))
        return threading.BoundedSemaphore(max(1, n))

    @contextlib.contextmanager
    def _limited(self, sem: threading.BoundedSemaphore | None) -> Iterator[None]:
        if sem is None:
            yield
            return
        sem.acquire()
        try:
            yield
        finally:
            sem.release()

    # -- pods
    def _run_retry(self, node: Node, tmpl: dict[str, Any], scope: dict[str, str], exit_handler: bool) -> None:
        rs = substitute_obj(tmpl["retryStrategy"], scope, where="retryStrategy")
        limit = int(_to_str(rs["limit"])) if rs.get("limit") is not None else None
        policy = rs.get("retryPolicy") or "OnFailure"
        if policy not in ("Always", "OnFailure", "OnError", "OnTransientError"):
            raise _NodeError(f"retryStrategy.retryPolicy: unknown policy {policy!r}")
        backoff = rs.get("backoff") or {}
        duration = _parse_duration(backoff["duration"]) if backoff.get("duration") is not None else 0.0
        factor = float(_to_str(backoff["factor"])) if backoff.get("factor") is not None else 1.0
        max_duration = (
            _parse_duration(backoff["maxDuration"]) if backoff.get("maxDuration") is not None else None
        )
        self._set_phase(node, RUNNING)
        first_start = time.monotonic()
        attempt = 0
        while True:
            child = self._new_node(
                f"{node.name}({attempt})", f"{node.display_name}({attempt})", "Pod", node.template_name, node
            )
            self._run_pod(child, tmpl, scope, attempt, exit_handler)
            node.outputs = child.outputs
            if child.phase == SUCCEEDED:
                break
            retryable = (child.phase == FAILED and policy in ("Always", "OnFailure")) or (
                child.phase == ERROR and policy in ("Always", "OnError", "OnTransientError")
            )
            if not retryable or (limit is not None and attempt >= limit):
                break
            if self.deadline_hit.is_set() and not exit_handler:
                break
            wait = duration * (factor**attempt) if duration else 0.0
            if max_duration is not None and time.monotonic() - first_start + wait > max_duration:
                self._set_phase(node, child.phase, "Max duration limit exceeded")
                return
            if wait > 0 and self.deadline_hit.wait(wait) and not exit_handler:
                break  # the workflow deadline passed while backing off
            attempt += 1
        self._set_phase(node, child.phase, child.message)

    def _pod_deadline(
        self, tmpl: dict[str, Any], scope: Mapping[str, str], exit_handler: bool
    ) -> float | None:
        deadlines = []
        if tmpl.get("activeDeadlineSeconds") is not None:
            secs = float(
                substitute(_to_str(tmpl["activeDeadlineSeconds"]), scope, where="activeDeadlineSeconds")
            )
            deadlines.append(time.monotonic() + secs)
        if self.deadline is not None and not exit_handler:
            deadlines.append(self.deadline)
        return min(deadlines) if deadlines else None

    def _prepare_pod(
        self, node: Node, tmpl: dict[str, Any], scope: dict[str, str], attempt: int, node_dir: Path
    ) -> tuple[list[str], dict[str, str], list[str], dict[str, Any]]:
        tmp = node_dir / "tmp"
        kind = "script" if "script" in tmpl else "container"
        raw = copy.deepcopy({k: tmpl[k] for k in (kind, "outputs") if k in tmpl})
        raw["artifacts"] = copy.deepcopy((tmpl.get("inputs") or {}).get("artifacts") or [])

        # /tmp mapping on the literal template text, before parameters are substituted.
        def mapped(v: Any) -> Any:
            return map_tmp_paths(v, tmp) if isinstance(v, str) else v

        body = raw[kind]
        body["command"] = [mapped(x) for x in body.get("command") or []]
        body["args"] = [mapped(x) for x in body.get("args") or []]
        if "source" in body:
            body["source"] = mapped(body["source"])
        for e in body.get("env") or []:
            if "value" in e:
                e["value"] = mapped(_to_str(e["value"]))
        for p in (raw.get("outputs") or {}).get("parameters") or []:
            vf = p.get("valueFrom") or {}
            if "path" in vf:
                vf["path"] = mapped(vf["path"])
        for artifact in raw["artifacts"]:
            path = _to_str(artifact.get("path", ""))
            if not path.startswith("/tmp/"):
                raise _NodeError(
                    f"input artifact '{artifact.get('name')}': path {path!r} must be under /tmp/ here"
                )
            artifact["path"] = mapped(path)

        local = dict(scope)
        local["retries"] = str(attempt)
        local["pod.name"] = node.pod_name or node.id
        local["node.name"] = node.name
        resolved = substitute_obj(raw, local, where=f"template '{node.template_name}'")
        for artifact in resolved[
            "artifacts"
        ]:  # raw artifacts: Argo writes their data before the main container
            target = Path(artifact["path"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_to_str(artifact["raw"]["data"]), encoding="utf-8")
            if "mode" in artifact:
                target.chmod(int(artifact["mode"]))
        body = resolved[kind]
        argv = [_to_str(x) for x in body["command"]] + [_to_str(x) for x in body.get("args") or []]
        if kind == "script":
            script = node_dir / "script"
            script.write_text(_to_str(body["source"]), encoding="utf-8")
            script.chmod(0o755)
            argv.append(str(script))
        env: dict[str, str] = {"TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
        secrets: list[str] = []
        for e in body.get("env") or []:
            if "value" in e:
                env[e["name"]] = _to_str(e["value"])
                continue
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref is None:
                env[e["name"]] = ""
                continue
            resolver = self.options.secret_resolver
            value = resolver(str(ref.get("name")), str(ref.get("key"))) if resolver else None
            if value is None:
                if _truthy(ref.get("optional"), False):
                    continue
                raise _NodeError(
                    f"env {e['name']}: secret '{ref.get('name')}' key '{ref.get('key')}' not found"
                )
            env[e["name"]] = value
            secrets.append(value)
        return argv, env, secrets, resolved.get("outputs") or {}

    def _run_pod(
        self, node: Node, tmpl: dict[str, Any], scope: dict[str, str], attempt: int, exit_handler: bool
    ) -> None:
        node.pod_name = f"{self.name}-{node.template_name}-{_fnv32a(node.name)}"
        node_dir = self.run_dir / "nodes" / node.id
        for sub in ("work", "tmp"):
            (node_dir / sub).mkdir(parents=True, exist_ok=True)
        node.log_path = node_dir / "main.log"
        node.log_path.touch()
        stdout_path = node_dir / "stdout"
        stdout_path.touch()
        try:
            argv, env, secrets, outputs_spec = self._prepare_pod(node, tmpl, scope, attempt, node_dir)
            deadline = self._pod_deadline(tmpl, scope, exit_handler)
        except (_NodeError, UnresolvedVariableError, ValueError) as exc:
            self._set_phase(node, ERROR, str(exc))
            return
        with self.pod_slots:
            if self.deadline_hit.is_set() and not exit_handler:
                self._set_phase(node, FAILED, _WF_DEADLINE_MSG)
                return
            self._set_phase(node, RUNNING)
            execution = NodeExecution(
                node_id=node.id,
                node_name=node.name,
                argv=argv,
                env=env,
                cwd=node_dir / "work",
                deadline=deadline,
                log_path=node.log_path,
                stdout_path=stdout_path,
                redact=tuple(secrets),
            )
            try:
                rc = self.runner.run(execution)
            except NodeDeadlineExceededError as exc:
                wf = (
                    self.deadline is not None
                    and not exit_handler
                    and time.monotonic() >= self.deadline - 0.05
                )
                self._set_phase(node, FAILED, _WF_DEADLINE_MSG if wf else str(exc))
                return
            except RunnerError as exc:
                self._set_phase(node, ERROR, str(exc))
                return
        result = stdout_path.read_text(encoding="utf-8", errors="replace")[:_RESULT_LIMIT].strip()
        node.outputs = {"result": result, "exitCode": str(rc), "parameters": {}}
        try:
            self._collect_outputs(node, outputs_spec, node_dir / "work", rc == 0)
        except _NodeError as exc:
            self._set_phase(node, ERROR, str(exc))
            return
        if rc == 0:
            self._set_phase(node, SUCCEEDED)
        else:
            self._set_phase(node, FAILED, f"Error (exit code {rc})")

    def _collect_outputs(self, node: Node, outputs_spec: dict[str, Any], cwd: Path, strict: bool) -> None:
        params: dict[str, str] = node.outputs.setdefault("parameters", {})
        for p in outputs_spec.get("parameters") or []:
            vf = p.get("valueFrom") or {}
            value: str | None = None
            if "path" in vf:
                path = Path(vf["path"])
                if not path.is_absolute():
                    path = cwd / path
                try:
                    value = path.read_text(encoding="utf-8", errors="replace").rstrip("\r\n")
                except OSError as exc:
                    if "default" in vf:
                        value = _to_str(vf["default"])
                    elif strict:
                        raise _NodeError(
                            f"failed to read output parameter '{p['name']}' from {vf['path']}: "
                            f"{exc.strerror or exc}"
                        ) from exc
            elif "value" in p:
                value = _to_str(p["value"])
            if value is None:
                continue
            params[p["name"]] = value
            if p.get("globalName"):
                self._set_global_output(p["globalName"], value)

    def _boundary_outputs(self, node: Node, tmpl: dict[str, Any], scope: Mapping[str, str]) -> None:
        """outputs.parameters of a dag/steps template (``valueFrom.parameter``)."""
        params: dict[str, str] = {}
        for p in (tmpl.get("outputs") or {}).get("parameters") or []:
            vf = p.get("valueFrom") or {}
            if "parameter" in vf:
                try:
                    value = substitute(
                        _to_str(vf["parameter"]), scope, where=f"outputs.parameters.{p['name']}"
                    )
                except UnresolvedVariableError:
                    if "default" not in vf:
                        raise
                    value = _to_str(vf["default"])
            elif "value" in p:
                value = substitute(_to_str(p["value"]), scope, where=f"outputs.parameters.{p['name']}")
            elif "default" in vf:
                value = _to_str(vf["default"])
            else:
                continue
            params[p["name"]] = value
            if p.get("globalName"):
                self._set_global_output(p["globalName"], value)
        if params:
            node.outputs = {"parameters": params}

    # -- tasks and steps (shared)
    def _expand(self, spec: dict[str, Any], scope: Mapping[str, str], where: str) -> list[Any] | None:
        """The items of withItems/withParam (None if the task/step does not fan out)."""
        if "withItems" in spec:
            return list(substitute_obj(spec["withItems"], scope, where=f"{where}.withItems"))
        if "withParam" in spec:
            text = substitute(_to_str(spec["withParam"]), scope, where=f"{where}.withParam")
            try:
                items = json.loads(text)
            except ValueError as exc:
                raise _NodeError(
                    f"withParam value could not be parsed as a JSON list: {text.strip()}"
                ) from exc
            if not isinstance(items, list):
                raise _NodeError(f"withParam value could not be parsed as a JSON list: {text.strip()}")
            return items
        return None

    def _invoke(
        self,
        *,
        spec: dict[str, Any],
        name: str,
        display: str,
        scope: Mapping[str, str],
        parent: Node,
        limiter: threading.BoundedSemaphore | None,
        exit_handler: bool,
    ) -> Node:
        """Resolve one task/step (after fan-out), check ``when`` and run its template."""
        template = spec["template"]
        try:
            args_spec = (spec.get("arguments") or {}).get("parameters") or []
            arguments = {}
            for a in args_spec:
                if "value" not in a:
                    raise _NodeError(f"arguments.parameters.{a.get('name')}: no value")
                arguments[a["name"]] = substitute(
                    _to_str(a["value"]), scope, where=f"arguments.parameters.{a['name']}"
                )
            when = spec.get("when")
            if when is not None:
                when_text = substitute(_to_str(when), scope, where="when")
                if not evaluate_when(when_text):
                    return self._skip_node(
                        name, display, template, parent, SKIPPED, f"when '{when_text}' evaluated false"
                    )
        except (_NodeError, UnresolvedVariableError, ExpressionError) as exc:
            return self._skip_node(name, display, template, parent, ERROR, str(exc))
        with self._limited(limiter):
            return self.execute_template(
                name=name,
                display=display,
                template_name=template,
                arguments=arguments,
                parent=parent,
                exit_handler=exit_handler,
            )

    def _fan_out(
        self,
        *,
        spec: dict[str, Any],
        items: list[Any],
        base_name: str,
        base_display: str,
        scope: Mapping[str, str],
        parent: Node,
        limiter: threading.BoundedSemaphore | None,
        exit_handler: bool,
    ) -> list[Node]:
        """Run one child per item in parallel threads; return the children in item order."""
        results: list[Node | None] = [None] * len(items)
        threads = []
        for i, item in enumerate(items):
            item_scope, label = _item_vars(item)
            child_scope = {**scope, **item_scope}

            def work(i: int = i, label: str = label, child_scope: dict[str, str] = child_scope) -> None:
                results[i] = self._guarded(
                    lambda: self._invoke(
                        spec=spec,
                        name=f"{base_name}({i}:{label})",
                        display=f"{base_display}({i}:{label})",
                        scope=child_scope,
                        parent=parent,
                        limiter=limiter,
                        exit_handler=exit_handler,
                    ),
                    f"{base_name}({i}:{label})",
                    f"{base_display}({i}:{label})",
                    spec.get("template"),
                    parent,
                )

            t = threading.Thread(target=work, name=f"edgefed-{base_display}({i})", daemon=True)
            threads.append(t)
            t.start()
        for t in threads:
            t.join()
        done = [n for n in results if n is not None]
        with self.lock:  # item order, not the order the threads happened to create the nodes in
            parent.children = [n.id for n in done]
        return done

    def _guarded(
        self, fn: Callable[[], Node], name: str, display: str, template: str | None, parent: Node
    ) -> Node:
        try:
            return fn()
        except Exception as exc:
            traceback.print_exc()
            return self._skip_node(name, display, template, parent, ERROR, f"engine error: {exc}")

    # -- DAG
    def _run_dag(self, node: Node, tmpl: dict[str, Any], scope: dict[str, str], exit_handler: bool) -> None:
        dag = tmpl["dag"]
        tasks: list[dict[str, Any]] = dag["tasks"]
        by_name = {t["name"]: t for t in tasks}
        logic: dict[str, DependsExpr | None] = {}
        for t in tasks:
            text = dependency_logic(t, by_name)
            logic[t["name"]] = parse_depends(text) if text else None
        deps = {n: (e.tasks if e else []) for n, e in logic.items()}
        dependents: dict[str, list[str]] = {n: [] for n in by_name}
        for n, ds in deps.items():
            for d in ds:
                dependents[d].append(n)
        fail_fast_raw = dag.get("failFast")
        if isinstance(fail_fast_raw, str):
            fail_fast_raw = substitute(fail_fast_raw, scope, where="dag.failFast")
        fail_fast = _truthy(fail_fast_raw, True)
        limiter = self._limiter(tmpl, scope)
        state = _DagState()
        self._set_phase(node, RUNNING)

        def handled(name: str, phase: str) -> bool:
            cont = by_name[name].get("continueOn") or {}
            if (phase == FAILED and cont.get("failed")) or (phase == ERROR and cont.get("error")):
                return True
            for dep in dependents[name]:
                expr = logic[dep]
                assert expr is not None
                for result, negated in expr.references(name):
                    if negated or (result in _HANDLING_RESULTS):
                        return True
            return False

        def run_task(task: dict[str, Any], task_scope: dict[str, str]) -> None:
            tname = task["name"]
            result = self._guarded(
                lambda: self._run_dag_task(node, task, task_scope, limiter, exit_handler),
                f"{node.name}.{tname}",
                tname,
                task.get("template"),
                node,
            )
            with self.cond:
                state.task_nodes[tname] = result
                state.finished.add(tname)
                state.running -= 1
                if result.phase in (FAILED, ERROR) and fail_fast and not handled(tname, result.phase):
                    state.stop = True
                self.cond.notify_all()

        with self.cond:
            while True:
                progressed = False
                for task in tasks:
                    tname = task["name"]
                    if tname in state.started:
                        continue
                    if not all(d in state.finished for d in deps[tname]):
                        continue
                    expr = logic[tname]
                    execute = True
                    if expr is not None:
                        results = {d: self._task_results(state.task_nodes[d]) for d in deps[tname]}
                        execute = expr.evaluate(results)
                    if not execute:
                        # Omitting starts nothing, so it still happens after failFast stopped scheduling.
                        state.started.add(tname)
                        progressed = True
                        state.task_nodes[tname] = self._skip_node(
                            f"{node.name}.{tname}",
                            tname,
                            task.get("template"),
                            node,
                            OMITTED,
                            "omitted: depends condition not met",
                        )
                        state.finished.add(tname)
                        continue
                    if state.stop or (self.deadline_hit.is_set() and not exit_handler):
                        continue
                    state.started.add(tname)
                    progressed = True
                    task_scope = dict(scope)
                    task_scope.update(self._outputs_scope(state.task_nodes, "tasks"))
                    task_scope.update(
                        {k: v for k, v in self.gscope.items() if k.startswith("workflow.outputs.")}
                    )
                    state.running += 1
                    threading.Thread(
                        target=run_task, args=(task, task_scope), name=f"edgefed-task-{tname}", daemon=True
                    ).start()
                if state.running == 0 and not progressed:
                    break
                if not progressed:
                    self.cond.wait()

        with self.lock:  # declaration order for the tree
            node.children = [state.task_nodes[t["name"]].id for t in tasks if t["name"] in state.task_nodes]
        phase, message = self._assess_dag(node, tasks, deps, state)
        if state.stop and phase == SUCCEEDED:
            phase = FAILED
        if self.deadline_hit.is_set() and not exit_handler and len(state.started) < len(tasks):
            phase, message = FAILED, _WF_DEADLINE_MSG
        if phase == SUCCEEDED:
            final_scope = dict(scope)
            final_scope.update(self._outputs_scope(state.task_nodes, "tasks"))
            final_scope.update(self.global_scope())
            self._boundary_outputs(node, tmpl, final_scope)
        self._set_phase(node, phase, message)

    def _run_dag_task(
        self,
        dag_node: Node,
        task: dict[str, Any],
        scope: dict[str, str],
        limiter: threading.BoundedSemaphore | None,
        exit_handler: bool,
    ) -> Node:
        tname = task["name"]
        name = f"{dag_node.name}.{tname}"
        try:
            items = self._expand(task, scope, f"tasks.{tname}")
        except (_NodeError, UnresolvedVariableError) as exc:
            return self._skip_node(name, tname, task.get("template"), dag_node, ERROR, str(exc))
        if items is None:
            return self._invoke(
                spec=task,
                name=name,
                display=tname,
                scope=scope,
                parent=dag_node,
                limiter=limiter,
                exit_handler=exit_handler,
            )
        if not items:
            return self._skip_node(
                name, tname, task.get("template"), dag_node, SKIPPED, "Skipped, empty params"
            )
        group = self._new_node(name, tname, "TaskGroup", task.get("template"), dag_node)
        self._set_phase(group, RUNNING)
        children = self._fan_out(
            spec=task,
            items=items,
            base_name=name,
            base_display=tname,
            scope=scope,
            parent=group,
            limiter=limiter,
            exit_handler=exit_handler,
        )
        phase, message = SUCCEEDED, ""
        for child in children:
            if child.phase in (FAILED, ERROR):
                phase, message = child.phase, f"child '{child.name}' {child.phase.lower()}"
        self._set_phase(group, phase, message)
        return group

    def _declared_outputs(self, node: Node) -> list[str]:
        return self._declared_outputs_of(node.template_name)

    def _declared_outputs_of(self, template: str | None) -> list[str]:
        tmpl = self.templates.get(template or "") or {}
        return [p["name"] for p in (tmpl.get("outputs") or {}).get("parameters") or []]

    def _task_results(self, node: Node) -> TaskResults:
        any_succeeded = all_failed = False
        if node.type == "TaskGroup":
            children = self._children(node)
            any_succeeded = any(c.phase == SUCCEEDED for c in children)
            all_failed = bool(children) and all(c.phase == FAILED for c in children)
        return TaskResults(
            succeeded=node.phase == SUCCEEDED,
            failed=node.phase == FAILED,
            errored=node.phase == ERROR,
            skipped=node.phase == SKIPPED,
            omitted=node.phase == OMITTED,
            daemoned=False,
            any_succeeded=any_succeeded,
            all_failed=all_failed,
        )

    def _outputs_scope(self, finished: Mapping[str, Node], kind: str) -> dict[str, str]:
        scope: dict[str, str] = {}
        with self.lock:
            items = list(finished.items())
        for tname, tnode in items:
            prefix = f"{kind}.{tname}"
            if tnode.type == "TaskGroup":
                scope.update(_aggregate_scope(prefix, self._children(tnode), self._declared_outputs(tnode)))
                scope[f"{prefix}.status"] = tnode.phase
                scope[f"{prefix}.id"] = tnode.id
            else:
                scope.update(_node_scope(prefix, tnode))
        return scope

    def _assess_dag(
        self, node: Node, tasks: list[dict[str, Any]], deps: dict[str, list[str]], state: _DagState
    ) -> tuple[str, str]:
        # failFast only changes *when* Argo stops assessing; the engine assesses once, after every
        # started node finished, so every target is considered and the first failure is reported.
        """Argo's ``assessDAGPhase`` (see the module docstring)."""
        by_name = {t["name"]: t for t in tasks}
        depended = {d for ds in deps.values() for d in ds}
        targets = sorted(n for n in by_name if n not in depended)
        memo: dict[str, tuple[str, str] | None] = {}

        def incoming(dep: str) -> list[tuple[str, str]]:
            dn = state.task_nodes.get(dep)
            if dn is None:
                return []
            if dn.type == "TaskGroup":
                kids = self._children(dn)
                if kids:
                    return [(c.phase, c.name) if c.completed else (dn.phase, dn.name) for c in kids]
            if dn.completed:
                return [(dn.phase, dn.name)]
            b = branch(dep)
            return [b] if b else []

        def branch(name: str) -> tuple[str, str] | None:
            if name in memo:
                return memo[name]
            tn = state.task_nodes.get(name)
            if tn is None:
                result = None
            elif tn.completed:
                result = (tn.phase, tn.name)
            else:
                flows = [f for d in deps[name] for f in incoming(d)]
                bad = [f for f in flows if f[0] in (FAILED, ERROR)]
                result = bad[0] if bad else (SUCCEEDED, tn.name)
            memo[name] = result
            return result

        phase, message = SUCCEEDED, ""
        for tname in targets:
            b = branch(tname)
            if b is None:
                phase = FAILED
                message = message or f"task '{node.name}.{tname}' was not run after an earlier failure"
                continue
            bphase, origin = b
            if bphase in (FAILED, ERROR):
                cont = by_name[tname].get("continueOn") or {}
                if (bphase == FAILED and cont.get("failed")) or (bphase == ERROR and cont.get("error")):
                    continue
                if phase == SUCCEEDED or not message:
                    phase = bphase
                    message = f"task '{origin}' {'failed' if bphase == FAILED else 'errored'}"
        return phase, message

    # -- steps
    def _run_steps(self, node: Node, tmpl: dict[str, Any], scope: dict[str, str], exit_handler: bool) -> None:
        limiter = self._limiter(tmpl, scope)
        local = dict(scope)
        self._set_phase(node, RUNNING)
        for gi, group in enumerate(tmpl["steps"]):
            if self.deadline_hit.is_set() and not exit_handler:
                self._set_phase(node, FAILED, _WF_DEADLINE_MSG)
                return
            sg = self._new_node(f"{node.name}[{gi}]", f"[{gi}]", "StepGroup", node.template_name, node)
            self._set_phase(sg, RUNNING)
            local.update({k: v for k, v in self.global_scope().items() if k.startswith("workflow.outputs.")})
            runs: list[tuple[dict[str, Any], Callable[[], Node], str, str]] = []
            finished: list[tuple[dict[str, Any], Node]] = []  # (step, node) for every child of the group
            expanded: dict[str, list[Node]] = {}
            direct: dict[str, Node] = {}
            for step in group:
                sname = step["name"]
                base = f"{sg.name}.{sname}"
                try:
                    items = self._expand(step, local, f"steps.{sname}")
                except (_NodeError, UnresolvedVariableError) as exc:
                    direct[sname] = self._skip_node(base, sname, step.get("template"), sg, ERROR, str(exc))
                    finished.append((step, direct[sname]))
                    continue
                if items is None:
                    call = self._step_call(step, base, sname, local, sg, limiter, exit_handler)
                    runs.append((step, call, base, sname))
                elif not items:
                    direct[sname] = self._skip_node(
                        base, sname, step.get("template"), sg, SKIPPED, "Skipped, empty params"
                    )
                    finished.append((step, direct[sname]))
                else:
                    expanded[sname] = []
                    for i, item in enumerate(items):
                        item_scope, label = _item_vars(item)
                        cname, cdisplay = f"{base}({i}:{label})", f"{sname}({i}:{label})"
                        call = self._step_call(
                            step, cname, cdisplay, {**local, **item_scope}, sg, limiter, exit_handler
                        )
                        runs.append((step, call, cname, cdisplay))
            threads = []
            out: list[Node | None] = [None] * len(runs)
            for idx, (step, call, cname, cdisplay) in enumerate(runs):

                def work(
                    idx: int = idx,
                    call: Callable[[], Node] = call,
                    cname: str = cname,
                    cdisplay: str = cdisplay,
                    step: dict[str, Any] = step,
                    out: list[Node | None] = out,
                    sg: Node = sg,
                ) -> None:
                    out[idx] = self._guarded(call, cname, cdisplay, step.get("template"), sg)

                t = threading.Thread(target=work, name=f"edgefed-step-{cdisplay}", daemon=True)
                threads.append(t)
                t.start()
            for t in threads:
                t.join()
            for (step, _call, _n, _d), child in zip(runs, out, strict=True):
                assert child is not None
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
            with self.lock:
                sg.children = ordered
            failed = None
            for step, child in finished:
                if child.phase in (FAILED, ERROR):
                    cont = step.get("continueOn") or {}
                    if (child.phase == FAILED and cont.get("failed")) or (
                        child.phase == ERROR and cont.get("error")
                    ):
                        continue
                    failed = child
                    break
            for sname, child in direct.items():
                local.update(_node_scope(f"steps.{sname}", child))
            for sname, kids in expanded.items():
                step = next(s for s in group if s["name"] == sname)
                declared = self._declared_outputs_of(step.get("template"))
                local.update(
                    _aggregate_scope(f"steps.{sname}", [k for k in kids if k.type != "Skipped"], declared)
                )
            if failed is not None:
                msg = f"child '{failed.name}' {'failed' if failed.phase == FAILED else 'errored'}"
                self._set_phase(sg, FAILED, msg)
                self._set_phase(node, FAILED, msg)
                return
            self._set_phase(sg, SUCCEEDED)
        local.update(self.global_scope())
        self._boundary_outputs(node, tmpl, local)
        self._set_phase(node, SUCCEEDED)

    def _step_call(
        self,
        step: dict[str, Any],
        name: str,
        display: str,
        scope: dict[str, str],
        parent: Node,
        limiter: threading.BoundedSemaphore | None,
        exit_handler: bool,
    ) -> Callable[[], Node]:
        return lambda: self._invoke(
            spec=step,
            name=name,
            display=display,
            scope=scope,
            parent=parent,
            limiter=limiter,
            exit_handler=exit_handler,
        )
