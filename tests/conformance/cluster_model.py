"""A pure-Python model of what a Kubernetes cluster running Argo v4.1.2 would refuse or allow.

No cluster runs in the tests, so this module reads the chart's rendered objects and the Argo documents as
the API server, the RBAC authorizer, the scheduler and Argo's controller would, and lists what would go
wrong. Each check takes plain dict documents and returns problem strings naming the document, the
template and the field, with what was expected and what was found:

1. :func:`check_service_accounts`: every pod a template makes runs as a ServiceAccount the chart creates,
   never ``default`` (Argo's ``workflow/controller/workflowpod.go`` ``setupServiceAccount``: the template's
   ``serviceAccountName``, else the spec's, else ``default``);
2. :func:`check_rbac`: that ServiceAccount's Roles grant exactly what Argo needs for the template: every
   pod's executor creates and patches ``workflowtaskresults`` (Argo >= 3.4, docs/workflow-rbac.md); a
   resource template acts on its manifest's kind (and GETs it to poll conditions and read jsonPath
   outputs: ``workflow/executor/resource.go`` ``checkResourceState``). A right no template of the
   ServiceAccount needs is a problem too (an edge pod that may create Workflows can mount any Secret);
3. :func:`check_references`: every Secret and ConfigMap a pod names is created by the chart or documented
   as the operator's;
4. :func:`check_edge_isolation`: an edge pod (pinned with :data:`NODE_LABEL`) runs on its own edge's node
   and can read only that edge's Secrets: never a cloud Secret (also through archived logs), never
   another edge's;
5. :func:`check_cloud_placement`: every other pod requires a node without :data:`NODE_LABEL` and
   tolerates no edge taint.

Names with ``{{...}}`` placeholders are expanded as Argo would: the DAG/steps calls are followed from the
entrypoint, arguments are forwarded into each template's inputs, and a fan-out over the ``edges``
workflow parameter gives one pod per edge item. A WorkflowTemplate whose ``edges`` parameter has no value
is expanded with the edges of the chart's sites ConfigMap (``edges.json``); names still holding a
placeholder after expansion are not checked.

Why this module is long: the five checks share one model of the documents (pods, their contexts, the
chart's objects and grants); split, each part would be unreadable without the others.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from edgefed.steps.interface import edge_secret, site_secret
from edgefed.workflows.build.names import NODE_LABEL
from edgefed.workflows.build.pods import EDGE_TAINT_TOLERATION

__all__ = [
    "ARGO_GROUP",
    "EXECUTOR_NEEDS",
    "Chart",
    "Pod",
    "check_cloud_placement",
    "check_cluster",
    "check_edge_isolation",
    "check_rbac",
    "check_references",
    "check_service_accounts",
    "needed_rights",
    "pods_of",
    "resource_name",
]

ARGO_GROUP = "argoproj.io"
#: What the executor of every pod does with its token (Argo >= 3.4: docs/workflow-rbac.md).
EXECUTOR_NEEDS = frozenset(
    {(ARGO_GROUP, "workflowtaskresults", "create"), (ARGO_GROUP, "workflowtaskresults", "patch")}
)
#: Verbs a resource template's action uses (workflow/executor/resource.go).
ACTION_VERBS: dict[str, frozenset[str]] = {
    "create": frozenset({"create"}),
    "patch": frozenset({"patch"}),
    "apply": frozenset({"get", "create", "patch"}),
    "delete": frozenset({"delete"}),
    "get": frozenset({"get"}),
    "replace": frozenset({"get", "update"}),
}
EDGE_TAINT = EDGE_TAINT_TOLERATION["key"]
ARGO_KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")
#: Template types whose node is a pod of its own; ``http`` and ``plugin`` run in the workflow's agent pod.
POD_TYPES = ("container", "script", "containerSet", "resource", "data")
AGENT_TYPES = ("http", "plugin")
DEFAULT_ARTIFACT_CONFIGMAP = "artifact-repositories"
DEFAULT_REPOSITORY_ANNOTATION = "workflows.argoproj.io/default-artifact-repository"
SECRET_SELECTORS = (
    "secretKeyRef",
    "secretRef",
    "accessKeySecret",
    "secretKeySecret",
    "sessionTokenSecret",
    "usernameSecret",
    "passwordSecret",
    "sshPrivateKeySecret",
    "tokenSecret",
    "serviceAccountKeySecret",
    "accountKeySecret",
)
CONFIGMAP_SELECTORS = ("configMapKeyRef", "configMapRef")
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


# -- the chart ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One RBAC rule as it reaches a ServiceAccount through a binding."""

    groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    source: str  # "Role fl-edgefed-driver"

    def covers(self, group: str, resource: str, verb: str) -> bool:
        return (
            (group in self.groups or "*" in self.groups)
            and (resource in self.resources or "*" in self.resources)
            and (verb in self.verbs or "*" in self.verbs)
        )


