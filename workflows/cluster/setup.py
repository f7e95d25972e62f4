"""``edgefed cluster setup``: what a cluster needs of a task beside the chart, made so and checked.

* the store identities' Secrets (the cloud one; per edge its cloud-store and its site-store Secret),
  created, replaced when their keys differ, left alone when they match;
* each edge's node labelled ``NODE_LABEL=<edge>`` (a label a kubelet cannot set on itself);
* checks, read-only: every edge node's taints are tolerated by that edge's pods, the chart's
  ServiceAccounts exist, the task's two WorkflowTemplates are installed.

Every step gives :class:`Row` s (what was found or changed); a failed check or a refused request is
a row with ``ok=False`` and the run goes on to the others. Secret keys appear in no row, message or
dry-run document.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from edgefed.steps.interface import SECRET_ACCESS_KEY, SECRET_SECRET_KEY
from edgefed.steps.layout import CLOUD_IDENTITY, edge_identity, site_identity
from edgefed.workflows.build.names import NODE_LABEL, task_template_name, template_name
from edgefed.workflows.build.pods import EDGE_TAINT_TOLERATION
from edgefed.workflows.build.settings import DEFAULT_SETTINGS, ClusterSettings
from edgefed.workflows.errors import EdgefedError, ExitCode

if TYPE_CHECKING:
    from edgefed.workflows.spec import EdgeSpec, FederatedTask

__all__ = [
    "MANAGED_BY",
    "REDACTED",
    "Credentials",
    "Row",
    "SecretPlan",
    "SetupInputError",
    "check_service_accounts",
    "check_templates",
    "label_nodes",
    "load_credentials",
    "new_credentials",
    "secret_document",
    "secret_plans",
    "sync_secrets",
    "tolerates",
]

MANAGED_BY = {"app.kubernetes.io/managed-by": "edgefed"}
REDACTED = "<redacted>"
_NODE_PATCH = "application/strategic-merge-patch+json"
_ARGO = ("argoproj.io", "v1alpha1")


class SetupInputError(EdgefedError):
    """The task, the credentials file or an option cannot be used; nothing was changed."""

    exit_code = ExitCode.INVALID


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """One store identity's key pair. ``repr`` never shows the secret key."""

    access_key: str
    secret_key: str

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key!r}, secret_key={REDACTED!r})"


@dataclass(frozen=True, kw_only=True)
class SecretPlan:
    """A Secret the task's pods read, and the store identity (``store``: ``cloud`` or ``site <e>``) it holds."""

    secret: str
    identity: str
    store: str


@dataclass(frozen=True, kw_only=True)
class Row:
    """One object found or changed. ``ok=False``: a failed check or a refused request."""

    kind: str
    name: str
    action: str
    detail: str = ""
    ok: bool = True


def secret_plans(task: FederatedTask) -> list[SecretPlan]:
    """The cloud Secret, then per edge its cloud-store and site-store Secrets."""
    plans = [SecretPlan(secret=task.spec.cloud_credentials_secret, identity=CLOUD_IDENTITY, store="cloud")]
    for edge in task.spec.edges:
        plans.append(SecretPlan(secret=edge.secret_name, identity=edge_identity(edge.name), store="cloud"))
        plans.append(
            SecretPlan(
                secret=edge.site_secret_name, identity=site_identity(edge.name), store=f"site {edge.name}"
            )
        )
    return plans


