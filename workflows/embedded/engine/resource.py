"""``resource`` templates on ``argoproj.io/v1alpha1`` Workflow manifests: create a child Workflow, or
patch a Workflow's labels and annotations, then wait for a condition and read outputs from the object.

What Argo does (``workflow/controller/operator.go`` ``executeResource``, ``cmd/argoexec/commands/
resource.go``, ``workflow/executor/resource.go``), and how the engine mirrors it:

* The manifest text is substituted with ``{{...}}`` like the rest of the template, then parsed (YAML).
  A resource node is a Pod node: it takes a pod slot, honours ``activeDeadlineSeconds``,
  ``pendingTimeout`` and ``retryStrategy`` like a container.
* ``setOwnerReference: true`` appends a controller reference to the running workflow to the manifest's
  ``metadata.ownerReferences`` (``metav1.NewControllerRef``: apiVersion, kind, name, uid, controller,
  blockOwnerDeletion).
* ``action: create`` is ``kubectl create -f manifest``: ``metadata.name``, else ``generateName`` plus five
  random characters; the namespace defaults to the workflow's. The object goes into the
  :class:`~.objects.WorkflowObjects` store; a name that exists fails the node with kubectl's message
  (``...(AlreadyExists)... already exists``), as does one whose run directory ``<run_dir>/<name>``
  exists (left by a run of an earlier process: names stay unique across processes sharing a
  ``run_dir``). The engine then runs the child itself, in the same event loop, as the workflow
  controller would: ``workflowTemplateRef`` resolves against ``EngineOptions.templates``; a child the
  engine cannot run (unknown template, missing parameter, unsupported field) gets phase ``Error`` and
  that message, as a controller would give it. The child's status is published as it runs (see
  :mod:`.objects`); its nodes reach ``on_node`` with their ``workflow_name``. A parent waits for the
  children it started before its own run returns (on a cluster they would go on running).
* ``action: patch`` is ``kubectl patch -f manifest --type <mergeStrategy>``: the target is the manifest's
  ``metadata.name`` (``{{workflow.name}}``: the running workflow itself). Only ``mergeStrategy: merge``
  of ``metadata.labels``/``annotations`` is executed; ``json`` patches are refused; ``strategic`` (the
  default) is invalid, since the API server refuses strategic merge patches of custom resources.
* ``successCondition``/``failureCondition`` (:mod:`.conditions`): after the action, Argo polls the
  object until a failure requirement matches (node Failed, ``failure condition '<req>' evaluated
  true``) or every success requirement does; with neither, the node succeeds at once. The engine
  re-evaluates whenever the object changes; once nothing in this engine can change it any more (its
  run ended, or it is not running here) and no condition matched, the node fails instead of waiting
  forever as Argo would.
* ``outputs.parameters[].valueFrom.jsonPath`` (:mod:`.jsonpath`): ``kubectl get -o jsonpath``; nothing
  matched gives ``""`` (``valueFrom.default`` is only used by Argo when there is no resource at all, so
  never here). ``jqFilter`` is refused.

Other actions (get, apply, delete, replace), other kinds, ``manifestFrom`` and ``flags`` are refused up
front by :func:`check_resource`, each with its field path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import shutil
import uuid
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

from edgefed.workflows.phases import Phase

from .conditions import ConditionError, Requirement, matches, parse_selector
from .errors import EngineError, WorkflowInvalidError
from .jsonpath import JSONPathError, evaluate_jsonpath, parse_jsonpath
from .nodes import Node, NodeRecord, timestamp
from .objects import API_VERSION, KIND, WorkflowExistsError, WorkflowNotFoundError, WorkflowObjects
from .params import substitute
from .rules import NOT_SUPPORTED
from .scope import WorkflowScope, to_str, truthy
from .yamlio import load_yaml

__all__ = ["ChildRun", "Family", "Resources", "check_resource"]

#: Where Argo's executor writes the manifest (``common.ExecutorResourceManifestPath``): kubectl names it.
MANIFEST_PATH = "/tmp/manifest.yaml"
_ACTIONS = ("create", "patch")
_RESOURCE_FIELDS = {
    "action",
    "manifest",
    "mergeStrategy",
    "setOwnerReference",
    "successCondition",
    "failureCondition",
}
_PATCHABLE_METADATA = ("labels", "annotations")
_VARIABLE = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
#: Kubernetes' generateName alphabet (``k8s.io/apiserver/pkg/storage/names``: no vowels, no 0/1/3).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class _Failed(EngineError):
    """What the executor's ``kubectl`` would fail with: the node is Failed with this message."""