@dataclass
class Chart:
    """What the chart's rendered objects create and grant."""

    service_accounts: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    configmaps: dict[str, dict[str, Any]] = field(default_factory=dict)
    grants: dict[str, list[Grant]] = field(default_factory=dict)
    #: The sites ConfigMap's edge items (``edges.json``) and cloud Secret; None without one.
    sites_edges: list[Any] | None = None
    cloud_secret: str | None = None

    @classmethod
    def of(cls, docs: Iterable[dict[str, Any]]) -> Chart:
        chart = cls()
        rules: dict[tuple[str, str], list[dict[str, Any]]] = {}
        bindings = []
        for doc in docs:
            kind, name = doc.get("kind"), doc.get("metadata", {}).get("name", "")
            if kind == "ServiceAccount":
                chart.service_accounts.add(name)
            elif kind == "Secret":
                chart.secrets.add(name)
            elif kind == "ConfigMap":
                chart.configmaps[name] = doc
                data = doc.get("data") or {}
                if "edges.json" in data:
                    chart.sites_edges = json.loads(data["edges.json"])
                    chart.cloud_secret = data.get("cloudCredentialsSecret")
            elif kind in ("Role", "ClusterRole"):
                rules[(kind, name)] = doc.get("rules") or []
            elif kind in ("RoleBinding", "ClusterRoleBinding"):
                bindings.append(doc)
        for binding in bindings:
            ref = binding.get("roleRef", {})
            role = (ref.get("kind", ""), ref.get("name", ""))
            for subject in binding.get("subjects") or []:
                if subject.get("kind") != "ServiceAccount":
                    continue
                for rule in rules.get(role, []):
                    grant = Grant(
                        tuple(rule.get("apiGroups") or ()),
                        tuple(rule.get("resources") or ()),
                        tuple(rule.get("verbs") or ()),
                        f"{role[0]} {role[1]} (through {binding['kind']} {binding['metadata']['name']})",
                    )
                    chart.grants.setdefault(subject["name"], []).append(grant)
        return chart

    def artifact_repository(self, spec: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The artifact repository a workflow with ``spec`` uses: (where, parsed repository), if known."""
        ref = spec.get("artifactRepositoryRef") or {}
        name = ref.get("configMap") or DEFAULT_ARTIFACT_CONFIGMAP
        doc = self.configmaps.get(name)
        if doc is None:
            return None
        data = doc.get("data") or {}
        key = ref.get("key") or doc.get("metadata", {}).get("annotations", {}).get(
            DEFAULT_REPOSITORY_ANNOTATION
        )
        if key not in data:
            return None
        return f"ConfigMap {name} key {key}", yaml.safe_load(data[key]) or {}


# -- pods --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """One pod a template makes, in one context (the parameters it is called with, its edge item)."""

    doc: str
    template: dict[str, Any]
    spec: dict[str, Any]
    params: dict[str, str | None]
    workflow_params: dict[str, str | None]
    #: The item of the enclosing fan-out over the ``edges`` parameter (None: not reached through one).
    item: Any = None
    #: The other items of that fan-out (whose Secrets this pod must not read).
    edges: tuple[Any, ...] = ()

    @property
    def name(self) -> str:
        return self.template.get("name", "?")

    @property
    def where(self) -> str:
        edge = f" (edge {edge_name(self.item)!r})" if self.item is not None else ""
        return f"{self.doc} template {self.name!r}{edge}"

    @property
    def agent(self) -> bool:
        return any(t in self.template for t in AGENT_TYPES)

    @property
    def service_account(self) -> tuple[str, str]:
        """(ServiceAccount, where it comes from), as ``setupServiceAccount`` picks it."""
        if not self.agent and self.template.get("serviceAccountName"):
            return self.template["serviceAccountName"], "template.serviceAccountName"
        if self.spec.get("serviceAccountName"):
            return self.spec["serviceAccountName"], "spec.serviceAccountName"
        return "default", "neither template nor spec serviceAccountName"

    def expand(self, text: str) -> str:
        return expand(text, self.params, self.workflow_params)


def edge_name(item: Any) -> str:
    return item.get("name", "?") if isinstance(item, dict) else str(item)


def edge_secrets(item: Any) -> set[str]:
    """The Secrets an edge item's pods may read: its cloud-store and its site-store Secret."""
    name = edge_name(item)
    own = item if isinstance(item, dict) else {}
    return {own.get("secret") or edge_secret(name), own.get("siteSecret") or site_secret(name)}


def expand(text: str, params: dict[str, Any], workflow_params: dict[str, Any], item: Any = None) -> str:
    """``text`` with the placeholders whose value is known replaced; the others left as they are."""

    def value(match: re.Match[str]) -> str:
        expr = match.group(1)
        known: Any = None
        if expr.startswith("inputs.parameters."):
            known = params.get(expr.removeprefix("inputs.parameters."))
        elif expr.startswith("workflow.parameters."):
            known = workflow_params.get(expr.removeprefix("workflow.parameters."))
        elif expr == "item" and item is not None:
            known = item if isinstance(item, str) else json.dumps(item, separators=(",", ":"))
        elif expr.startswith("item.") and isinstance(item, dict):
            known = item.get(expr.removeprefix("item."))
            if known is not None and not isinstance(known, str):
                known = json.dumps(known, separators=(",", ":"))
        return match.group(0) if known is None else str(known)

    return _PLACEHOLDER.sub(value, text)


def _label(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata", {})
    return f"{doc.get('kind')} {meta.get('name') or meta.get('generateName') or '?'}"


def _parameters(spec: dict[str, Any]) -> dict[str, str | None]:
    return {p["name"]: p.get("value") for p in (spec.get("arguments") or {}).get("parameters") or []}


def effective_spec(doc: dict[str, Any], argo_docs: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """The spec Argo runs for ``doc`` (its WorkflowTemplate's, under its own fields) and its label."""
    label = _label(doc)
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronWorkflow":
        spec = spec.get("workflowSpec") or {}
    ref = spec.get("workflowTemplateRef")
    if not ref:
        return spec, label
    kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") else "WorkflowTemplate"
    base = next(
        (
            d
            for d in argo_docs
            if d.get("kind") == kind and d.get("metadata", {}).get("name") == ref.get("name")
        ),
        None,
    )
    if base is None:
        return None, label
    merged = {**(base.get("spec") or {}), **{k: v for k, v in spec.items() if k != "workflowTemplateRef"}}
    params = {
        **_parameters(base.get("spec") or {}),
        **{k: v for k, v in _parameters(spec).items() if v is not None},
    }
    merged["arguments"] = {"parameters": [{"name": k, "value": v} for k, v in params.items()]}
    return merged, f"{label} (via {kind} {ref.get('name')})"


def _edges_value(workflow_params: dict[str, Any], chart: Chart) -> list[Any] | None:
    raw = workflow_params.get("edges")
    if raw is None:
        return chart.sites_edges
    try:
        items = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return items if isinstance(items, list) else None


def _calls(template: dict[str, Any]) -> list[dict[str, Any]]:
    if "dag" in template:
        return list(template["dag"].get("tasks") or [])
    if "steps" in template:
        return [
            s for group in template["steps"] or [] for s in (group if isinstance(group, list) else [group])
        ]
    return []


def pods_of(argo_docs: list[dict[str, Any]], chart: Chart) -> tuple[list[Pod], list[str]]:
    """Every pod the documents make, one per context; and the documents that cannot be resolved."""
    pods: list[Pod] = []
    problems: list[str] = []
    for doc in argo_docs:
        if doc.get("kind") not in ARGO_KINDS:
            continue
        spec, label = effective_spec(doc, argo_docs)
        if spec is None:
            ref = (doc.get("spec") or {}).get("workflowTemplateRef") or (
                (doc.get("spec") or {}).get("workflowSpec") or {}
            ).get("workflowTemplateRef")
            problems.append(
                f"{label}: spec.workflowTemplateRef: expected a WorkflowTemplate among the documents, "
                f"found no {ref.get('name')!r}"
            )
            continue
        pods.extend(_walk_document(label, spec, chart))
    return pods, problems


def _walk_document(label: str, spec: dict[str, Any], chart: Chart) -> list[Pod]:
    templates = {t.get("name"): t for t in spec.get("templates") or []}
    workflow_params = _parameters(spec)
    edges = _edges_value(workflow_params, chart)
    out: list[Pod] = []
    seen: set[str] = set()

    def walk(name: str, args: dict[str, Any], item: Any, fan: tuple[Any, ...], depth: int) -> None:
        template = templates.get(name)
        if template is None or depth > 64:
            return
        params: dict[str, str | None] = {}
        for p in (template.get("inputs") or {}).get("parameters") or []:
            given = args.get(p["name"])
            params[p["name"]] = p.get("value", given if given is not None else p.get("default"))
        key = json.dumps([name, params, item], sort_keys=True, default=str)
        if key in seen:
            return
        seen.add(key)
        if any(t in template for t in (*POD_TYPES, *AGENT_TYPES)):
            out.append(Pod(label, template, spec, params, workflow_params, item, fan))
            return
        for call in _calls(template):
            target = call.get("template")
            if not target:
                continue  # templateRef: another document's template, checked with that document
            raw_args = {
                a["name"]: a.get("value") for a in (call.get("arguments") or {}).get("parameters") or []
            }
            for loop_item, edge_loop in _iterations(call, params, workflow_params, edges):
                call_args = {
                    k: None if v is None else expand(str(v), params, workflow_params, loop_item)
                    for k, v in raw_args.items()
                }
                walk(
                    target,
                    call_args,
                    loop_item if edge_loop else item,
                    tuple(edges or ()) if edge_loop else fan,
                    depth + 1,
                )

    roots = [spec.get("entrypoint"), spec.get("onExit")]
    for root in roots:
        if root:
            walk(root, {}, None, (), 0)
    reached = {pod.name for pod in out}
    for name, template in templates.items():
        if name not in reached and any(t in template for t in (*POD_TYPES, *AGENT_TYPES)):
            walk(name, {}, None, (), 0)
    return out


def _iterations(
    call: dict[str, Any], params: dict[str, Any], workflow_params: dict[str, Any], edges: list[Any] | None
) -> list[tuple[Any, bool]]:
    """(item, whether the loop is the fan-out over the edges) for each iteration of ``call``."""
    if "withItems" in call:
        return [(i, False) for i in call["withItems"]] or [(None, False)]
    if "withParam" in call:
        raw = str(call["withParam"])
        if "workflow.parameters.edges" in raw.replace(" ", ""):
            return [(i, True) for i in edges] if edges else [(None, False)]
        try:
            items = json.loads(expand(raw, params, workflow_params))
        except ValueError:
            return [(None, False)]
        return [(i, False) for i in items] if isinstance(items, list) and items else [(None, False)]
    return [(None, False)]


def _first_per_template(pods: list[Pod]) -> list[Pod]:
    firsts: dict[tuple[str, str], Pod] = {}
    for pod in pods:
        firsts.setdefault((pod.doc, pod.name), pod)
    return list(firsts.values())


def _some(names: Iterable[str], limit: int = 6) -> str:
    """At most ``limit`` of ``names``, sorted, and how many there are (messages stay short at 1000 edges)."""
    names = sorted(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}]" if len(names) <= limit else f"[{shown}, ... ({len(names)} in all)]"


def _unique(problems: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(problems))


# -- 1. ServiceAccounts ------------------------------------------------------------------------------------


def _check_service_accounts(pods: list[Pod], chart: Chart) -> list[str]:
    """Every pod runs as a ServiceAccount the chart creates, never ``default``."""
    problems = []
    created = sorted(chart.service_accounts)
    for pod in _first_per_template(pods):
        account, source = pod.service_account
        if account == "default" or account not in chart.service_accounts:
            problems.append(
                f"{pod.doc} template {pod.name!r}: serviceAccountName: expected a ServiceAccount the chart "
                f"creates (one of {created}), found {account!r} ({source})"
            )
    return problems


# -- 2. RBAC -----------------------------------------------------------------------------------------------


def resource_name(kind: str) -> str:
    """The API resource of ``kind`` (Workflow -> workflows, Policy -> policies)."""
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    return lower + "s"


def _manifest_kind(resource: dict[str, Any]) -> tuple[str, str] | None:
    """(apiVersion group, kind) of a resource template's manifest, read without expanding it."""
    text = resource.get("manifest") or ""
    kind = re.search(r"^kind:\s*['\"]?([\w.-]+)", text, re.M)
    version = re.search(r"^apiVersion:\s*['\"]?([\w./-]+)", text, re.M)
    if not kind or not version:
        return None
    api = version.group(1)
    return (api.split("/")[0] if "/" in api else ""), kind.group(1)


def needed_rights(pod: Pod) -> tuple[set[tuple[str, str, str]], list[str]]:
    """(group, resource, verb) the pod's ServiceAccount needs; and what cannot be known."""
    needs = set(EXECUTOR_NEEDS)
    resource = pod.template.get("resource")
    if resource is None:
        return needs, []
    action = resource.get("action", "")
    target = _manifest_kind(resource)
    if target is None:
        return needs, [
            f"{pod.where}: resource.manifest: expected a manifest with apiVersion and kind, found none"
        ]
    verbs = set(ACTION_VERBS.get(action, ()))
    if not verbs:
        return needs, [
            f"{pod.where}: resource.action: expected one of {sorted(ACTION_VERBS)}, found {action!r}"
        ]
    outputs = (pod.template.get("outputs") or {}).get("parameters") or []
    polls = resource.get("successCondition") or resource.get("failureCondition")
    reads = any(
        (o.get("valueFrom") or {}).get("jsonPath") or (o.get("valueFrom") or {}).get("jqFilter")
        for o in outputs
    )
    if action != "delete" and (polls or reads):
        verbs.add("get")
    group, kind = target
    needs.update((group, resource_name(kind), verb) for verb in verbs)
    return needs, []


def _fmt(right: tuple[str, str, str]) -> str:
    group, resource, verb = right
    return f"{verb} {group + '/' if group else ''}{resource}"


def _check_rbac(pods: list[Pod], chart: Chart) -> list[str]:
    """Each ServiceAccount is granted exactly what its templates need: nothing missing, nothing more.

    Excess is judged for the ServiceAccounts some template of the documents runs as: check the chart with
    every document that uses it (a chart-only check cannot see what the driver's templates need).
    """
    problems: list[str] = []
    needs_of: dict[str, set[tuple[str, str, str]]] = {}
    users: dict[str, list[str]] = {}
    for pod in _first_per_template(pods):
        account, _ = pod.service_account
        needs, unknown = needed_rights(pod)
        problems.extend(unknown)
        needs_of.setdefault(account, set()).update(needs)
        users.setdefault(account, []).append(pod.name)
        grants = chart.grants.get(account, [])
        missing = [n for n in sorted(needs) if not any(g.covers(*n) for g in grants)]
        if missing:
            why = (
                "Argo's executor"
                if pod.template.get("resource") is None
                else "Argo's executor and resource action"
            )
            problems.append(
                f"{pod.doc} template {pod.name!r}: ServiceAccount {account!r} may not "
                f"{', '.join(_fmt(n) for n in missing)}: expected a Role bound to it granting what {why} "
                f"needs, found {sorted({g.source for g in grants}) or 'no binding'}"
            )
    for account, needs in needs_of.items():
        excess: dict[str, list[str]] = {}
        for grant in chart.grants.get(account, []):
            for right in itertools.product(grant.groups, grant.resources, grant.verbs):
                if "*" in right or right not in needs:
                    excess.setdefault(grant.source, []).append(_fmt(right))
        for source, rights in excess.items():
            problems.append(
                f"ServiceAccount {account!r}: {source} grants {', '.join(rights)}, which none of its templates "
                f"({', '.join(sorted(set(users[account])))}) need: expected only "
                f"{', '.join(_fmt(n) for n in sorted(needs))}"
            )
    return _unique(problems)


# -- 3. references -----------------------------------------------------------------------------------------


def _refs(node: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """(field, "Secret" or "ConfigMap", name) of every reference under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else key
            if isinstance(value, dict) and isinstance(value.get("name"), str):
                if key in SECRET_SELECTORS:
                    yield where, "Secret", value["name"]
                elif key in CONFIGMAP_SELECTORS or key == "configMap":
                    yield where, "ConfigMap", value["name"]
            if (
                key == "secret"
                and isinstance(value, dict)
                and isinstance(value.get("secretName") or value.get("name"), str)
            ):
                yield where, "Secret", value.get("secretName") or value["name"]
            if key.endswith("imagePullSecrets") and isinstance(value, list):
                for i, ref in enumerate(value):
                    if isinstance(ref, dict) and "name" in ref:
                        yield f"{where}[{i}]", "Secret", ref["name"]
                continue
            yield from _refs(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _refs(value, f"{path}[{i}]")


def _pod_spec_patch(pod: Pod) -> dict[str, Any]:
    raw = pod.template.get("podSpecPatch")
    if not raw:
        return {}
    text = _PLACEHOLDER.sub("null", pod.expand(raw))
    try:
        patch = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return patch if isinstance(patch, dict) else {}


def pod_references(pod: Pod) -> list[tuple[str, str, str]]:
    """(field, kind, expanded name) of every Secret and ConfigMap the pod names."""
    template = pod.template
    parts: dict[str, Any] = {
        key: template[key]
        for key in (
            "container",
            "script",
            "containerSet",
            "initContainers",
            "sidecars",
            "volumes",
            "inputs",
            "outputs",
            "archiveLocation",
            "imagePullSecrets",
        )
        if key in template
    }
    mounted = {m.get("name") for _, m in _mounts(template)}
    parts["spec.volumes"] = [v for v in pod.spec.get("volumes") or [] if v.get("name") in mounted]
    parts["spec.imagePullSecrets"] = pod.spec.get("imagePullSecrets") or []
    parts["podSpecPatch"] = _pod_spec_patch(pod)
    refs = [(where, kind, pod.expand(name)) for where, kind, name in _refs(parts, "")]
    ref = pod.spec.get("artifactRepositoryRef")
    if ref:
        refs.append(
            (
                "spec.artifactRepositoryRef.configMap",
                "ConfigMap",
                ref.get("configMap") or DEFAULT_ARTIFACT_CONFIGMAP,
            )
        )
    return refs


def _mounts(node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "volumeMounts" and isinstance(value, list):
                yield from ((key, m) for m in value if isinstance(m, dict))
            else:
                yield from _mounts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _mounts(value)


def _check_references(
    pods: list[Pod], chart: Chart, *, operator_secrets: set[str], operator_configmaps: set[str]
) -> list[str]:
    """Every Secret and ConfigMap a pod names exists: the chart creates it or the operator is told to."""
    problems = []
    known = {
        "Secret": chart.secrets | operator_secrets,
        "ConfigMap": set(chart.configmaps) | operator_configmaps,
    }
    for pod in pods:
        for where, kind, name in pod_references(pod):
            if "{{" in name or name in known[kind]:
                continue
            problems.append(
                f"{pod.where}: {where}: expected a {kind} the chart creates or the operator's documented ones "
                f"({_some(known[kind])}), found {name!r}"
            )
    return _unique(problems)


# -- 4. edge pods ------------------------------------------------------------------------------------------


def _node_selector(pod: Pod) -> dict[str, str]:
    return pod.template.get("nodeSelector") or pod.spec.get("nodeSelector") or {}


def _affinity(pod: Pod) -> dict[str, Any]:
    return pod.template.get("affinity") or pod.spec.get("affinity") or {}


def _required_terms(pod: Pod) -> list[dict[str, Any]]:
    node = _affinity(pod).get("nodeAffinity") or {}
    return (node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []


def edge_label(pod: Pod) -> str | None:
    """The NODE_LABEL value the pod requires (unexpanded), None when it is no edge pod."""
    selector = _node_selector(pod)
    if NODE_LABEL in selector:
        return str(selector[NODE_LABEL])
    for term in _required_terms(pod):
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == NODE_LABEL and expr.get("operator") == "In" and expr.get("values"):
                return str(expr["values"][0])
    return None


def cloud_secrets(pods: list[Pod], chart: Chart) -> dict[str, str]:
    """Secret name -> why it is a cloud one: named by a non-edge pod, the artifact repository, the sites."""
    secrets: dict[str, str] = {}
    if chart.cloud_secret:
        secrets[chart.cloud_secret] = "the sites ConfigMap's cloudCredentialsSecret"
    for pod in pods:
        repo = chart.artifact_repository(pod.spec)
        if repo:
            for _, kind, name in _refs(repo[1], ""):
                if kind == "Secret":
                    secrets.setdefault(name, f"the artifact repository's ({repo[0]})")
        # A pod of an edge's item that is not pinned is check 5's problem, and its Secrets stay the edge's.
        if pod.agent or pod.item is not None or edge_label(pod) is not None:
            continue
        for where, kind, name in pod_references(pod):
            if kind == "Secret" and "{{" not in name and "imagePullSecrets" not in where:
                secrets.setdefault(name, f"cloud template {pod.name!r}'s")
    return secrets


def _archives_logs(pod: Pod, chart: Chart) -> tuple[bool, str]:
    location = pod.template.get("archiveLocation") or {}
    if "archiveLogs" in location:
        return bool(location["archiveLogs"]), "template.archiveLocation.archiveLogs"
    if "archiveLogs" in pod.spec:
        return bool(pod.spec["archiveLogs"]), "spec.archiveLogs"
    repo = chart.artifact_repository(pod.spec)
    if repo and repo[1].get("archiveLogs"):
        return True, f"archiveLogs of {repo[0]}"
    return False, ""


def _check_edge_isolation(pods: list[Pod], chart: Chart) -> list[str]:
    """Edge pods run on their own edge's node and can read only that edge's Secrets."""
    problems = []
    cloud = cloud_secrets(pods, chart)
    owners: dict[int, dict[str, str]] = {}
    for pod in pods:
        label = edge_label(pod)
        if label is None or pod.agent:
            continue
        if pod.item is not None:
            found = pod.expand(label)
            if found != edge_name(pod.item):
                problems.append(
                    f"{pod.where}: nodeSelector {NODE_LABEL}: expected the edge's name "
                    f"{edge_name(pod.item)!r}, found {found!r}"
                )
        own = edge_secrets(pod.item) if pod.item is not None else set()
        if id(pod.edges) not in owners:
            # What an item declares, then the conventional names, which no other item may claim.
            owners[id(pod.edges)] = {
                **{s: edge_name(e) for e in pod.edges for s in edge_secrets(e)},
                **{f(edge_name(e)): edge_name(e) for e in pod.edges for f in (edge_secret, site_secret)},
            }
        owner = owners[id(pod.edges)]
        for where, kind, name in pod_references(pod):
            # imagePullSecrets are the kubelet's: the pod itself cannot read them.
            if kind != "Secret" or "{{" in name or "imagePullSecrets" in where:
                continue
            if name in cloud:
                why = f"a cloud Secret ({cloud[name]})"
            elif name in owner and owner[name] != edge_name(pod.item):
                why = f"edge {owner[name]!r}'s Secret"
            elif pod.item is not None and name not in own:
                why = "not one of this edge's"
            else:
                continue
            mine = sorted(s for s in own if owner.get(s, edge_name(pod.item)) == edge_name(pod.item))
            expected = mine if pod.item is not None else "only the edge's own Secrets"
            problems.append(f"{pod.where}: {where}: expected {expected}, found {name!r}: {why}")
        archives, source = _archives_logs(pod, chart)
        if archives:
            problems.append(
                f"{pod.where}: archiveLocation.archiveLogs: expected false on an edge template (else its pod "
                f"mounts the artifact repository's Secret), found logs archived by {source}"
            )
    return _unique(problems)


# -- 5. cloud pods -----------------------------------------------------------------------------------------


def _tolerates_edge_taint(toleration: dict[str, Any]) -> bool:
    effect = toleration.get("effect") or "NoSchedule"
    if effect != "NoSchedule":
        return False
    key = toleration.get("key") or ""
    return key == EDGE_TAINT or (not key and toleration.get("operator") == "Exists")


def _check_cloud_placement(pods: list[Pod], chart: Chart) -> list[str]:
    """Every pod that is no edge pod requires a node without NODE_LABEL and tolerates no edge taint."""
    problems = []
    avoid = {"key": NODE_LABEL, "operator": "DoesNotExist"}
    for pod in _first_per_template(pods):
        if pod.agent or edge_label(pod) is not None:
            continue
        terms = _required_terms(pod)
        source = "template.affinity" if pod.template.get("affinity") else "spec.affinity"
        lacking = [
            i
            for i, term in enumerate(terms)
            if not any({k: e.get(k) for k in avoid} == avoid for e in term.get("matchExpressions") or [])
        ]
        if not terms or lacking:
            found = (
                "no required nodeSelectorTerms" if not terms else f"nodeSelectorTerms {lacking} without it"
            )
            problems.append(
                f"{pod.doc} template {pod.name!r}: {source}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: "
                f"expected {avoid} in every nodeSelectorTerm (a cloud pod must not land on an edge node), found {found}"
            )
        tolerations = (
            pod.template.get("tolerations") if "tolerations" in pod.template else pod.spec.get("tolerations")
        )
        patched = _pod_spec_patch(pod).get("tolerations") or []
        for where, items in (("tolerations", tolerations or []), ("podSpecPatch.tolerations", patched)):
            for toleration in items:
                if isinstance(toleration, dict) and _tolerates_edge_taint(toleration):
                    problems.append(
                        f"{pod.doc} template {pod.name!r}: {where}: expected no toleration of the edge taint "
                        f"{EDGE_TAINT!r}, found {toleration}"
                    )
    return problems


# -- all ---------------------------------------------------------------------------------------------------

Docs = list[dict[str, Any]]
Check = Callable[[list[Pod], Chart], list[str]]


def _run(checks: Iterable[Check], chart_docs: Docs, argo_docs: Docs) -> list[str]:
    """The documents that cannot be resolved, then what each check finds in the pods of the rest."""
    chart = Chart.of(chart_docs)
    pods, problems = pods_of(argo_docs, chart)
    return _unique([*problems, *(p for check in checks for p in check(pods, chart))])


def check_service_accounts(chart_docs: Docs, argo_docs: Docs) -> list[str]:
    """Check 1: every pod runs as a ServiceAccount the chart creates, never ``default``."""
    return _run([_check_service_accounts], chart_docs, argo_docs)


def check_rbac(chart_docs: Docs, argo_docs: Docs) -> list[str]:
    """Check 2: each ServiceAccount is granted exactly what its templates need."""
    return _run([_check_rbac], chart_docs, argo_docs)


def check_references(
    chart_docs: Docs, argo_docs: Docs, *, operator_secrets: set[str], operator_configmaps: set[str]
) -> list[str]:
    """Check 3: every Secret and ConfigMap a pod names is the chart's or the operator's."""
    return _run([_references(operator_secrets, operator_configmaps)], chart_docs, argo_docs)


def check_edge_isolation(chart_docs: Docs, argo_docs: Docs) -> list[str]:
    """Check 4: edge pods on their own edge's node, reading only that edge's Secrets."""
    return _run([_check_edge_isolation], chart_docs, argo_docs)


def check_cloud_placement(chart_docs: Docs, argo_docs: Docs) -> list[str]:
    """Check 5: cloud pods off edge nodes, tolerating no edge taint."""
    return _run([_check_cloud_placement], chart_docs, argo_docs)


def _references(secrets: set[str], configmaps: set[str]) -> Check:
    return lambda pods, chart: _check_references(
        pods, chart, operator_secrets=secrets, operator_configmaps=configmaps
    )


def check_cluster(
    chart_docs: Docs, argo_docs: Docs, *, operator_secrets: set[str], operator_configmaps: set[str]
) -> list[str]:
    """Every problem a cluster with the chart installed would have running ``argo_docs`` (checks 1-5)."""
    checks = [
        _check_service_accounts,
        _check_rbac,
        _references(operator_secrets, operator_configmaps),
        _check_edge_isolation,
        _check_cloud_placement,
    ]
    return _run(checks, chart_docs, argo_docs)
