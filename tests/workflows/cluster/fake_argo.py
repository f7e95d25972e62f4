"""A loopback fake of the Argo server's REST API, for tests of everything that talks to one.

:class:`FakeArgo` is a ``ThreadingHTTPServer`` on ``127.0.0.1`` (a free port) serving the paths
Hera's ``WorkflowsService`` calls for workflows and workflow templates::

    POST/GET      /api/v1/workflow-templates/{ns}           create / list
    GET/PUT       /api/v1/workflow-templates/{ns}/{name}    get / update (resourceVersion checked)
    POST/GET      /api/v1/workflows/{ns}                    create (generateName honoured) / list
    GET/DELETE    /api/v1/workflows/{ns}/{name}             get / delete (its dependents with it)

Where it matters, it behaves as Argo v4's server and controller do (their source is cited):

* **validation** (``server/workflow/workflow_server.go`` → ``workflow/validate``): a create whose
  ``workflowTemplateRef`` names no WorkflowTemplate gets 404 ``workflowtemplate.argoproj.io "X" not
  found`` (the server's template informer's NotFound, kept as is by ``ToStatusError``); one with a
  parameter that has no value -- in the workflow or, merged under it, the template -- gets 400
  ``spec.arguments.P.value or spec.arguments.P.valueFrom is required``; so does a name over 63 chars;
* **TTL** (``workflow/gccontroller``): a workflow that ended is deleted ``ttlStrategy`` seconds after
  it finished (its own, else its WorkflowTemplate's: Argo's ``StoredWorkflowSpec``): Failed by
  ``secondsAfterFailure``, Succeeded by ``secondsAfterSuccess``, any end by
  ``secondsAfterCompletion``. Time is the fake's ``clock`` (a :class:`FakeClock` tests advance) and
  TTLs are multiplied by ``ttl_scale``. Deleting a workflow deletes the workflows whose
  ``ownerReferences`` name its uid, as Kubernetes' garbage collector does;
* **list lag**: the server lists from an informer cache, GETs from the API server: with
  ``list_lag = N`` a created workflow shows in lists only from the (N+1)-th list on; GET finds it at once;
  likewise the server validates ``workflowTemplateRef`` against its template informer: with
  ``template_lag = N`` a just-created WorkflowTemplate is "not found" by the next N workflow creates;
* the ``workflows.argoproj.io/phase`` and ``completed`` labels follow the phase, as the controller keeps them.

How a created workflow plays out:

* **playbook mode** (default): ``playbook(document)`` gives the ``status`` objects its GETs return
  in turn (see :mod:`tests.workflows.cluster.fake_playbooks`); seed more with :meth:`FakeArgo.add_workflow`;
* **executing mode**: ``runner`` (:class:`~tests.workflows.cluster.fake_runner.EngineRunner`) runs it
  on the embedded engine, whose Workflow objects are the fake's: status set as it goes, children
  created through :meth:`FakeArgo.create`, patches through :meth:`FakeArgo.patch_metadata`.

It records every request (method, path, query, headers, JSON body) and can be scripted:

* ``token``: requests without ``Authorization: Bearer <token>`` get 401 (``None``: no auth);
* :meth:`FakeArgo.fail`: the next N matching requests get an HTTP status (503, 500, 403, ...) or a
  dropped connection (``status=0``), before or after the request took effect (``after=True``
  mimics a response lost on the way back).

Use it as a context manager; leaving it shuts the server (and a runner) down and joins every
thread it started.

Why this module is long: it is one fake server, and its parts (routes, validation, TTL, lag, the
store executing mode writes to) share one lock and one store; split, each would reach into the others.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from tests.workflows.cluster.fake_playbooks import Playbook, default_playbook

__all__ = [
    "COMPLETED_LABEL",
    "PHASE_LABEL",
    "FakeArgo",
    "FakeClock",
    "FakeError",
    "Fault",
    "RecordedRequest",
    "Runner",
]

PHASE_LABEL = "workflows.argoproj.io/phase"
COMPLETED_LABEL = "workflows.argoproj.io/completed"
_TERMINAL = {"Succeeded", "Failed", "Error"}
_FAKE_KEYS = ("x-children", "x-annotations")
_MAX_NAME = 63


class FakeClock:
    """The fake's time in seconds: it moves only when a test calls :meth:`advance`."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class Runner(Protocol):
    """Executing mode: runs created workflows (threads of its own) until :meth:`close`."""

    def start(self, argo: FakeArgo, name: str) -> None: ...

    def close(self) -> None: ...