class ChildRun(Protocol):
    """A child Workflow prepared to run (the executor's run of a document)."""

    uid: str

    def execute(self) -> Coroutine[Any, Any, Any]: ...


class Spawn(Protocol):
    def __call__(self, obj: dict[str, Any], run_dir: Path) -> ChildRun:
        """Prepare the child run of ``obj`` in ``run_dir``; :class:`WorkflowInvalidError` if it cannot run."""
        ...


class Family:
    """What a top-level run and every Workflow it starts (in the same event loop) share: the store,
    where run directories go, and which workflows are live here (so a waiting condition can tell
    when to look again)."""

    def __init__(self, *, store: WorkflowObjects, run_root: Path) -> None:
        self.store = store
        self.run_root = run_root
        self._changes: dict[str, asyncio.Event] = {}
        #: The deadlines of the family's runs (:meth:`terminate` passes them all) and their loop.
        self.deadlines: list[Any] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    def terminate(self) -> None:
        """End every run of the family now, as ``argo terminate`` would (in the family's loop)."""
        for deadline in self.deadlines:
            deadline.expire()

    def live(self, name: str) -> None:
        self._changes.setdefault(name, asyncio.Event())

    def changed(self, name: str) -> None:
        event = self._changes.get(name)
        if event is not None:
            event.set()
            self._changes[name] = asyncio.Event()

    def ended(self, name: str) -> None:
        event = self._changes.pop(name, None)
        if event is not None:
            event.set()

    def next_change(self, name: str) -> asyncio.Event | None:
        """Set on the next change of ``name``; None if it does not run here (it will not change)."""
        return self._changes.get(name)


def _blank(text: str) -> str:
    return _VARIABLE.sub("x", text)