def load_credentials(path: Path, identities: list[str]) -> dict[str, Credentials]:
    """``{identity: {accessKey, secretKey}}`` from ``path``; every identity of ``identities`` present."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as err:
        raise SetupInputError(f"cannot read credentials file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise SetupInputError(f"credentials file {path}: not valid YAML: {err}") from None
    if not isinstance(document, Mapping):
        found = type(document).__name__
        raise SetupInputError(f"credentials file {path}: expected a mapping of identities, found {found}")
    out: dict[str, Credentials] = {}
    problems: list[str] = []
    for identity in identities:
        entry = document.get(identity)
        if entry is None:
            continue
        keys = entry if isinstance(entry, Mapping) else {}
        access, secret = keys.get(SECRET_ACCESS_KEY), keys.get(SECRET_SECRET_KEY)
        if not (isinstance(access, str) and access and isinstance(secret, str) and secret):
            problems.append(
                f"{identity}: expected non-empty strings {SECRET_ACCESS_KEY} and {SECRET_SECRET_KEY}"
            )
            continue
        out[identity] = Credentials(access_key=access, secret_key=secret)
    missing = [i for i in identities if i not in document]
    if missing:
        problems.append(f"missing identities: {', '.join(missing)}")
    if problems:
        raise SetupInputError(f"credentials file {path}: " + "; ".join(problems))
    return out


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_credentials(path: Path, identities: list[str], *, write: bool = True) -> dict[str, Credentials]:
    """Random key pairs for ``identities``, written to ``path`` (mode 0600, never over an existing file)
    in the format :func:`load_credentials` reads, unless ``write`` is False."""
    if path.exists():
        raise SetupInputError(f"--new-credentials {path}: the file exists; refusing to overwrite it")
    out = {
        identity: Credentials(
            access_key=_random(string.ascii_uppercase + string.digits, 20),
            secret_key=_random(string.ascii_letters + string.digits, 40),
        )
        for identity in identities
    }
    if write:
        text = yaml.safe_dump(
            {i: {SECRET_ACCESS_KEY: c.access_key, SECRET_SECRET_KEY: c.secret_key} for i, c in out.items()},
            sort_keys=False,
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as err:
            raise SetupInputError(f"--new-credentials {path}: cannot create it: {err.strerror}") from None
        with os.fdopen(fd, "w") as file:
            file.write(text)
    return out


def secret_document(plan: SecretPlan, namespace: str, credentials: Credentials, *, redact: bool) -> dict:
    """The Secret of ``plan`` (``data`` base64, or :data:`REDACTED` values)."""

    def value(text: str) -> str:
        return REDACTED if redact else base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": plan.secret, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "type": "Opaque",
        "data": {
            SECRET_ACCESS_KEY: value(credentials.access_key),
            SECRET_SECRET_KEY: value(credentials.secret_key),
        },
    }


def _status_message(err: Exception) -> str:
    """The API's Status message of ``err`` (an ``ApiException``), else the error's own text."""
    body = getattr(err, "body", None)
    status = getattr(err, "status", None)
    try:
        message = json.loads(body)["message"] if body else None
    except (ValueError, KeyError, TypeError):
        message = None
    if status is None:
        return f"cannot reach the API server: {type(err).__name__}"
    return f"{status} {message or getattr(err, 'reason', '') or 'no message'}"


def _call(kind: str, name: str, verb: str, fn: Callable[[], Any]) -> tuple[Any, Row | None]:
    """``fn()``, or the error row naming the object and the API's Status message (404: ``(None, None)``)."""
    from kubernetes.client.exceptions import ApiException

    try:
        return fn(), None
    except ApiException as err:
        if err.status == 404 and verb == "get":
            return None, None
        return None, Row(
            kind=kind, name=name, action="error", detail=f"{verb}: {_status_message(err)}", ok=False
        )


def _decoded(data: Mapping[str, str] | None) -> dict[str, str]:
    try:
        return {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}
    except (ValueError, UnicodeDecodeError):
        return {}


def sync_secrets(
    core: Any,
    namespace: str,
    plans: list[SecretPlan],
    credentials: Mapping[str, Credentials],
    *,
    dry_run: bool,
) -> list[Row]:
    """Create each Secret, replace it when its keys differ, leave it when they match (dry run: say which)."""
    from kubernetes import client

    rows = []
    for plan in plans:
        keys = credentials[plan.identity]
        wanted = {SECRET_ACCESS_KEY: keys.access_key, SECRET_SECRET_KEY: keys.secret_key}
        detail = f"{plan.identity} ({plan.store} store)"
        found, error = _call(
            "Secret", plan.secret, "get", lambda p=plan: core.read_namespaced_secret(p.secret, namespace)
        )
        if error:
            rows.append(error)
            continue
        body = secret_document(plan, namespace, keys, redact=False)
        prefix = "would be " if dry_run else ""
        if found is not None and _decoded(found.data) == wanted:
            rows.append(Row(kind="Secret", name=plan.secret, action="unchanged", detail=detail))
            continue
        if found is None:
            action = "created"
            call = lambda b=body: core.create_namespaced_secret(namespace, client.V1Secret.from_dict(b))  # noqa: E731
        else:
            action = "updated"
            body["metadata"]["resourceVersion"] = found.metadata.resource_version
            call = lambda b=body, p=plan: core.replace_namespaced_secret(  # noqa: E731
                p.secret, namespace, client.V1Secret.from_dict(b)
            )
        if not dry_run:
            _, error = _call("Secret", plan.secret, "create" if found is None else "replace", call)
            if error:
                rows.append(error)
                continue
        rows.append(Row(kind="Secret", name=plan.secret, action=prefix + action, detail=detail))
    return rows


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' ``Toleration.ToleratesTaint``: effect (empty: any), key (empty with Exists: any),
    operator Exists, or Equal (the default) with the same value."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    if not toleration.get("key"):
        return operator == "Exists"
    if toleration["key"] != taint.get("key"):
        return False
    return operator == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def _tolerations(edge: EdgeSpec) -> list[dict[str, Any]]:
    own = [t.model_dump(exclude_none=True) for t in edge.tolerations]
    return [*own, dict(EDGE_TAINT_TOLERATION)]