# -- requests and faults --------------------------------------------------------------------
@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method``/``path`` with ``status``.

    ``status=0`` drops the connection without a response. ``after=True`` lets the request take
    effect first (a response lost on the way back).
    """

    status: int
    times: int = 1
    method: str | None = None
    path: str | None = None  # regular expression searched in the path
    after: bool = False
    message: str = "the server is currently unable to handle the request"

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0
            and (self.method is None or self.method == method)
            and (self.path is None or re.search(self.path, path) is not None)
        )


class FakeError(Exception):
    """An error answer: HTTP ``status``, grpc-gateway's ``{"code", "message"}`` body."""

    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code if code is not None else _grpc_code(status)


def _grpc_code(status: int) -> int:
    return {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 500: 13, 503: 14}.get(status, 2)


def _selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Equality-based Kubernetes label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``."""
    for term in (t.strip() for t in selector.split(",") if t.strip()):
        if "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _merge_parameters(own: list[dict[str, Any]], template: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Argo's ``util.MergeParameters``: the workflow's, then the template's it does not set."""
    names = {p.get("name") for p in own}
    return [*own, *(p for p in template if p.get("name") not in names)]


@dataclass
class _Workflow:
    document: dict[str, Any]
    statuses: list[dict[str, Any]]
    index: int = 0
    gets: int = 0
    #: Lists still to come that do not show it (the informer has not seen it yet).
    unlisted: int = 0
    #: The fake clock's time when it was first seen ended (TTL counts from then).
    finished_at: float | None = None
    served: int = -1  # the highest status index whose x-children/x-annotations were applied

    @property
    def name(self) -> str:
        return self.document["metadata"]["name"]

    @property
    def uid(self) -> str:
        return self.document["metadata"]["uid"]

    @property
    def status(self) -> dict[str, Any]:
        return self.statuses[min(self.index, len(self.statuses) - 1)] if self.statuses else {}

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")

    def view(self) -> dict[str, Any]:
        doc = copy.deepcopy(self.document)
        status = {k: copy.deepcopy(v) for k, v in self.status.items() if k not in _FAKE_KEYS}
        labels = doc["metadata"].setdefault("labels", {})
        if status.get("phase"):
            labels[PHASE_LABEL] = status["phase"]
            if status["phase"] in _TERMINAL:
                labels[COMPLETED_LABEL] = "true"
        if status:
            doc["status"] = status
        return doc