def check_resource(t: Mapping[str, Any], where: str) -> tuple[list[str], list[str]]:
    """(unsupported, invalid) problems of a template's ``resource`` and of its resource-only outputs."""
    unsupported: list[str] = []
    invalid: list[str] = []
    outputs = (t.get("outputs") or {}).get("parameters") or []
    if "resource" not in t:
        for i, p in enumerate(outputs):
            vf = (p.get("valueFrom") or {}) if isinstance(p, dict) else {}
            if "jsonPath" in vf:
                invalid.append(
                    f"{where}.outputs.parameters[{i}].valueFrom.jsonPath: only for resource templates"
                )
        return unsupported, invalid
    res = t["resource"]
    rw = f"{where}.resource"
    if not isinstance(res, dict):
        return unsupported, [f"{rw}: expected a mapping"]
    others = [k for k in ("container", "script", "dag", "steps") if k in t]
    if others:
        invalid.append(f"{where}: template has more than one of resource, {', '.join(others)}")
    for key in res:
        if key in ("manifestFrom", "flags"):
            unsupported.append(f"{rw}.{key}: {NOT_SUPPORTED}")
        elif key not in _RESOURCE_FIELDS:
            unsupported.append(f"{rw}.{key}: unknown field ({NOT_SUPPORTED})")
    action = res.get("action")
    if action not in _ACTIONS:
        if action in ("get", "apply", "delete", "replace"):
            unsupported.append(f"{rw}.action: {action}: {NOT_SUPPORTED} (only create and patch)")
        else:
            invalid.append(
                f"{rw}.action: expected one of get, create, apply, delete, replace, patch, got {action!r}"
            )
    strategy = res.get("mergeStrategy") or "strategic"
    if action == "patch" and strategy == "json":
        unsupported.append(f"{rw}.mergeStrategy: json: {NOT_SUPPORTED} (use merge)")
    elif action == "patch" and strategy == "strategic":
        invalid.append(
            f"{rw}.mergeStrategy: {strategy}{'' if res.get('mergeStrategy') else ' (the default)'}: the API "
            "server refuses strategic merge patches of custom resources such as Workflow; use merge"
        )
    elif strategy not in ("strategic", "merge", "json"):
        invalid.append(f"{rw}.mergeStrategy: expected one of strategic, merge, json, got {strategy!r}")
    for cond in ("successCondition", "failureCondition"):
        text = res.get(cond)
        if isinstance(text, str) and "{{" not in text:
            try:
                parse_selector(text)
            except ConditionError as exc:
                invalid.append(f"{rw}.{cond}: {exc}")
    if "manifest" not in res:
        invalid.append(f"{rw}.manifest: missing")
    else:
        _check_manifest(to_str(res["manifest"]), action, f"{rw}.manifest", unsupported, invalid)
    for i, p in enumerate(outputs):
        vf = (p.get("valueFrom") or {}) if isinstance(p, dict) else {}
        pw = f"{where}.outputs.parameters[{i}].valueFrom"
        for key in ("path", "parameter"):
            if key in vf:
                invalid.append(f"{pw}.{key}: not for resource templates (use jsonPath)")
        path = vf.get("jsonPath")
        if isinstance(path, str) and "{{" not in path:
            try:
                parse_jsonpath(path)
            except JSONPathError as exc:
                unsupported.append(f"{pw}.jsonPath: {exc}")
    return unsupported, invalid


def _check_manifest(text: str, action: Any, where: str, unsupported: list[str], invalid: list[str]) -> None:
    templated = "{{" in text
    try:
        manifest = load_yaml(_blank(text))
    except yaml.YAMLError as exc:
        if not templated:
            invalid.append(f"{where}: not valid YAML: {exc}")
        return
    if not isinstance(manifest, dict):
        if not templated:
            invalid.append(f"{where}: expected a mapping (one Kubernetes object)")
        return
    found = (manifest.get("apiVersion"), manifest.get("kind"))
    if found != (API_VERSION, KIND) and not (templated and "x" in found):
        unsupported.append(
            f"{where}: {found[0]} {found[1]}: {NOT_SUPPORTED} (only {API_VERSION} {KIND} manifests)"
        )
    meta = manifest.get("metadata")
    if not isinstance(meta, dict):
        invalid.append(f"{where}.metadata: missing")
        return
    if action == "create" and not meta.get("name") and not meta.get("generateName"):
        invalid.append(f"{where}.metadata: name or generateName is required")
    if action == "patch":
        if not meta.get("name"):
            invalid.append(f"{where}.metadata.name: required to patch (kubectl patch -f)")
        for key in manifest:
            if key not in ("apiVersion", "kind", "metadata"):
                unsupported.append(
                    f"{where}.{key}: patching it is {NOT_SUPPORTED} (only metadata labels/annotations)"
                )
        for key in meta:
            if key not in ("name", "namespace", *_PATCHABLE_METADATA):
                unsupported.append(f"{where}.metadata.{key}: patching it is {NOT_SUPPORTED}")


def _conditions(
    res: Mapping[str, Any], scope: Mapping[str, str]
) -> tuple[list[Requirement], list[Requirement]]:
    parsed: dict[str, list[Requirement]] = {}
    for cond, label in (("successCondition", "success"), ("failureCondition", "fail")):
        text = substitute(to_str(res.get(cond) or ""), scope, where=f"resource.{cond}")
        try:
            parsed[cond] = parse_selector(text) if text else []
        except ConditionError as exc:
            raise _Failed(f"{label} condition '{text}' failed to parse: {exc}") from None
    return parsed["successCondition"], parsed["failureCondition"]


