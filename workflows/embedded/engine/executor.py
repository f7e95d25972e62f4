"""The engine: executes an Argo Workflow document on this machine.

Hand-written because no Python library executes Argo Workflow documents; the behaviour follows the
argo-workflows controller (``workflow/controller/operator.go``, ``dag.go``, ``steps.go``). The rooms:
:mod:`.nodes` (the node record and the result), :mod:`.scope` (variables and parameters), :mod:`.pods`
(prepare, run, outputs, retries, deadlines), :mod:`.dag` and :mod:`.steps` (scheduling), :mod:`.fanout`
(what tasks and steps share: fan-out and ``continueOn``). This module runs a workflow: the entrypoint,
then the exit handler, and decides the workflow's phase.

Scheduling model
    One asyncio event loop per run coordinates everything: every template invocation, DAG task, step and
    fan-out item is a coroutine, and every node is created and changes phase on the loop's thread (so
    the ``on_node`` callback is serialized). Only ``Runner.run`` blocks; it executes on at most
    ``parallelism`` threads (engine option, bounded by ``spec.parallelism``), each holding one of as many
    pod slots. A run therefore holds ``1 + parallelism`` threads (plus whatever the runner starts per
    process) however many tasks and items the workflow has. A template's own ``parallelism`` bounds how
    many of its children run at once. The loop runs on the calling thread, or on a thread of its own when
    the caller is inside an event loop already.

Workflow phase and exit handler (``operator.go``)
    The entrypoint and the exit handler get ``spec.arguments`` as their arguments, so their inputs take
    those values by name (``executeTemplate(..., woc.execWf.Spec.Arguments)``; a task's or step's own
    exit hook is :mod:`.fanout`'s). The workflow takes the entrypoint node's phase (Skipped/Omitted
    count as Succeeded). The workflow
    deadline (``activeDeadlineSeconds``) fails running nodes with "Step exceeded its deadline" and stops
    scheduling; the workflow fails with that message. The exit handler (``spec.onExit``, node
    ``<workflow>.onExit``) runs after that, deadline or not, and sees ``workflow.status`` and
    ``workflow.failures``. A Succeeded workflow whose exit handler fails takes the handler's phase
    ("if main workflow succeeded, but the exit node was unsuccessful the workflow is now considered
    unsuccessful").

Workflow objects, children and mutexes
    Every run has a Workflow object in the engine's store (:mod:`.objects`, ``EngineOptions.workflows``):
    a top-level run registers it (its name must be free there, as on an API server), a child's was
    created by the resource node that started it (:mod:`.resource`). The run keeps its ``status``
    current and ends with ``WorkflowResult.metadata`` (labels and annotations after any patch) and
    ``.children`` (the child Workflows its resource templates ran, waited for before returning).
    Children run on the same event loop, sharing the store and the run directory base. A workflow's
    ``spec.synchronization.mutexes`` are taken before its entrypoint and held until it completes (it
    is Pending, "Waiting for <key> lock..." meanwhile); a template's, for its node (:mod:`.mutex`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import random
import string
import tempfile
import threading
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgefed.workflows.phases import Phase

from .dag import run_dag
from .document import check_document, resolve_template_ref, template_kind
from .errors import NodeDeadlineExceededError, NodeError, UnresolvedVariableError
from .expressions import ExpressionError, evaluate_when
from .fanout import Call, Siblings, run_exit_hook
from .mutex import Mutexes, lock_dir, mutex_keys
from .nodes import Node, NodeCallback, NodeRecord, NodeType, WorkflowResult, timestamp
from .objects import API_VERSION, KIND, StatusPublisher, WorkflowExistsError, WorkflowObjects
from .params import substitute
from .pods import PENDING_TIMEOUT_MESSAGE, WORKFLOW_DEADLINE_MESSAGE, Pods, WorkflowDeadline, pending_deadline
from .resource import Family, Resources
from .runners import LocalProcessRunner, Runner
from .scope import WorkflowScope, to_str
from .secrets import SecretResolver
from .steps import run_steps

__all__ = ["Engine", "EngineOptions", "Node", "NodeCallback", "WorkflowResult"]

_KINDS = {"dag": NodeType.DAG, "steps": NodeType.STEPS}
#: The workflow's phase by its entrypoint's (anything else: Error).
_WORKFLOW_PHASE = {
    Phase.SUCCEEDED: Phase.SUCCEEDED,
    Phase.SKIPPED: Phase.SUCCEEDED,
    Phase.OMITTED: Phase.SUCCEEDED,
    Phase.FAILED: Phase.FAILED,
}


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
    #: Called (from the engine's scheduling thread, serialized) whenever a node is created or changes phase.
    on_node: NodeCallback | None = None
    #: ``{{workflow.namespace}}`` when the document has none.
    namespace: str = "default"
    #: Overrides ``metadata.name``/``generateName``.
    workflow_name: str | None = None
    #: WorkflowTemplates (documents) that a ``spec.workflowTemplateRef`` may name, as on a cluster.
    templates: tuple[Mapping[str, Any], ...] = ()
    #: The Workflow objects runs register and resource templates create/get/patch (:mod:`.objects`);
    #: one in memory per :class:`Engine` if None.
    workflows: WorkflowObjects | None = None


class Engine:
    """Executes Argo Workflow documents on this machine."""

    def __init__(self, options: EngineOptions | None = None) -> None:
        options = options or EngineOptions()
        if options.workflows is None:
            options = replace(options, workflows=WorkflowObjects())
        self.options = options
        self._families: list[Family] = []
        self._lock = threading.Lock()
        self._terminated = False

    def terminate(self) -> None:
        """From any thread: end this engine's runs now (and any it starts later), as ``argo terminate``
        does: running steps fail, nothing new starts, the runs end Failed ("terminated")."""
        with self._lock:
            self._terminated = True
            families = list(self._families)
        for family in families:
            if family.loop is not None and not family.loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: that run ended
                    family.loop.call_soon_threadsafe(family.terminate)

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
        run = _WorkflowRun(self.options, dict(document), dict(parameters or {}))
        with self._lock:
            self._families.append(run.family)
            if self._terminated:
                run.deadline.terminated = True
        try:
            return _run_loop(run)
        finally:
            with self._lock:
                self._families.remove(run.family)


def _run_loop(run: _WorkflowRun) -> WorkflowResult:
    """``run.execute()`` on an event loop: this thread's, or a thread of its own inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run.execute())
    outcome: list[WorkflowResult] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(asyncio.run(run.execute()))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="edgefed-engine", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return outcome[0]


