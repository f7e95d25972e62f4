"""Pods: a container/script node prepared, run through the :class:`~.runners.Runner`, its outputs
collected, and retried.

Prepare
    The node gets a private directory ``<run dir>/nodes/<id>`` with ``work`` (the process's cwd), ``tmp``
    (what ``/tmp`` written literally in the template maps to, see :mod:`.params`), ``main.log`` and
    ``stdout``. Raw input artifacts are written before the process starts (as Argo's init container
    does); a script's ``source`` becomes an executable file appended to the command. Env values are
    resolved; a ``secretKeyRef`` goes through the secret resolver and its value is redacted from the logs.

Run
    At most ``parallelism`` processes run at once (engine option, bounded by ``spec.parallelism``): a node
    takes a slot before it turns Running, and ``Runner.run`` executes on a pool of as many threads, so the
    threads are bounded by ``parallelism`` whatever the number of nodes. A node's deadline is the earlier
    of its template's ``activeDeadlineSeconds`` (counted from when it turns Running, as Kubernetes counts
    a pod's from its start, not while it waits to be scheduled) and the workflow's; the runner kills the
    process when it passes: node Failed with Argo's message "Pod was active on the node longer than the
    specified deadline", or "Step exceeded its deadline" when it was the workflow's (argo-workflows
    ``workflow/controller/operator.go``). A resource node (:mod:`.resource`) takes a slot and has its
    deadlines like a container, its wait for the child cut short at the deadline.

Pending
    Waiting for a slot is this engine's Pending (on a cluster: a pod not yet scheduled or started). A
    template's ``pendingTimeout`` (Argo v4) bounds it, counted from the node's creation: past it the
    node fails with Argo's message "timeout" and never runs (``operator.go`` ``checkTemplateTimeouts``).
    As in Argo it has no effect on a template with a ``retryStrategy`` (see :func:`pending_deadline`).

Outputs
    ``outputs.result`` is stdout (capped at 256 kB as in Argo), ``exitCode`` the exit code;
    ``outputs.parameters`` are read from ``valueFrom.path`` (relative paths from the working directory),
    or ``valueFrom.default``; a missing file errors the node only if the process succeeded. A
    ``globalName`` publishes the value as ``workflow.outputs.parameters.<globalName>``.

Retries (``operator.go`` ``processNodeRetries``)
    ``retryPolicy`` Always / OnFailure (the default: Failed attempts) / OnError and OnTransientError (Error
    attempts), up to ``limit`` retries; ``backoff.duration`` (a Go duration or seconds) times
    ``factor``\\ :sup:`attempt` between attempts; past ``backoff.maxDuration`` the Retry node takes the
    last attempt's phase with "Max duration limit exceeded". After the workflow deadline nothing is
    retried (except in the exit handler). When the policy and the limit allow another attempt, a
    ``retryStrategy.expression`` (:mod:`.expr`, over ``lastRetry.exitCode``/``.status``/``.duration``/
    ``.message`` and ``retries``, see :func:`~.scope.last_retry_scope`) must also be true, else the Retry
    node ends with "retryStrategy.expression evaluated to false" (checked before the backoff, which Argo
    would wait out first). An attempt's template sees the previous attempt's ``{{lastRetry.*}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from edgefed.workflows.phases import Phase

from .cancel import Cancel
from .errors import NodeDeadlineExceededError, NodeError, RunnerError, UnresolvedVariableError
from .expr import evaluate_bool
from .nodes import Node, NodeRecord, NodeType, fnv32a
from .params import map_tmp_paths, substitute, substitute_obj
from .runners import NodeExecution, Runner
from .scope import WorkflowScope, last_retry_scope, to_str, truthy
from .secrets import SecretResolver

if TYPE_CHECKING:
    from .resource import Resources

__all__ = [
    "DEADLINE_MESSAGE",
    "PENDING_TIMEOUT_MESSAGE",
    "WORKFLOW_DEADLINE_MESSAGE",
    "Pods",
    "WorkflowDeadline",
    "parse_duration",
    "pending_deadline",
]

DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
#: A node past its ``pendingTimeout``: Argo's ``ErrTimeout`` ("timeout"), the message ``operator.go``
#: ``executeTemplate`` marks the node Failed with (and ``dag.go`` the task node).
PENDING_TIMEOUT_MESSAGE = "timeout"
WORKFLOW_DEADLINE_MESSAGE = "Step exceeded its deadline"
_RESULT_LIMIT = 256 * 1024  # Argo caps outputs.result at 256 kB
_POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

_T = TypeVar("_T")


def pending_deadline(node: Node, tmpl: Mapping[str, Any], scope: Mapping[str, str]) -> float | None:
    """When ``node`` fails if it is still Pending: its creation plus the template's ``pendingTimeout``.

    Argo (``operator.go`` ``checkTemplateTimeouts``) counts from the node's start (its creation) and
    checks only the node it executes by the task's name: for a template with a ``retryStrategy`` that
    is the Retry node, which is Running, never Pending, so a retried pod's attempts have no pending
    limit (the caller passes None for them).
    """
    value = tmpl.get("pendingTimeout")
    if value in (None, ""):
        return None
    return node.created + parse_duration(substitute(to_str(value), scope, where="pendingTimeout"))


def parse_duration(v: Any) -> float:
    """Go duration (``"1m30s"``, ``"500ms"``) or plain seconds."""
    text = to_str(v).strip()
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


class WorkflowDeadline:
    """``spec.activeDeadlineSeconds``: once it passes, nothing new starts (but the exit handler)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        #: ``time.monotonic()`` deadline, set by :meth:`start`.
        self.at: float | None = None
        #: True once :meth:`expire` ended the run early (rather than the clock).
        self.terminated = False
        self._hit = asyncio.Event()
        #: Fired by :meth:`expire`: running steps (waited for in threads) are killed at once.
        self.cancel = Cancel()

    def start(self, loop: asyncio.AbstractEventLoop) -> asyncio.TimerHandle | None:
        if self.seconds is None:
            return None
        self.at = time.monotonic() + self.seconds
        return loop.call_later(self.seconds, self._hit.set)

    @property
    def hit(self) -> bool:
        return self._hit.is_set()

    def expire(self) -> None:
        """Pass the deadline now (``argo terminate``): running steps fail, nothing new starts.
        Call it in the run's event loop."""
        self.terminated = True
        self._hit.set()
        self.cancel.fire()

    def stops(self, exit_handler: bool) -> bool:
        """Whether the deadline keeps a node from starting (the exit handler runs after it)."""
        return self._hit.is_set() and not exit_handler

    async def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the deadline passes first; True if it has passed."""
        if self._hit.is_set():
            return True
        try:
            await asyncio.wait_for(self._hit.wait(), seconds)
        except TimeoutError:
            return False
        return True


class _Threads:
    """At most ``size`` daemon threads, started on demand, running blocking calls for the event loop.

    Not a ``ThreadPoolExecutor``: its threads are joined at interpreter exit, so an interrupted run
    would wait there for every running process; these are daemons, like the engine's threads always were.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._busy = 0

    async def run(self, fn: Callable[[Any], _T], arg: Any) -> _T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._busy += 1
        if self._busy > len(self._threads) and len(self._threads) < self.size:
            thread = threading.Thread(target=self._work, name="edgefed-pod", daemon=True)
            self._threads.append(thread)
            thread.start()
        self._jobs.put((loop, future, fn, arg))
        try:
            return await future
        finally:
            self._busy -= 1

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, fn, arg = job
            try:
                result, error = fn(arg), None
            except BaseException as exc:  # handed to the awaiting coroutine
                result, error = None, exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: the run was interrupted
                loop.call_soon_threadsafe(_settle, future, result, error)

    def close(self) -> None:
        """Let every thread end once the jobs queued before are done."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads.clear()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Pods:
    """Runs the container/script nodes of one workflow run."""

    def __init__(
        self,
        *,
        records: NodeRecord,
        workflow: WorkflowScope,
        runner: Runner,
        run_dir: Path,
        secret_resolver: SecretResolver | None,
        parallelism: int,
        deadline: WorkflowDeadline,
        resources: Resources | None = None,
    ) -> None:
        self.records = records
        self.resources = resources
        self.workflow = workflow
        self.runner = runner
        self.run_dir = run_dir
        self.secret_resolver = secret_resolver
        self.deadline = deadline
        self._slots = asyncio.Semaphore(parallelism)
        self._threads = _Threads(parallelism)

    def close(self) -> None:
        self._threads.close()

    # -- retries
    async def run_retry(
        self, node: Node, tmpl: dict[str, Any], scope: dict[str, str], exit_handler: bool
    ) -> None:
        """A Retry node: attempts ``<node>(<n>)`` as Pod children (see the module docstring)."""
        rs = substitute_obj(tmpl["retryStrategy"], scope, where="retryStrategy")
        limit = int(to_str(rs["limit"])) if rs.get("limit") is not None else None
        policy = rs.get("retryPolicy") or "OnFailure"
        if policy not in _POLICIES:
            raise NodeError(f"retryStrategy.retryPolicy: unknown policy {policy!r}")
        backoff = rs.get("backoff") or {}
        duration = parse_duration(backoff["duration"]) if backoff.get("duration") is not None else 0.0
        factor = float(to_str(backoff["factor"])) if backoff.get("factor") is not None else 1.0
        max_duration = (
            parse_duration(backoff["maxDuration"]) if backoff.get("maxDuration") is not None else None
        )
        self.records.set_phase(node, Phase.RUNNING)
        first_start = time.monotonic()
        attempt = 0
        last: Node | None = None
        while True:
            child = self.records.new(
                f"{node.name}({attempt})",
                f"{node.display_name}({attempt})",
                NodeType.POD,
                node.template_name,
                node,
            )
            attempt_scope = {**scope, **last_retry_scope(last, attempt, expression=False)}
            await self.run_pod(child, tmpl, attempt_scope, attempt, exit_handler)
            node.outputs = child.outputs
            last = child
            if child.phase == Phase.SUCCEEDED:
                break
            retryable = (child.phase == Phase.FAILED and policy in ("Always", "OnFailure")) or (
                child.phase == Phase.ERROR and policy in ("Always", "OnError", "OnTransientError")
            )
            if not retryable or (limit is not None and attempt >= limit):
                break
            # processNodeRetries: once the policy and the limit allow another attempt, the expression decides
            if rs.get("expression") and not evaluate_bool(
                to_str(rs["expression"]), last_retry_scope(child, attempt + 1, expression=True)
            ):
                self.records.set_phase(node, child.phase, "retryStrategy.expression evaluated to false")
                return
            if self.deadline.stops(exit_handler):
                break
            wait = duration * (factor**attempt) if duration else 0.0
            if max_duration is not None and time.monotonic() - first_start + wait > max_duration:
                self.records.set_phase(node, child.phase, "Max duration limit exceeded")
                return
            if wait > 0 and await self.deadline.wait(wait) and not exit_handler:
                break  # the workflow deadline passed while backing off
            attempt += 1
        self.records.set_phase(node, child.phase, child.message)

    # -- one pod
    async def run_pod(
        self, node: Node, tmpl: dict[str, Any], scope: dict[str, str], attempt: int, exit_handler: bool
    ) -> None:
        node.pod_name = f"{self.records.workflow_name}-{node.template_name}-{fnv32a(node.name)}"
        node_dir = self.run_dir / "nodes" / node.id
        for sub in ("work", "tmp"):
            (node_dir / sub).mkdir(parents=True, exist_ok=True)
        node.log_path = node_dir / "main.log"
        node.log_path.touch()
        stdout_path = node_dir / "stdout"
        stdout_path.touch()
        resource = "resource" in tmpl
        try:
            seconds = self._deadline_seconds(tmpl, scope)
            pending = None if tmpl.get("retryStrategy") else pending_deadline(node, tmpl, scope)
            if not resource:
                argv, env, secrets, outputs_spec = self._prepare(node, tmpl, scope, attempt, node_dir)
        except (NodeError, UnresolvedVariableError, ValueError) as exc:
            self.records.set_phase(node, Phase.ERROR, str(exc))
            return
        if not await self._take_slot(node, pending, exit_handler):
            return
        try:
            self.records.set_phase(node, Phase.RUNNING)
            if resource:
                await self._run_resource(
                    node, tmpl, scope, self._deadline(seconds, exit_handler), exit_handler
                )
                return
            execution = NodeExecution(
                node_id=node.id,
                node_name=node.name,
                argv=argv,
                env=env,
                cwd=node_dir / "work",
                deadline=self._deadline(seconds, exit_handler),
                log_path=node.log_path,
                stdout_path=stdout_path,
                redact=tuple(secrets),
                cancel=None if exit_handler else self.deadline.cancel,
            )
            try:
                rc = await self._threads.run(self.runner.run, execution)
            except NodeDeadlineExceededError as exc:
                wf = self._past_workflow_deadline(exit_handler)
                self.records.set_phase(node, Phase.FAILED, WORKFLOW_DEADLINE_MESSAGE if wf else str(exc))
                return
            except RunnerError as exc:
                self.records.set_phase(node, Phase.ERROR, str(exc))
                return
        finally:
            self._slots.release()
        result = stdout_path.read_text(encoding="utf-8", errors="replace")[:_RESULT_LIMIT].strip()
        node.outputs = {"result": result, "exitCode": str(rc), "parameters": {}}
        try:
            self._collect_outputs(node, outputs_spec, node_dir / "work", rc == 0)
        except NodeError as exc:
            self.records.set_phase(node, Phase.ERROR, str(exc))
            return
        if rc == 0:
            self.records.set_phase(node, Phase.SUCCEEDED)
        else:
            self.records.set_phase(node, Phase.FAILED, f"Error (exit code {rc})")

    async def _run_resource(
        self,
        node: Node,
        tmpl: dict[str, Any],
        scope: dict[str, str],
        deadline: float | None,
        exit_handler: bool,
    ) -> None:
        """A Running resource node (see :mod:`.resource`), its wait cut short at ``deadline``."""
        if self.resources is None:
            self.records.set_phase(node, Phase.ERROR, "resource templates need the engine's workflow store")
            return
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(self.resources.run(node, tmpl, scope), timeout)
        except TimeoutError:
            wf = self._past_workflow_deadline(exit_handler)
            self.records.set_phase(node, Phase.FAILED, WORKFLOW_DEADLINE_MESSAGE if wf else DEADLINE_MESSAGE)
        except (NodeError, UnresolvedVariableError, ValueError) as exc:
            self.records.set_phase(node, Phase.ERROR, str(exc))

    async def _take_slot(self, node: Node, pending: float | None, exit_handler: bool) -> bool:
        """Wait (Pending) for a pod slot; False if the node failed instead, the slot not taken.

        Past ``pending`` (``time.monotonic()``, see :func:`pending_deadline`) the node fails with Argo's
        pendingTimeout message; past the workflow deadline with "Step exceeded its deadline".
        """
        try:
            if pending is None or not self._slots.locked():
                await self._slots.acquire()
            else:
                await asyncio.wait_for(self._slots.acquire(), max(0.0, pending - time.monotonic()))
        except TimeoutError:
            self.records.set_phase(node, Phase.FAILED, PENDING_TIMEOUT_MESSAGE)
            return False
        if self.deadline.stops(exit_handler):
            self._slots.release()
            self.records.set_phase(node, Phase.FAILED, WORKFLOW_DEADLINE_MESSAGE)
            return False
        return True

    def _past_workflow_deadline(self, exit_handler: bool) -> bool:
        at = self.deadline.at
        return at is not None and not exit_handler and time.monotonic() >= at - 0.05

    @staticmethod
    def _deadline_seconds(tmpl: dict[str, Any], scope: Mapping[str, str]) -> float | None:
        """The template's ``activeDeadlineSeconds`` (None: none)."""
        if tmpl.get("activeDeadlineSeconds") is None:
            return None
        return float(substitute(to_str(tmpl["activeDeadlineSeconds"]), scope, where="activeDeadlineSeconds"))

    def _deadline(self, seconds: float | None, exit_handler: bool) -> float | None:
        """The node's deadline once it runs: ``seconds`` from now, or the workflow's if that is earlier."""
        deadlines = []
        if seconds is not None:
            deadlines.append(time.monotonic() + seconds)
        if self.deadline.at is not None and not exit_handler:
            deadlines.append(self.deadline.at)
        return min(deadlines) if deadlines else None

    def _prepare(
        self, node: Node, tmpl: dict[str, Any], scope: dict[str, str], attempt: int, node_dir: Path
    ) -> tuple[list[str], dict[str, str], list[str], dict[str, Any]]:
        """argv, env overlay, secret values to redact and the resolved ``outputs`` of the node."""
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
                e["value"] = mapped(to_str(e["value"]))
        for p in (raw.get("outputs") or {}).get("parameters") or []:
            vf = p.get("valueFrom") or {}
            if "path" in vf:
                vf["path"] = mapped(vf["path"])
        for artifact in raw["artifacts"]:
            path = to_str(artifact.get("path", ""))
            if not path.startswith("/tmp/"):
                raise NodeError(
                    f"input artifact '{artifact.get('name')}': path {path!r} must be under /tmp/ here"
                )
            artifact["path"] = mapped(path)

        local = dict(scope)
        local["retries"] = str(attempt)
        local["pod.name"] = node.pod_name or node.id
        local["node.name"] = node.name
        resolved = substitute_obj(raw, local, where=f"template '{node.template_name}'")
        for artifact in resolved["artifacts"]:  # raw artifacts: Argo writes them before the main container
            target = Path(artifact["path"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(to_str(artifact["raw"]["data"]), encoding="utf-8")
            if "mode" in artifact:
                target.chmod(int(artifact["mode"]))
        body = resolved[kind]
        env, secrets, own = self._env(body.get("env") or [], tmp, node)
        # The kubelet expands $(VAR) in command and args from the container's own env.
        argv = [expand_dependent(to_str(x), own) for x in body["command"]] + [
            expand_dependent(to_str(x), own) for x in body.get("args") or []
        ]
        if kind == "script":
            script = node_dir / "script"
            script.write_text(to_str(body["source"]), encoding="utf-8")
            script.chmod(0o755)
            argv.append(str(script))
        return argv, env, secrets, resolved.get("outputs") or {}

    def _env(
        self, entries: list[dict[str, Any]], tmp: Path, node: Node
    ) -> tuple[dict[str, str], list[str], dict[str, str]]:
        """The env overlay, the secret values in it, and the container's own variables (for $(VAR))."""
        env: dict[str, str] = {"TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
        own: dict[str, str] = {}
        secrets: list[str] = []
        for e in entries:
            if "value" in e:
                env[e["name"]] = own[e["name"]] = expand_dependent(to_str(e["value"]), own)
                continue
            field = (e.get("valueFrom") or {}).get("fieldRef")
            if field is not None:
                env[e["name"]] = own[e["name"]] = downward_field(str(field.get("fieldPath")), node)
                continue
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref is None:
                env[e["name"]] = own[e["name"]] = ""
                continue
            resolver = self.secret_resolver
            value = resolver(str(ref.get("name")), str(ref.get("key"))) if resolver else None
            if value is None:
                if truthy(ref.get("optional"), False):
                    continue
                raise NodeError(
                    f"env {e['name']}: secret '{ref.get('name')}' key '{ref.get('key')}' not found"
                )
            env[e["name"]] = own[e["name"]] = value
            secrets.append(value)
        return env, secrets, own

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
                        value = to_str(vf["default"])
                    elif strict:
                        raise NodeError(
                            f"failed to read output parameter '{p['name']}' from {vf['path']}: "
                            f"{exc.strerror or exc}"
                        ) from exc
            elif "value" in p:
                value = to_str(p["value"])
            if value is None:
                continue
            params[p["name"]] = value
            if p.get("globalName"):
                self.workflow.set_output(p["globalName"], value)


#: The downward API on one machine (``env[].valueFrom.fieldRef``): the pod's node is this host.
#: Hand-written: Kubernetes' own lives in the kubelet (pkg/fieldpath), not in any Python library.
DOWNWARD_FIELDS = ("metadata.name", "spec.nodeName", "status.hostIP", "status.podIP")
_LOOPBACK = "127.0.0.1"


def downward_field(path: str, node: Node) -> str:
    """The value the kubelet gives a ``fieldRef`` of ``path`` (one of :data:`DOWNWARD_FIELDS`)."""
    if path in ("status.hostIP", "status.podIP"):
        return _LOOPBACK
    if path == "spec.nodeName":
        return "localhost"
    if path == "metadata.name":
        return node.pod_name or node.id
    raise NodeError(f"env fieldRef {path!r}: expected one of {', '.join(DOWNWARD_FIELDS)}")


def expand_dependent(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' dependent-variable expansion (``$(VAR)``), as the kubelet applies it to command,
    args and env values (k8s.io/kubernetes third_party/forked/golang/expansion): ``$(VAR)`` of a
    defined variable becomes its value, ``$$`` becomes ``$``, anything else stays as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 >= len(text):
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            out.append(variables[name] if name in variables else text[i : end + 1])
            i = end + 1
        else:
            out.append("$" + following)
            i += 2
    return "".join(out)