def _json(obj: Any) -> Any:
    """The object as the API server would hold it: JSON values only (YAML dates become strings)."""
    return json.loads(json.dumps(obj, default=str))


class Resources:
    """Runs the resource templates of one workflow run (see the module docstring)."""

    def __init__(
        self,
        *,
        family: Family,
        records: NodeRecord,
        workflow: WorkflowScope,
        name: str,
        namespace: str,
        uid: str,
        spawn: Spawn,
    ) -> None:
        self.family = family
        self.records = records
        self.workflow = workflow
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.spawn = spawn
        #: The children this run created, by name, while they run (then their results).
        self.children: dict[str, asyncio.Future[Any]] = {}

    async def join(self) -> dict[str, Any]:
        """Wait for every child this run started; their results by name (a crashed child is left out)."""
        results: dict[str, Any] = {}
        for name, task in self.children.items():
            with contextlib.suppress(Exception):
                results[name] = await task
        return results

    async def run(self, node: Node, tmpl: Mapping[str, Any], scope: Mapping[str, str]) -> None:
        """Run the resource node (already Running, holding a pod slot) to a fulfilled phase.

        Unresolved variables raise (the caller errors the node, as Argo's controller does before the
        pod starts); what ``kubectl`` would fail at fails the node.
        """
        res = tmpl["resource"]
        text = substitute(to_str(res.get("manifest") or ""), scope, where="resource.manifest")
        try:
            try:
                manifest = load_yaml(text)
            except yaml.YAMLError as exc:
                raise _Failed(f"error: error parsing {MANIFEST_PATH}: {exc}") from None
            if not isinstance(manifest, dict) or not isinstance(manifest.get("metadata") or {}, dict):
                raise _Failed(f"error: error parsing {MANIFEST_PATH}: expected one Kubernetes object")
            manifest = _json(manifest)
            if manifest.get("apiVersion") != API_VERSION or manifest.get("kind") != KIND:
                raise _Failed(
                    f"{manifest.get('apiVersion')} {manifest.get('kind')}: only {API_VERSION} {KIND} "
                    f"manifests are executed by the embedded engine"
                )
            if res["action"] == "create":
                name = self._create(manifest, truthy(res.get("setOwnerReference"), False))
            else:
                name = self._patch(manifest)
            success, failure = _conditions(res, scope)  # parsed after the action, as Argo's WaitResource does
            obj = await self._wait(name, success, failure)
            params = self._outputs(tmpl, scope, obj)
        except _Failed as exc:
            self.records.set_phase(node, Phase.FAILED, str(exc))
            return
        node.outputs = {"parameters": params}
        self.records.set_phase(node, Phase.SUCCEEDED)

    # -- actions
    def _create(self, manifest: dict[str, Any], owner: bool) -> str:
        meta = manifest.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            if not meta.get("generateName"):
                raise _Failed("error: resource name may not be empty")
            name = meta["generateName"] + "".join(random.choices(_NAME_ALPHABET, k=5))
        if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
            raise _Failed(
                f'The Workflow "{name}" is invalid: metadata.name: Invalid value: "{name}": a lowercase RFC '
                "1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
                "start and end with an alphanumeric character"
            )
        meta["name"] = name
        meta.setdefault("namespace", self.namespace)
        meta["creationTimestamp"] = timestamp(datetime.now(UTC))
        if owner:
            meta["ownerReferences"] = [
                *(meta.get("ownerReferences") or []),
                {
                    "apiVersion": API_VERSION,
                    "kind": KIND,
                    "name": self.name,
                    "uid": self.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                },
            ]
        if self.family.store.get(name) is not None:  # the store's 409 first: it names no directory
            raise _Failed(_already_exists(WorkflowExistsError(name)))
        run_dir = self.family.run_root / name
        try:
            run_dir.mkdir(parents=True)
        except FileExistsError:
            raise _Failed(
                _already_exists(
                    WorkflowExistsError(
                        name, f"its run directory {run_dir} exists: a run of an earlier process"
                    )
                )
            ) from None
        child: ChildRun | None = None
        problem = ""
        try:
            child = self.spawn(manifest, run_dir)
            meta["uid"] = child.uid
        except WorkflowInvalidError as exc:
            problem = str(exc)
            meta["uid"] = str(uuid.uuid4())
        try:
            self.family.store.create(manifest)
        except WorkflowExistsError as exc:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise _Failed(_already_exists(exc)) from None
        except Exception as exc:  # any other refusal of the store (e.g. its owner is gone): kubectl's wording
            shutil.rmtree(run_dir, ignore_errors=True)
            raise _Failed(f"Error from server: {exc}") from None
        if child is None:
            now = timestamp(datetime.now(UTC))
            status = {"phase": str(Phase.ERROR), "message": problem, "startedAt": now, "finishedAt": now}
            self.family.store.update_status(name, {**status, "progress": "0/0"})
        else:
            self.family.live(name)
            self.children[name] = asyncio.ensure_future(child.execute())
        return name

    def _patch(self, manifest: dict[str, Any]) -> str:
        meta = manifest.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise _Failed("error: resource name may not be empty")
        other = [k for k in manifest if k not in ("apiVersion", "kind", "metadata")]
        other += [f"metadata.{k}" for k in meta if k not in ("name", "namespace", *_PATCHABLE_METADATA)]
        if other:
            raise _Failed(f"resource.manifest: patching {', '.join(other)} is {NOT_SUPPORTED}")
        body = {"metadata": {k: meta[k] for k in _PATCHABLE_METADATA if k in meta}}
        try:
            self.family.store.patch(name, body)
        except WorkflowNotFoundError as exc:
            raise _Failed(f"no more retries Error from server (NotFound): {exc}") from None
        self.family.changed(name)
        return name

    # -- conditions and outputs
    async def _wait(
        self, name: str, success: list[Requirement], failure: list[Requirement]
    ) -> dict[str, Any]:
        while True:
            change = self.family.next_change(name)  # taken before reading: no change can slip between
            obj = self.family.store.get(name)
            if obj is None:
                raise _Failed(
                    "The resource has been deleted while its status was still being checked. "
                    f'Will not be retried: workflows.argoproj.io "{name}" not found'
                )
            verdict, message = matches(obj, success, failure)
            if verdict is False:
                raise _Failed(message)
            if verdict is True:
                return obj
            if change is None:
                phase = (obj.get("status") or {}).get("phase") or "unknown"
                raise _Failed(
                    f"neither success condition nor failure condition matched workflow {name!r} (phase "
                    f"{phase}), and nothing in this engine will change it any more (Argo would keep polling)"
                )
            await change.wait()

    def _outputs(self, tmpl: Mapping[str, Any], scope: Mapping[str, str], obj: Any) -> dict[str, str]:
        params: dict[str, str] = {}
        for p in (tmpl.get("outputs") or {}).get("parameters") or []:
            vf = p.get("valueFrom") or {}
            where = f"outputs.parameters.{p['name']}"
            if "jsonPath" in vf:
                path = substitute(to_str(vf["jsonPath"]), scope, where=f"{where}.valueFrom.jsonPath")
                try:
                    value = evaluate_jsonpath(path, obj)
                except JSONPathError as exc:
                    raise _Failed(f"error: {exc}") from None
            elif "value" in p:
                value = substitute(to_str(p["value"]), scope, where=where)
            else:
                continue
            params[p["name"]] = value
            if p.get("globalName"):
                self.workflow.set_output(p["globalName"], value)
        return params


def _already_exists(exc: WorkflowExistsError) -> str:
    """kubectl's message for a create refused with 409, as Argo's executor reports it."""
    return f'no more retries Error from server (AlreadyExists): error when creating "{MANIFEST_PATH}": {exc}'