def node_patch(edge: str) -> dict[str, Any]:
    """The patch that pins ``edge``'s pods to a node."""
    return {"metadata": {"labels": {NODE_LABEL: edge}}}


def label_nodes(core: Any, task: FederatedTask, *, dry_run: bool, check_only: bool = False) -> list[Row]:
    """Label each edge's node ``NODE_LABEL=<edge>`` (relabelling one labelled for another edge) and check
    that its NoSchedule/NoExecute taints are tolerated by the edge's pods."""
    rows = []
    for edge in task.spec.edges:
        node, error = _call("Node", edge.node, "get", lambda e=edge: core.read_node(e.node))
        if error or node is None:
            rows.append(
                error
                or Row(
                    kind="Node",
                    name=edge.node,
                    action="missing",
                    detail=f"edge {edge.name}: no such node",
                    ok=False,
                )
            )
            continue
        labels = node.metadata.labels or {}
        current = labels.get(NODE_LABEL)
        if current == edge.name:
            rows.append(
                Row(kind="Node", name=edge.node, action="unchanged", detail=f"{NODE_LABEL}={edge.name}")
            )
        else:
            was = f" (was {current})" if current else ""
            if not (dry_run or check_only):
                call = lambda e=edge: core.patch_node(e.node, node_patch(e.name), _content_type=_NODE_PATCH)  # noqa: E731
                _, error = _call("Node", edge.node, "patch", call)
                if error:
                    rows.append(error)
                    continue
            action = ("would be " if dry_run else "") + ("relabelled" if current else "labelled")
            rows.append(
                Row(kind="Node", name=edge.node, action=action, detail=f"{NODE_LABEL}={edge.name}{was}")
            )
        tolerations = _tolerations(edge)
        for taint in node.spec.taints or [] if node.spec else []:
            taint_doc = {"key": taint.key, "value": taint.value, "effect": taint.effect}
            if taint.effect not in ("NoSchedule", "NoExecute") or any(
                tolerates(t, taint_doc) for t in tolerations
            ):
                continue
            shown = f"{taint.key}{'=' + taint.value if taint.value else ''}:{taint.effect}"
            rows.append(
                Row(
                    kind="Node",
                    name=edge.node,
                    action="untolerated taint",
                    detail=f"taint {shown}: edge {edge.name}'s pods cannot run there; add a toleration to "
                    f"spec.edges[].tolerations or remove the taint",
                    ok=False,
                )
            )
    return rows


def check_service_accounts(
    core: Any, namespace: str, settings: ClusterSettings = DEFAULT_SETTINGS
) -> list[Row]:
    """The driver, cloud and edge ServiceAccounts exist (the chart creates them)."""
    rows = []
    accounts = settings.service_accounts
    for role, name in (("driver", accounts.driver), ("cloud", accounts.cloud), ("edge", accounts.edge)):
        found, error = _call(
            "ServiceAccount", name, "get", lambda n=name: core.read_namespaced_service_account(n, namespace)
        )
        if error:
            rows.append(error)
        elif found is None:
            hint = f"install the chart: helm install edgefed charts/edgefed -n {namespace}"
            rows.append(
                Row(
                    kind="ServiceAccount",
                    name=name,
                    action="missing",
                    detail=f"{role} role: {hint}",
                    ok=False,
                )
            )
        else:
            rows.append(Row(kind="ServiceAccount", name=name, action="found", detail=f"{role} role"))
    return rows


def _template_files(task: FederatedTask) -> dict[str, str]:
    """WorkflowTemplate name → the file ``edgefed generate`` writes it to."""
    from edgefed.workflows.build.workflows import manifests

    return {
        doc["metadata"]["name"]: file
        for file, doc in manifests(task).items()
        if doc.get("kind") == "WorkflowTemplate"
    }


def check_templates(custom: Any, task: FederatedTask, namespace: str) -> list[Row]:
    """The task's round and task WorkflowTemplates are installed."""
    files = _template_files(task)
    rows = []
    for name in (template_name(task.name), task_template_name(task.name)):
        found, error = _call(
            "WorkflowTemplate",
            name,
            "get",
            lambda n=name: custom.get_namespaced_custom_object(*_ARGO, namespace, "workflowtemplates", n),
        )
        if error:
            rows.append(error)
        elif found is None:
            file = files.get(name, f"{name}.yaml")
            hint = f"edgefed generate TASK.yaml -o OUT/ && kubectl -n {namespace} apply -f OUT/{file}"
            rows.append(Row(kind="WorkflowTemplate", name=name, action="missing", detail=hint, ok=False))
        else:
            rows.append(Row(kind="WorkflowTemplate", name=name, action="found"))
    return rows