def _workflow_name(options: EngineOptions, meta: Mapping[str, Any]) -> str:
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    return options.workflow_name or meta.get("name") or f"{meta.get('generateName', 'workflow-')}{suffix}"


def _new_run_dir(base_dir: Path | None, name: str) -> Path:
    base = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="edgefed-engine-"))
    base.mkdir(parents=True, exist_ok=True)
    run_dir = base / name
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = base / f"{name}-{n}"
    run_dir.mkdir(parents=True)
    return run_dir


class _WorkflowRun:
    """One execution of a checked document: implements :class:`~.fanout.Scheduler`.

    A top-level run registers its Workflow object in the store (:class:`WorkflowExistsError` if the name
    is taken there); a child run (``family`` given) was registered by the resource node that created it.
    """

    def __init__(
        self,
        options: EngineOptions,
        doc: dict[str, Any],
        parameters: dict[str, Any],
        *,
        family: Family | None = None,
        run_dir: Path | None = None,
    ) -> None:
        self.options = options
        self.doc = copy.deepcopy(doc)
        self.spec: dict[str, Any] = self.doc["spec"]
        meta = self.doc.get("metadata") or {}
        self.name = _workflow_name(options, meta)
        self.namespace = meta.get("namespace") or options.namespace
        self.templates: dict[str, dict[str, Any]] = {t["name"]: t for t in self.spec["templates"]}
        self.run_dir = run_dir or _new_run_dir(options.run_dir, self.name)
        store = options.workflows if options.workflows is not None else WorkflowObjects()
        self.family = family or Family(store=store, run_root=self.run_dir.parent)
        self.status = StatusPublisher(
            store=self.family.store,
            name=self.name,
            outputs=lambda: self.workflow.outputs,
            changed=self.family.changed,
        )
        self.records = NodeRecord(workflow_name=self.name, on_node=self._node_changed)
        self.workflow = WorkflowScope(
            name=self.name,
            namespace=meta.get("namespace") or options.namespace,
            spec=self.spec,
            metadata=meta,
            overrides=parameters,
        )
        limit = max(1, int(options.parallelism))
        if self.spec.get("parallelism") is not None:
            limit = max(1, min(limit, int(to_str(self.spec["parallelism"]))))
        seconds = self.spec.get("activeDeadlineSeconds")
        self.deadline = WorkflowDeadline(float(to_str(seconds)) if seconds is not None else None)
        self.uid = self.workflow.snapshot()["workflow.uid"]
        self.mutexes = Mutexes(root=lock_dir(options.run_dir))
        self.resources = Resources(
            family=self.family,
            records=self.records,
            workflow=self.workflow,
            name=self.name,
            namespace=self.namespace,
            uid=self.uid,
            spawn=self._spawn,
        )
        self.pods = Pods(
            records=self.records,
            workflow=self.workflow,
            runner=options.runner or LocalProcessRunner(),
            run_dir=self.run_dir,
            secret_resolver=options.secret_resolver,
            parallelism=limit,
            deadline=self.deadline,
            resources=self.resources,
        )
        if family is None:
            self._register(meta)

    def _register(self, meta: Mapping[str, Any]) -> None:
        """The top-level Workflow object, as ``argo submit`` would create it."""
        metadata = {k: copy.deepcopy(v) for k, v in meta.items() if k != "generateName"}
        metadata.update(
            name=self.name,
            namespace=self.namespace,
            uid=self.uid,
            creationTimestamp=timestamp(datetime.now(UTC)),
        )
        obj = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": self.spec}
        try:
            self.family.store.create(obj)
        except WorkflowExistsError:
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()
            raise

    def _spawn(self, obj: dict[str, Any], run_dir: Path) -> _WorkflowRun:
        """A child Workflow's run (created by a resource template); WorkflowInvalidError if it cannot run."""
        document = resolve_template_ref(obj, self.options.templates)
        check_document(document)
        options = replace(self.options, workflow_name=obj["metadata"]["name"])
        return _WorkflowRun(options, dict(document), {}, family=self.family, run_dir=run_dir)

    def _node_changed(self, node: Node) -> None:
        try:
            if self.options.on_node is not None:
                self.options.on_node(node)
        finally:
            self.status.on_node(node)

    async def execute(self) -> WorkflowResult:
        self.family.live(self.name)
        self.family.loop = asyncio.get_running_loop()
        self.family.deadlines.append(self.deadline)
        if self.deadline.terminated:  # terminated before it started
            self.deadline.expire()
        try:
            keys = mutex_keys(self.spec.get("synchronization"), self.namespace)
            await self.mutexes.acquire(
                "workflow",
                keys,
                waiting=self.status.waiting,
                stop=lambda: self.deadline.terminated,
                stop_message="Stopped with strategy 'Terminate'",
            )
            started = datetime.now(UTC)
            self.status.running(started)
            try:
                root, exit_node = await self._entrypoint_and_exit_handler()
            finally:
                self.pods.close()
            phase, message = self._phase(root)
            if exit_node is not None and phase == Phase.SUCCEEDED and Phase.is_failure(exit_node.phase):
                phase = exit_node.phase
                message = exit_node.message or f"exit handler {exit_node.phase.lower()}"
            finished = datetime.now(UTC)
            self.status.finished(phase, message, finished)
        finally:
            self.mutexes.release_all()
            self.deadline.cancel.close()  # no step of this run waits on it any more
            self.family.ended(self.name)
        children = await self.resources.join()
        stored = self.family.store.get(self.name) or {}
        return WorkflowResult(
            name=self.name,
            phase=phase,
            message=message,
            nodes=dict(self.records.nodes),
            root_id=root.id,
            exit_handler_id=exit_node.id if exit_node else None,
            outputs=dict(self.workflow.outputs),
            run_dir=self.run_dir,
            started_at=started,
            finished_at=finished,
            metadata=stored.get("metadata") or copy.deepcopy(self.doc.get("metadata") or {}),
            children=children,
        )

    async def _entrypoint_and_exit_handler(self) -> tuple[Node, Node | None]:
        timer = self.deadline.start(asyncio.get_running_loop())
        try:
            root = await self.execute_template(  # spec.arguments feed the entrypoint's inputs (operator.go)
                name=self.name,
                display=self.name,
                template_name=self.spec["entrypoint"],
                arguments=dict(self.workflow.arguments),
                parent=None,
            )
        finally:
            if timer is not None:
                timer.cancel()
        if not self.spec.get("onExit"):
            return root, None
        self.workflow.set_status(self._phase(root)[0], self.records.failures())
        exit_node = await self.execute_template(
            name=f"{self.name}.onExit",
            display=f"{self.name}.onExit",
            template_name=self.spec["onExit"],
            arguments=dict(self.workflow.arguments),  # GetExitHook(spec.arguments)
            parent=None,
            exit_handler=True,
        )
        return root, exit_node

    def _phase(self, root: Node) -> tuple[Phase, str]:
        """The workflow's phase from its entrypoint node (before the exit handler)."""
        status = _WORKFLOW_PHASE.get(root.phase, Phase.ERROR)
        if self.deadline.terminated and status != Phase.SUCCEEDED:
            return Phase.FAILED, "Stopped with strategy 'Terminate'"  # Argo's message for argo terminate
        if self.deadline.hit and status != Phase.SUCCEEDED:
            return (
                Phase.FAILED,
                f"{WORKFLOW_DEADLINE_MESSAGE} (activeDeadlineSeconds: {self.deadline.seconds:g})",
            )
        return status, root.message

    # -- templates
    async def execute_template(
        self,
        *,
        name: str,
        display: str,
        template_name: str,
        arguments: dict[str, str],
        parent: Node | None,
        exit_handler: bool = False,
    ) -> Node:
        """A node for ``template_name`` run to a fulfilled phase (errors become phase Error)."""
        tmpl = self.templates[template_name]
        kind = template_kind(tmpl)
        type_ = _KINDS.get(kind or "") or (NodeType.RETRY if tmpl.get("retryStrategy") else NodeType.POD)
        node = self.records.new(name, display, type_, template_name, parent)
        try:
            node.inputs = self.workflow.resolve_inputs(tmpl, arguments)
            scope = self.workflow.template_scope(node.inputs)
            await self._lock_template(node, tmpl, scope, exit_handler)
            if type_ == NodeType.DAG:
                await run_dag(self, node, tmpl, scope, exit_handler)
            elif type_ == NodeType.STEPS:
                await run_steps(self, node, tmpl, scope, exit_handler)
            elif type_ == NodeType.RETRY:
                await self.pods.run_retry(node, tmpl, scope, exit_handler)
            else:
                await self.pods.run_pod(node, tmpl, scope, 0, exit_handler)
        except NodeDeadlineExceededError as exc:  # pendingTimeout or workflow deadline, waiting for a mutex
            self.records.set_phase(node, Phase.FAILED, str(exc))
        except (NodeError, UnresolvedVariableError, ExpressionError, ValueError) as exc:
            self.records.set_phase(node, Phase.ERROR, str(exc))
        except Exception as exc:  # an engine bug must not hang the run: report it on the node
            self.records.set_phase(node, Phase.ERROR, f"engine error: {exc.__class__.__name__}: {exc}")
            traceback.print_exc()
        finally:
            self.mutexes.release(f"node:{node.id}")
        if not node.fulfilled:
            self.records.set_phase(node, Phase.ERROR, node.message or "node did not complete")
        return node

    async def _lock_template(
        self, node: Node, tmpl: dict[str, Any], scope: dict[str, str], exit_handler: bool
    ) -> None:
        """The template's ``synchronization.mutexes`` for ``node`` (Pending, "Waiting for ..." meanwhile).

        Bounded by the template's ``pendingTimeout`` (Argo checks it while a node waits for a lock too)
        and the workflow deadline: :class:`NodeDeadlineExceededError` (node Failed).
        """
        keys = mutex_keys(tmpl.get("synchronization"), self.namespace)
        if not keys:
            return
        await self.mutexes.acquire(
            f"node:{node.id}",
            keys,
            waiting=lambda message: self.records.set_phase(node, Phase.PENDING, message),
            until=pending_deadline(node, tmpl, scope),
            stop=lambda: self.deadline.stops(exit_handler),
            timeout_message=PENDING_TIMEOUT_MESSAGE,
            stop_message=WORKFLOW_DEADLINE_MESSAGE,
        )
        if node.message:  # Argo clears the waiting message once the lock is held
            self.records.set_phase(node, Phase.PENDING, "")

    async def invoke(self, spec: dict[str, Any], call: Call, siblings: Siblings) -> Node | None:
        """Resolve one task/step (after fan-out), check ``when``, run its template, then its exit hook
        (None: the template's failFast kept it from starting, see :func:`~.fanout.fail_fast_gate`)."""
        template = spec["template"]
        try:
            when = spec.get("when")  # first: a skipped task's arguments are never resolved (dag.go)
            if when is not None:
                when_text = substitute(to_str(when), call.scope, where="when")
                if not evaluate_when(when_text):
                    return self.records.skip(
                        call.name,
                        call.display,
                        template,
                        siblings.parent,
                        Phase.SKIPPED,
                        f"when '{when_text}' evaluated false",
                    )
            arguments = {}
            for a in (spec.get("arguments") or {}).get("parameters") or []:
                if "value" not in a:
                    raise NodeError(f"arguments.parameters.{a.get('name')}: no value")
                arguments[a["name"]] = substitute(
                    to_str(a["value"]), call.scope, where=f"arguments.parameters.{a['name']}"
                )
        except (NodeError, UnresolvedVariableError, ExpressionError) as exc:
            node = self.records.skip(
                call.name, call.display, template, siblings.parent, Phase.ERROR, str(exc)
            )
            await run_exit_hook(self, spec, node, call.scope, siblings)
            return node
        async with siblings.limiter or contextlib.nullcontext():
            if siblings.fail_fast is not None and siblings.fail_fast():
                return None
            node = await self.execute_template(
                name=call.name,
                display=call.display,
                template_name=template,
                arguments=arguments,
                parent=siblings.parent,
                exit_handler=siblings.exit_handler,
            )
            await run_exit_hook(self, spec, node, call.scope, siblings)  # onExit / hooks.exit (fanout)
            return node