# -- the server -----------------------------------------------------------------------------
@dataclass
class FakeArgo:
    """The fake Argo server. ``with FakeArgo() as argo: ... argo.url ...``."""

    token: str | None = "fake-token-1234"
    namespace: str = "argo"
    playbook: Playbook = default_playbook
    requests: list[RecordedRequest] = field(default_factory=list)
    workflows: dict[str, _Workflow] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    #: ``(certfile, keyfile)``: serve HTTPS with this certificate instead of plain HTTP.
    tls: tuple[str, str] | None = None
    clock: Callable[[], float] = field(default_factory=FakeClock)
    ttl_scale: float = 1.0
    list_lag: int = 0
    template_lag: int = 0
    #: Executing mode: runs each created workflow (None: playbook mode).
    runner: Runner | None = None
    #: Called with (name, status) after each :meth:`set_status` (outside the lock): a test's hook.
    on_status: Callable[[str, dict[str, Any]], None] | None = None
    #: Names of workflows deleted so far (TTL, ``DELETE``, or with their owner), in order.
    deleted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self._versions = itertools.count(100)
        self._suffixes = itertools.count(1)
        self._created = itertools.count(0)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: Workflow creates still to come that do not see a just-created template.
        self._template_unseen: dict[str, int] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Argo server is not running")
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def start(self) -> FakeArgo:
        fake = self

        class Handler(_Handler):
            argo = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = False  # server_close() joins every request thread
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-argo", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.close()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeArgo:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------------------------
    def fail(
        self,
        status: int,
        times: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        after: bool = False,
    ) -> Fault:
        fault = Fault(status, times, method, path, after)
        with self.lock:
            self.faults.append(fault)
        return fault

    def add_workflow(
        self,
        name: str,
        labels: Mapping[str, str],
        statuses: list[dict[str, Any]],
        *,
        spec: Mapping[str, Any] | None = None,
        owner: str | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Seed workflow ``name`` that plays ``statuses`` back (a finished one: one status), owned
        by workflow ``owner`` if given. Seeded workflows show in lists at once."""
        document: dict[str, Any] = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": name, "labels": dict(labels), "annotations": dict(annotations or {})},
            "spec": dict(spec or {"entrypoint": "main"}),
        }
        with self.lock:
            if owner is not None:
                document["metadata"]["ownerReferences"] = [self._owner_reference(owner)]
            self._insert(document, list(statuses), lag=0)
        return document

    def set_status(self, name: str, status: Mapping[str, Any]) -> None:
        """Executing mode: workflow ``name``'s status is now ``status`` (ignored once it is deleted);
        then ``on_status(name, status)``."""
        with self.lock:
            workflow = self.workflows.get(name)
            if workflow is None:
                return
            workflow.statuses, workflow.index = [copy.deepcopy(dict(status))], 0
            self._note_finished(workflow)
            hook = self.on_status
        if hook is not None:
            hook(name, dict(status))

    def set_nodes(self, name: str, nodes: Mapping[str, Any]) -> None:
        """Executing mode: workflow ``name``'s ``status.nodes`` are now ``nodes``."""
        with self.lock:
            workflow = self.workflows.get(name)
            if workflow is not None and workflow.statuses:
                workflow.statuses[workflow.index]["nodes"] = copy.deepcopy(dict(nodes))

    def delete(self, name: str) -> bool:
        """Delete workflow ``name`` and, as Kubernetes' GC does, every workflow it owns."""
        with self.lock:
            workflow = self.workflows.pop(name, None)
            if workflow is None:
                return False
            self.deleted.append(name)
            for child in [w for w in self.workflows.values() if workflow.uid in _owners(w.document)]:
                self.delete(child.name)
            return True

    def collect(self) -> list[str]:
        """Run the TTL controller now; the names it deleted (every request runs it first)."""
        with self.lock:
            now = self.clock()
            expired = [
                w.name
                for w in self.workflows.values()
                if (at := self._expires_at(w)) is not None and now >= at
            ]
            gone = len(self.deleted)
            for name in expired:
                self.delete(name)
            return self.deleted[gone:]

    # -- inspection --------------------------------------------------------------------------
    def calls(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded requests with ``method`` whose path matches the regular expression ``path``."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path is None or re.search(path, r.path))
            ]

    def created(self) -> list[dict[str, Any]]:
        """Bodies (``workflow`` objects) of every workflow-create request, in order."""
        return [
            r.body["workflow"]
            for r in self.calls("POST", r"^/api/v1/workflows/[^/]+$")
            if isinstance(r.body, dict) and "workflow" in r.body
        ]

    def gets(self, name: str) -> int:
        with self.lock:
            return self.workflows[name].gets

    def labelled(self, **labels: str) -> list[str]:
        """Names of the workflows (kept now) whose labels include ``labels`` (``kind="round"`` for
        ``edgefed.io/kind=round``)."""
        want = {f"edgefed.io/{k}": v for k, v in labels.items()}
        with self.lock:
            return [
                w.name
                for w in self.workflows.values()
                if all((w.document["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())
            ]

    # -- the store (the runner writes through these, under the lock) -------------------------
    def create(
        self, document: Mapping[str, Any], *, owner: str | None = None, run: bool = True
    ) -> dict[str, Any]:
        """Validate and create ``document`` as the server would (:class:`FakeError` if refused);
        ``owner``: set an ownerReference to that workflow (``setOwnerReference``). In executing
        mode the runner starts it unless ``run`` is False (a child its parent's engine runs)."""
        with self.lock:
            document = copy.deepcopy(dict(document))
            meta = document.setdefault("metadata", {})
            if owner is not None:
                if owner not in self.workflows:
                    raise FakeError(404, f'workflows.argoproj.io "{owner}" not found')
                meta.setdefault("ownerReferences", []).append(self._owner_reference(owner))
            name = meta.get("name") or f"{meta.get('generateName', 'wf-')}{next(self._suffixes):05x}"
            self._validate(document, name)
            if name in self.workflows:
                raise FakeError(409, f'workflows.argoproj.io "{name}" already exists')
            meta["name"] = name
            runner = self.runner
            workflow = self._insert(
                document, [] if runner else list(self.playbook(document)), lag=self.list_lag
            )
            view = workflow.view()
        if runner is not None and run:
            runner.start(self, name)
        return view

    def get(self, name: str) -> dict[str, Any]:
        with self.lock:
            workflow = self.workflows.get(name)
            if workflow is None:
                raise FakeError(404, f'workflows.argoproj.io "{name}" not found')
            return workflow.view()

    def patch_metadata(self, name: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """A merge patch of workflow ``name``'s labels and annotations."""
        with self.lock:
            workflow = self.workflows.get(name)
            if workflow is None:
                raise FakeError(404, f'workflows.argoproj.io "{name}" not found')
            meta = workflow.document["metadata"]
            for key in ("labels", "annotations"):
                for k, v in (metadata.get(key) or {}).items():
                    if v is None:
                        meta.setdefault(key, {}).pop(k, None)
                    else:
                        meta.setdefault(key, {})[k] = str(v)
            meta["resourceVersion"] = str(next(self._versions))
            return workflow.view()

    def template(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            return copy.deepcopy(self.templates.get(name))

    # -- internals ---------------------------------------------------------------------------
    def _owner_reference(self, owner: str) -> dict[str, Any]:
        parent = self.workflows[owner]
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "name": owner,
            "uid": parent.uid,
            "blockOwnerDeletion": True,
            "controller": True,
        }

    def _insert(self, document: dict[str, Any], statuses: list[dict[str, Any]], *, lag: int) -> _Workflow:
        name = document["metadata"]["name"]
        self._stamp(document, name)
        workflow = _Workflow(document, statuses, unlisted=lag)
        self.workflows[name] = workflow
        self._serve_status(workflow)
        return workflow

    def _stamp(self, document: dict[str, Any], name: str) -> None:
        meta = document.setdefault("metadata", {})
        meta.pop("generateName", None)
        order = next(self._created)
        meta.update(
            name=name,
            namespace=self.namespace,
            uid=f"uid-{name}-{order}",
            resourceVersion=str(next(self._versions)),
            creationTimestamp=f"2024-05-01T{order // 3600 % 24:02d}:{order // 60 % 60:02d}:{order % 60:02d}Z",
        )

    def _validate(self, document: dict[str, Any], name: str) -> None:
        """``validate.Workflow`` as the server runs it on create (the parts edgefed relies on)."""
        if len(name) > _MAX_NAME:
            raise FakeError(
                400,
                f'workflow name "{name}" must not be more than {_MAX_NAME} characters long (currently {len(name)})',
            )
        spec = document.get("spec") or {}
        own = list((spec.get("arguments") or {}).get("parameters") or [])
        entrypoint = spec.get("entrypoint")
        ref = spec.get("workflowTemplateRef")
        if ref:
            if spec.get("templates"):
                raise FakeError(
                    400, "Templates is invalid field in spec if workflow referred WorkflowTemplate reference"
                )
            template = self.templates.get(ref.get("name", ""))
            if self._template_unseen.get(ref.get("name", ""), 0) > 0:
                self._template_unseen[ref["name"]] -= 1
                template = None
            if template is None:  # the template informer's NotFound, kept as is (404)
                raise FakeError(404, f'workflowtemplate.argoproj.io "{ref.get("name", "")}" not found')
            tspec = template.get("spec") or {}
            own = _merge_parameters(own, list((tspec.get("arguments") or {}).get("parameters") or []))
            entrypoint = entrypoint or tspec.get("entrypoint")
        for param in own:
            if param.get("value") is None and param.get("valueFrom") is None:
                p = param.get("name")
                raise FakeError(400, f"spec.arguments.{p}.value or spec.arguments.{p}.valueFrom is required")
        if not entrypoint:
            raise FakeError(400, "spec.entrypoint is required")

    def _ttl(self, workflow: _Workflow) -> float | None:
        spec = workflow.document.get("spec") or {}
        strategy = spec.get("ttlStrategy")
        ref = spec.get("workflowTemplateRef")
        if strategy is None and ref and ref.get("name") in self.templates:
            strategy = (self.templates[ref["name"]].get("spec") or {}).get("ttlStrategy")
        strategy = strategy or {}
        phase = workflow.phase
        for applies, key in (
            (phase == "Failed", "secondsAfterFailure"),
            (phase == "Succeeded", "secondsAfterSuccess"),
            (phase in _TERMINAL, "secondsAfterCompletion"),
        ):
            if applies and strategy.get(key) is not None:
                return float(strategy[key])
        return None

    def _expires_at(self, workflow: _Workflow) -> float | None:
        ttl = self._ttl(workflow) if workflow.finished_at is not None else None
        return None if ttl is None else workflow.finished_at + ttl * self.ttl_scale

    def _note_finished(self, workflow: _Workflow) -> None:
        if workflow.finished_at is None and workflow.phase in _TERMINAL:
            workflow.finished_at = self.clock()

    def _serve_status(self, workflow: _Workflow) -> None:
        """The status now served takes effect: its children and annotations, its end."""
        index = min(workflow.index, len(workflow.statuses) - 1)
        if index > workflow.served:
            workflow.served = index
            status = workflow.status
            workflow.document["metadata"].setdefault("annotations", {}).update(
                status.get("x-annotations") or {}
            )
            for child, spec in (status.get("x-children") or {}).items():
                existing = self.workflows.get(child)
                if existing is not None:
                    existing.statuses, existing.index = [dict(spec["status"])], 0
                    self._note_finished(existing)
                    continue
                document = {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Workflow",
                    "metadata": {
                        "name": child,
                        "labels": dict(spec.get("labels") or {}),
                        "ownerReferences": [self._owner_reference(workflow.name)],
                    },
                    "spec": dict(spec.get("spec") or {}),
                }
                self._insert(document, [dict(spec["status"])], lag=self.list_lag)
        self._note_finished(workflow)

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["api", "v1"] or len(parts) < 4:
            raise FakeError(404, f"no route for {method} {path}")
        kind, namespace, rest = parts[2], parts[3], parts[4:]
        if namespace != self.namespace:
            raise FakeError(403, f'namespace "{namespace}" is forbidden')
        with self.lock:
            self.collect()
        if kind == "workflows" and not rest and method == "POST":
            return 200, self.create((body or {}).get("workflow") or {})
        with self.lock:
            if kind == "workflows":
                return self._workflows(method, rest, query)
            if kind == "workflow-templates":
                return self._templates(method, rest, body)
        raise FakeError(404, f"no route for {method} {path}")

    def _workflows(self, method: str, rest: list[str], query: dict[str, list[str]]) -> tuple[int, Any]:
        if not rest and method == "GET":
            return 200, self._list(query)
        if len(rest) == 1 and method == "GET":
            workflow = self.workflows.get(rest[0])
            if workflow is None:
                raise FakeError(404, f'workflows.argoproj.io "{rest[0]}" not found')
            self._serve_status(workflow)  # what this GET serves takes effect
            view = workflow.view()
            workflow.gets += 1
            if self.runner is None:
                workflow.index += 1
            return 200, view
        if len(rest) == 1 and method == "DELETE":
            if not self.delete(rest[0]):
                raise FakeError(404, f'workflows.argoproj.io "{rest[0]}" not found')
            return 200, {}
        raise FakeError(404, f"no route for {method} workflows/{'/'.join(rest)}")

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        selector = (query.get("listOptions.labelSelector") or [""])[0]
        items = []
        for workflow in self.workflows.values():
            if workflow.unlisted > 0:
                workflow.unlisted -= 1
                continue
            view = workflow.view()
            if _selector_matches(selector, view["metadata"].get("labels") or {}):
                items.append(view)
        if "-items.status.nodes" in (query.get("fields") or [""])[0].split(","):
            for item in items:
                item.get("status", {}).pop("nodes", None)
        start = int((query.get("listOptions.continue") or ["0"])[0] or 0)
        limit = int((query.get("listOptions.limit") or ["0"])[0] or 0)
        page = items[start : start + limit] if limit else items[start:]
        metadata: dict[str, Any] = {"resourceVersion": str(next(self._versions))}
        if limit and start + limit < len(items):
            metadata["continue"] = str(start + limit)
        return {"metadata": metadata, "items": page or None}

    def _templates(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if not rest and method == "POST":
            template = copy.deepcopy((body or {}).get("template") or {})
            name = template.get("metadata", {}).get("name")
            if not name:
                raise FakeError(400, "WorkflowTemplate must have a name")
            if name in self.templates:
                raise FakeError(409, f'workflowtemplates.argoproj.io "{name}" already exists')
            self._stamp(template, name)
            self.templates[name] = template
            self._template_unseen[name] = self.template_lag
            return 200, template
        if not rest and method == "GET":
            return 200, {"metadata": {}, "items": list(self.templates.values()) or None}
        if len(rest) == 1:
            name = rest[0]
            current = self.templates.get(name)
            if current is None:
                raise FakeError(404, f'workflowtemplates.argoproj.io "{name}" not found')
            if method == "GET":
                return 200, current
            if method == "PUT":
                template = copy.deepcopy((body or {}).get("template") or {})
                sent = template.get("metadata", {}).get("resourceVersion")
                if sent != current["metadata"]["resourceVersion"]:
                    raise FakeError(
                        409,
                        f'Operation cannot be fulfilled on workflowtemplates.argoproj.io "{name}": '
                        "the object has been modified; please apply your changes to the latest version",
                    )
                self._stamp(template, name)
                self.templates[name] = template
                return 200, template
        raise FakeError(404, f"no route for {method} workflow-templates/{'/'.join(rest)}")


def _owners(document: Mapping[str, Any]) -> set[str]:
    return {ref.get("uid") for ref in (document.get("metadata") or {}).get("ownerReferences") or []}


class _Handler(BaseHTTPRequestHandler):
    argo: FakeArgo
    timeout = 10  # a stuck client cannot keep a request thread alive past this

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        pass

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, code: int | None = None) -> None:
        self._reply(status, {"code": code if code is not None else _grpc_code(status), "message": message})

    def _serve(self, method: str) -> None:
        argo = self.argo
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        query = parse_qs(url.query)
        with argo.lock:
            argo.requests.append(RecordedRequest(method, url.path, query, dict(self.headers.items()), body))

        if argo.token is not None and self.headers.get("Authorization") != f"Bearer {argo.token}":
            self._error(401, "token not valid. More info: https://argo-workflows.readthedocs.io/")
            return
        fault = self._fault(method, url.path, after=False)
        if fault is not None:
            self._fail(fault)
            return
        try:
            status, payload = argo.handle(method, url.path, query, body)
        except FakeError as err:
            self._error(err.status, err.message, err.code)
            return
        fault = self._fault(method, url.path, after=True)
        if fault is not None:
            self._fail(fault)
            return
        self._reply(status, payload)

    def _fault(self, method: str, path: str, *, after: bool) -> Fault | None:
        with self.argo.lock:
            for fault in self.argo.faults:
                if fault.after == after and fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def _fail(self, fault: Fault) -> None:
        if fault.status == 0:
            self.close_connection = True  # no response at all: the client sees a dropped connection
            return
        self._error(fault.status, fault.message)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")
