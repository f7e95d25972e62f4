"""A loopback fake of the Argo server's REST API, for tests of everything that talks to one.

:class:`FakeArgo` is a ``ThreadingHTTPServer`` on ``127.0.0.1`` (a free port) serving the paths
Hera's ``WorkflowsService`` calls for workflows and workflow templates::

    POST/GET      /api/v1/workflow-templates/{ns}           create / list
    GET/PUT       /api/v1/workflow-templates/{ns}/{name}    get / update (resourceVersion checked)
    POST/GET      /api/v1/workflows/{ns}                    create (generateName honoured) / list
    GET           /api/v1/workflows/{ns}/{name}             get (plays the workflow's phases back)

It records every request (method, path, query, headers, JSON body) and can be scripted:

* ``token``: requests without ``Authorization: Bearer <token>`` get 401 (``None``: no auth).
* :meth:`FakeArgo.fail`: the next N matching requests get an HTTP status (503, 500, 403, ...) or a
  dropped connection (``status=0``), before or after the request took effect (``after=True``
  mimics a response lost on the way back).
* ``playbook``: how a created workflow plays out, as a list of ``status`` objects; each ``GET`` of
  the workflow returns the next one and the last one repeats. Build them with :func:`succeeded`,
  :func:`failed` and :func:`running`. The default plays Pending → Running → Succeeded with the
  round's outputs (``accuracy`` = 0.5 + 0.1 × round).
* :meth:`FakeArgo.add_workflow`: seed a workflow already in some phase (history for resume tests).

Like Argo's controller, the fake keeps the ``workflows.argoproj.io/phase`` label in step with the
phase, so label selectors on it work. Use it as a context manager; leaving it shuts the server
down and joins every thread it started.
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
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "PHASE_LABEL",
    "FakeArgo",
    "Fault",
    "RecordedRequest",
    "failed",
    "running",
    "succeeded",
]

PHASE_LABEL = "workflows.argoproj.io/phase"
_TERMINAL = {"Succeeded", "Failed", "Error"}
_STAMP = "2024-05-01T12:00:{:02d}Z"

#: A playbook: the created workflow document -> the ``status`` objects its GETs return in turn.
Playbook = Callable[[dict[str, Any]], list[dict[str, Any]]]


# -- status builders ------------------------------------------------------------------------
def _node(workflow: str, template: str, phase: str, message: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{workflow}-{template}",
        "name": f"{workflow}.{template}",
        "displayName": template,
        "type": "Pod",
        "templateName": template,
        "phase": phase,
        "message": message,
        "startedAt": _STAMP.format(1),
        "finishedAt": _STAMP.format(4),
        **extra,
    }


def running(*, pending: int = 1, running: int = 1) -> list[dict[str, Any]]:
    """``pending`` × Pending then ``running`` × Running (the last one repeats: it never ends)."""
    return [{"phase": "Pending"}] * pending + [{"phase": "Running", "startedAt": _STAMP.format(0)}] * running


def succeeded(
    outputs: Mapping[str, str],
    *,
    pending: int = 1,
    running_: int = 1,
    train_seconds: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Pending/Running polls, then Succeeded with ``outputs`` as ``status.outputs.parameters``."""
    final: dict[str, Any] = {
        "phase": "Succeeded",
        "startedAt": _STAMP.format(0),
        "finishedAt": _STAMP.format(5),
        "progress": "3/3",
        "outputs": {"parameters": [{"name": k, "value": v} for k, v in outputs.items()]},
    }
    if train_seconds:
        final["nodes"] = {
            f"train-{edge}": {
                "id": f"train-{edge}",
                "name": f"wf.train(0:{edge})",
                "displayName": f"train(0:{edge})",
                "type": "Pod",
                "templateName": "train",
                "phase": "Succeeded",
                "inputs": {"parameters": [{"name": "edge", "value": edge}]},
                "outputs": {"parameters": [{"name": "train-seconds", "value": str(seconds)}]},
            }
            for edge, seconds in train_seconds.items()
        }
    return [*running(pending=pending, running=running_), final]


def failed(
    node: str = "aggregate",
    message: str = "quorum not met: 0 of 2 edges contributed (quorum 1)",
    *,
    workflow_message: str = "child 'aggregate' failed",
    phase: str = "Failed",
    running_: int = 1,
) -> list[dict[str, Any]]:
    """Running polls, then ``phase`` with one failed Pod node ``node`` carrying ``message``."""
    dag = {
        "id": "dag",
        "name": "wf",
        "displayName": "wf",
        "type": "DAG",
        "templateName": "round",
        "phase": phase,
        "message": workflow_message,
        "children": ["leaf"],
    }
    leaf = {**_node("wf", node, phase, message), "id": "leaf"}
    final = {
        "phase": phase,
        "message": workflow_message,
        "startedAt": _STAMP.format(0),
        "finishedAt": _STAMP.format(5),
        "nodes": {"dag": dag, "leaf": leaf},
    }
    return [*running(pending=0, running=running_), final]


