"""A loopback stand-in of the Kubernetes API server, for what ``edgefed cluster setup`` asks of it.

Real HTTP on 127.0.0.1 (a free port, a thread), answering as kube-apiserver does: objects with ``uid``,
``resourceVersion`` and ``creationTimestamp``; ``Status`` bodies (``kind: Status``, ``status: Failure``,
``reason``, ``code``, ``details``) for 401/403/404/409/415/422; optimistic concurrency on PUT (a stale
``resourceVersion`` is a 409 Conflict); merge and strategic-merge patches (maps merge, ``null`` deletes);
bearer tokens, each with the (verb, resource) pairs RBAC would allow it. Resources: core v1 ``secrets``,
``serviceaccounts`` (namespaced), ``nodes`` (cluster-scoped), ``argoproj.io/v1alpha1`` ``workflowtemplates``.

Hand-written: no Python package serves a fake Kubernetes API (kind/envtest need a real apiserver binary).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ALL_RIGHTS", "KubeAPI", "kube_api", "write_kubeconfig"]

_KINDS = {
    "secrets": ("Secret", "v1", ""),
    "serviceaccounts": ("ServiceAccount", "v1", ""),
    "nodes": ("Node", "v1", ""),
    "workflowtemplates": ("WorkflowTemplate", "argoproj.io/v1alpha1", "argoproj.io"),
}
_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?$"
)
VERBS = ("get", "list", "create", "update", "patch", "delete")
#: What a cluster-admin token may do.
ALL_RIGHTS = frozenset((verb, resource) for verb in VERBS for resource in _KINDS)


def _merge(target: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386), which a strategic merge patch of maps and scalars also is."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


@dataclass
class KubeAPI:
    """The server's state: objects by (resource, namespace, name), tokens, and every request seen."""

    url: str = ""
    tokens: dict[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _versions: Iterator[int] = field(default_factory=lambda: itertools.count(1000))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, resource: str, obj: dict[str, Any], namespace: str = "") -> dict[str, Any]:
        """Put ``obj`` in the store as if created (for a test's starting state)."""
        kind, api_version, _ = _KINDS[resource]
        obj = {"apiVersion": api_version, "kind": kind, **obj}
        meta = obj.setdefault("metadata", {})
        if namespace:
            meta["namespace"] = namespace
        self._stamp(meta, new=True)
        self.objects[(resource, namespace, meta["name"])] = obj
        return obj

    def get(self, resource: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        return self.objects.get((resource, namespace, name))

    def _stamp(self, meta: dict[str, Any], *, new: bool) -> None:
        if new:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = "2026-12-03T00:00:00Z"
        meta["resourceVersion"] = str(next(self._versions))

    # -- one request ---------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, token: str | None, content_type: str, body: bytes
    ) -> tuple[int, Any]:
        path = path.split("?", 1)[0]
        self.requests.append((method, path))
        match = _PATH.match(path)
        if match is None or match["resource"] not in _KINDS:
            return _status(404, "NotFound", f"the server could not find the requested resource ({path})")
        resource, namespace, name = match["resource"], match["namespace"] or "", match["name"]
        kind, _, group = _KINDS[resource]
        verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update", "PATCH": "patch"}.get(
            method, "delete" if method == "DELETE" else "unknown"
        )
        if token is None or token not in self.tokens:
            return _status(401, "Unauthorized", "Unauthorized")
        if (verb, resource) not in self.tokens[token]:
            where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            target = f'{resource} "{name}" is forbidden' if name else f"{resource} is forbidden"
            return _status(
                403,
                "Forbidden",
                f'{target}: User "system:serviceaccount:edgefed:setup" cannot {verb} resource "{resource}" '
                f'in API group "{group}"{where}',
                name=name,
                kind=resource,
            )
        with self._lock:
            return self._apply(verb, resource, kind, namespace, name, content_type, body)

    def _apply(
        self,
        verb: str,
        resource: str,
        kind: str,
        namespace: str,
        name: str | None,
        content_type: str,
        body: bytes,
    ) -> tuple[int, Any]:
        key = (resource, namespace, name or "")
        if verb == "list":
            items = [o for (r, ns, _), o in self.objects.items() if r == resource and ns == namespace]
            return 200, {"kind": f"{kind}List", "apiVersion": _KINDS[resource][1], "items": items}
        if verb in ("get", "delete", "patch", "update") and key not in self.objects:
            return _status(404, "NotFound", f'{resource} "{name}" not found', name=name, kind=resource)
        if verb == "get":
            return 200, self.objects[key]
        if verb == "delete":
            del self.objects[key]
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            return _status(400, "BadRequest", "the request body is not JSON")
        if verb == "patch":
            if content_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                return _status(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format: {content_type}",
                )
            merged = _merge(self.objects[key], document)
            merged["metadata"]["name"] = name
            self._stamp(merged["metadata"], new=False)
            self.objects[key] = merged
            return 200, merged
        meta = document.get("metadata") or {}
        if not meta.get("name"):
            return _status(422, "Invalid", f"{kind} is invalid: metadata.name: Required value", kind=resource)
        if verb == "create":
            key = (resource, namespace, meta["name"])
            if key in self.objects:
                return _status(
                    409,
                    "AlreadyExists",
                    f'{resource} "{meta["name"]}" already exists',
                    name=meta["name"],
                    kind=resource,
                )
            if namespace:
                meta["namespace"] = namespace
            self._stamp(meta, new=True)
            document["metadata"] = meta
            self.objects[key] = document
            return 201, document
        # update (PUT): the resourceVersion read must still be the object's
        current = self.objects[key]["metadata"]
        if meta.get("resourceVersion") != current["resourceVersion"]:
            return _status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                name=name,
                kind=resource,
            )
        meta.update(uid=current["uid"], creationTimestamp=current["creationTimestamp"])
        self._stamp(meta, new=False)
        document["metadata"] = meta
        self.objects[key] = document
        return 200, document


def _status(
    code: int, reason: str, message: str, *, name: str | None = None, kind: str | None = None
) -> tuple[int, Any]:
    details = {k: v for k, v in (("name", name), ("kind", kind)) if v}
    return code, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        **({"details": details} if details else {}),
        "code": code,
    }


@contextmanager
def kube_api(tokens: dict[str, frozenset[tuple[str, str]]] | None = None) -> Iterator[KubeAPI]:
    """A running stand-in on 127.0.0.1 (token ``admin`` may do everything unless ``tokens`` says)."""
    api = KubeAPI(tokens=dict(tokens or {"admin": ALL_RIGHTS}))

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            auth = self.headers.get("Authorization") or ""
            token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
            content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0]
            code, payload = api.handle(self.command, self.path, token, content_type, body)
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def write_kubeconfig(
    path: Path, url: str, token: str, *, namespace: str = "fl", context: str = "standin"
) -> Path:
    """A kubeconfig whose current context talks to ``url`` with ``token`` in ``namespace``."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "standin", "cluster": {"server": url}}],
                "users": [{"name": "setup", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": context,
                        "context": {"cluster": "standin", "user": "setup", "namespace": namespace},
                    }
                ],
                "current-context": context,
            }
        )
    )
    return path