def default_playbook(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Pending → Running → Succeeded with the outputs a round (or the init workflow) would set."""
    labels = document.get("metadata", {}).get("labels") or {}
    round_ = int(labels.get("edgefed.io/round", "1"))
    if round_ == 0:
        return succeeded({"model-version": "v0"})
    return succeeded(
        {
            "model-version": f"v{round_}",
            "contributors": "2",
            "missing-edges": "[]",
            "accuracy": f"{0.5 + 0.1 * round_:.4f}",
            "loss": f"{1.0 / round_:.4f}",
        }
    )


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


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, code: int) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


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


@dataclass
class _Workflow:
    document: dict[str, Any]
    statuses: list[dict[str, Any]]
    index: int = 0
    gets: int = 0

    @property
    def status(self) -> dict[str, Any]:
        return self.statuses[min(self.index, len(self.statuses) - 1)] if self.statuses else {}

    def view(self) -> dict[str, Any]:
        doc = copy.deepcopy(self.document)
        status = copy.deepcopy(self.status)
        labels = doc["metadata"].setdefault("labels", {})
        if status.get("phase"):
            labels[PHASE_LABEL] = status["phase"]
            if status["phase"] in _TERMINAL:
                labels["workflows.argoproj.io/completed"] = "true"
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

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._versions = itertools.count(100)
        self._suffixes = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

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
        with self._lock:
            self.faults.append(fault)
        return fault

    def add_workflow(
        self, name: str, labels: Mapping[str, str], statuses: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Seed workflow ``name`` that plays ``statuses`` back (a finished one: one status)."""
        document = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"entrypoint": "round"},
        }
        with self._lock:
            self._stamp(document, name)
            self.workflows[name] = _Workflow(document, list(statuses))
        return document

    # -- inspection --------------------------------------------------------------------------
    def calls(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded requests with ``method`` whose path matches the regular expression ``path``."""
        with self._lock:
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
        with self._lock:
            return self.workflows[name].gets

    # -- request handling (called from handler threads) --------------------------------------
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _fault(self, method: str, path: str, *, after: bool) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.after == after and fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def _stamp(self, document: dict[str, Any], name: str) -> None:
        meta = document.setdefault("metadata", {})
        meta.pop("generateName", None)
        meta.update(
            name=name,
            namespace=self.namespace,
            uid=f"uid-{name}",
            resourceVersion=str(next(self._versions)),
            creationTimestamp=_STAMP.format(len(self.workflows) % 60),
        )

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["api", "v1"] or len(parts) < 4:
            raise _HTTPError(404, f"no route for {method} {path}", 5)
        kind, namespace, rest = parts[2], parts[3], parts[4:]
        if namespace != self.namespace:
            raise _HTTPError(403, f'namespace "{namespace}" is forbidden', 7)
        with self._lock:
            if kind == "workflows":
                return self._workflows(method, rest, query, body)
            if kind == "workflow-templates":
                return self._templates(method, rest, body)
        raise _HTTPError(404, f"no route for {method} {path}", 5)

    def _workflows(
        self, method: str, rest: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        if not rest and method == "POST":
            document = copy.deepcopy((body or {}).get("workflow") or {})
            meta = document.setdefault("metadata", {})
            name = meta.get("name") or f"{meta.get('generateName', 'wf-')}{next(self._suffixes):05x}"
            if name in self.workflows:
                raise _HTTPError(409, f'workflows.argoproj.io "{name}" already exists', 6)
            self._stamp(document, name)
            self.workflows[name] = _Workflow(document, list(self.playbook(document)))
            return 200, self.workflows[name].document
        if not rest and method == "GET":
            return 200, self._list(query)
        if len(rest) == 1 and method == "GET":
            workflow = self.workflows.get(rest[0])
            if workflow is None:
                raise _HTTPError(404, f'workflows.argoproj.io "{rest[0]}" not found', 5)
            view = workflow.view()
            workflow.gets += 1
            workflow.index += 1
            return 200, view
        raise _HTTPError(404, f"no route for {method} workflows/{'/'.join(rest)}", 5)

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        selector = (query.get("listOptions.labelSelector") or [""])[0]
        items = [
            w.view()
            for w in self.workflows.values()
            if _selector_matches(selector, w.view()["metadata"].get("labels") or {})
        ]
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
                raise _HTTPError(400, "WorkflowTemplate must have a name", 3)
            if name in self.templates:
                raise _HTTPError(409, f'workflowtemplates.argoproj.io "{name}" already exists', 6)
            self._stamp(template, name)
            self.templates[name] = template
            return 200, template
        if not rest and method == "GET":
            return 200, {"metadata": {}, "items": list(self.templates.values()) or None}
        if len(rest) == 1:
            name = rest[0]
            current = self.templates.get(name)
            if current is None:
                raise _HTTPError(404, f'workflowtemplates.argoproj.io "{name}" not found', 5)
            if method == "GET":
                return 200, current
            if method == "PUT":
                template = copy.deepcopy((body or {}).get("template") or {})
                sent = template.get("metadata", {}).get("resourceVersion")
                if sent != current["metadata"]["resourceVersion"]:
                    raise _HTTPError(
                        409,
                        f'Operation cannot be fulfilled on workflowtemplates.argoproj.io "{name}": '
                        "the object has been modified; please apply your changes to the latest version",
                        6,
                    )
                self._stamp(template, name)
                self.templates[name] = template
                return 200, template
        raise _HTTPError(404, f"no route for {method} workflow-templates/{'/'.join(rest)}", 5)


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
        argo._record(RecordedRequest(method, url.path, query, dict(self.headers.items()), body))

        if argo.token is not None and self.headers.get("Authorization") != f"Bearer {argo.token}":
            self._error(401, "token not valid. More info: https://argo-workflows.readthedocs.io/")
            return
        fault = argo._fault(method, url.path, after=False)
        if fault is not None:
            self._fail(fault)
            return
        try:
            status, payload = argo.handle(method, url.path, query, body)
        except _HTTPError as err:
            self._error(err.status, err.message, err.code)
            return
        fault = argo._fault(method, url.path, after=True)
        if fault is not None:
            self._fail(fault)
            return
        self._reply(status, payload)

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
