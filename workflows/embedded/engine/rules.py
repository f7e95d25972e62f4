"""What the embedded engine executes, ignores or refuses: the whitelist of every field of a Workflow.

Every key of a document is classified as

* executed   - implemented by the engine (``"ok"``);
* ignored    - meaningful only on a cluster (``image``, ``resources``, ``nodeSelector``, ``podGC``,
  ``metrics``...), accepted and ignored (``"ignore"``);
* rejected   - has execution meaning that the engine does not implement (``suspend``, artifacts,
  ``volumes``, ``hooks``, semaphores...): ``<path>: not supported by the embedded engine``
  (``_reject(hint)``);
* unknown    - anything else, e.g. a misspelled key: ``<path>: unknown field``.

Executed besides containers, scripts, DAGs and steps: ``resource`` templates on Workflow manifests
(``create``, ``patch`` with ``mergeStrategy: merge``; checked in detail by
:func:`~.resource.check_resource`) and their ``outputs.parameters[].valueFrom.jsonPath``;
``synchronization.mutexes`` on the workflow and on templates (:mod:`.mutex`); a template's
``pendingTimeout`` (:mod:`.pods`); ``withSequence``, task/step ``onExit`` and ``hooks.exit`` (other
hooks are refused) and a dag/steps template's ``failFast`` (:mod:`.fanout`); ``retryStrategy.expression``
and ``env[].valueFrom.fieldRef`` (the downward API: the pod's node is this host) and the kubelet's ``$(VAR)``
expansion in command, args and env values (:mod:`.pods`); ``{{=...}}`` expression tags anywhere (:mod:`.expr`, which refuses what is outside its subset, each
expression with its field path, in :func:`~.document.check_document`); the entrypoint's (and every exit
handler's) inputs from ``spec.arguments``.

Hand-written because there is no Python schema of what *this* engine executes; :mod:`.document` walks it.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .pods import DOWNWARD_FIELDS
from .yamlio import load_yaml

__all__ = ["DOCUMENT", "NOT_SUPPORTED", "STEP", "Rule"]

NOT_SUPPORTED = "not supported by the embedded engine"
_NS = NOT_SUPPORTED

# Rules: "ok" = executed, "ignore" = accepted and ignored, a str starting with "!" = rejected (with the
# text after "!" as an optional hint), a dict = nested object, a list with one element = list of objects,
# a callable = custom check, returning the problems it found.
Rule = Any


def _reject(hint: str = "") -> str:
    return "!" + hint


#: Pod fields that only decide where a pod is scheduled: a podSpecPatch touching nothing else changes
#: nothing about what runs, so on one machine it is ignored like nodeSelector and tolerations.
_SCHEDULING_FIELDS = frozenset(
    {"tolerations", "affinity", "nodeSelector", "priorityClassName", "schedulerName"}
)
_VARIABLE = re.compile(r"\{\{[^}]*\}\}")


_RAW_ARTIFACT_KEYS = frozenset({"name", "path", "raw", "mode", "description"})


def _raw_artifacts(value: Any, path: str) -> list[str]:
    """Input artifacts: only ``raw`` ones (their data inline), with a path; anything else is refused."""
    if not isinstance(value, list):
        return [f"{path}: expected a list"]
    problems = []
    for i, artifact in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(artifact, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        where += f" (name: {artifact.get('name')})"
        other = sorted(set(artifact) - _RAW_ARTIFACT_KEYS)
        if other or not isinstance(artifact.get("raw"), dict) or set(artifact["raw"]) != {"data"}:
            problems.append(
                f"{where}: only raw artifacts are {_NS.replace('not ', '')}; artifacts from {', '.join(other) or 'a repository'}: {_NS}"
            )
        elif "path" not in artifact:
            problems.append(f"{where}: a raw artifact needs a path")
    return problems


def _scheduling_patch(value: Any, path: str) -> list[str]:
    """Accept a podSpecPatch only if it patches scheduling fields (checked with variables blanked out)."""
    try:
        patch = load_yaml(_VARIABLE.sub("null", str(value)))
    except yaml.YAMLError:
        return [f"{path}: not valid YAML/JSON"]
    if not isinstance(patch, dict):
        return [f"{path}: expected a mapping"]
    other = sorted(set(patch) - _SCHEDULING_FIELDS)
    if other:
        return [
            f"{path}: patches {', '.join(other)}: {_NS} (only scheduling fields: {', '.join(sorted(_SCHEDULING_FIELDS))})"
        ]
    return []


def _only(accepted: Any, message: str) -> Any:
    """A rule for a list whose items must all pass ``accepted`` (a dict -> bool); others are refused."""

    def check(value: Any, path: str) -> list[str]:
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [
            f"{path}[{i}]: {message}: {_NS}"
            for i, item in enumerate(value)
            if not isinstance(item, dict) or not accepted(item)
        ]

    return check


#: Workflow volumes: only ``emptyDir`` ones; container mounts only at ``/tmp`` -- what the engine gives
#: every node already (its private directory, see :mod:`.params`).
_tmp_volumes = _only(
    lambda v: set(v) == {"name", "emptyDir"}, "only emptyDir volumes are accepted; other volumes"
)
_tmp_mounts = _only(
    lambda m: m.get("mountPath") == "/tmp" and set(m) <= {"name", "mountPath"},
    "only a mount at /tmp is accepted; mounts elsewhere",
)


def _downward(value: Any, path: str) -> list[str]:
    """A ``fieldRef`` the engine's downward API answers (:data:`~.pods.DOWNWARD_FIELDS`)."""
    if value in DOWNWARD_FIELDS:
        return []
    return [f"{path}: expected one of {', '.join(DOWNWARD_FIELDS)}, found {value!r}: {_NS}"]


_PARAM_VALUE_FROM_ARG = {
    "configMapKeyRef": _reject(),
    "event": _reject(),
    "expression": _reject(),
    "jsonPath": _reject(),
    "jqFilter": _reject(),
    "path": _reject("only on outputs"),
    "parameter": _reject("only on outputs"),
    "default": _reject("only on outputs"),
    "supplied": _reject(),
}

_ARG_PARAM = {
    "name": "ok",
    "value": "ok",
    "default": "ok",
    "description": "ignore",
    "enum": "ok",
    "valueFrom": _PARAM_VALUE_FROM_ARG,
    "globalName": _reject(),
}

_ARGUMENTS = {"parameters": [_ARG_PARAM], "artifacts": _reject("artifacts")}

_INPUTS = {
    "parameters": [
        {
            "name": "ok",
            "value": "ok",
            "default": "ok",
            "enum": "ok",
            "description": "ignore",
            "valueFrom": _PARAM_VALUE_FROM_ARG,
            "globalName": _reject(),
        }
    ],
    # Only raw artifacts (data written to a file by Argo itself): no repository is involved, so one
    # machine can honour them exactly. Every other artifact source is refused.
    "artifacts": lambda value, path: _raw_artifacts(value, path),
}

_OUTPUTS = {
    "parameters": [
        {
            "name": "ok",
            "value": "ok",
            "description": "ignore",
            "globalName": "ok",
            "enum": "ignore",
            "valueFrom": {
                "path": "ok",
                "default": "ok",
                "parameter": "ok",
                "configMapKeyRef": _reject(),
                "event": _reject(),
                "expression": _reject(),
                "jsonPath": "ok",  # resource templates only (checked in .resource)
                "jqFilter": _reject("use jsonPath"),
                "supplied": _reject(),
            },
        }
    ],
    "artifacts": _reject("artifacts"),
    "result": _reject(),
    "exitCode": _reject(),
}

_ENV = {
    "name": "ok",
    "value": "ok",
    "valueFrom": {
        "secretKeyRef": {"name": "ok", "key": "ok", "optional": "ok"},
        "configMapKeyRef": _reject(),
        "fieldRef": {"fieldPath": _downward, "apiVersion": "ignore"},
        "resourceFieldRef": _reject(),
    },
}

_CONTAINER = {
    "name": "ignore",
    "image": "ignore",
    "imagePullPolicy": "ignore",
    "command": "ok",
    "args": "ok",
    "env": [_ENV],
    "resources": "ignore",
    "securityContext": "ignore",
    "ports": "ignore",
    "readinessProbe": "ignore",
    "livenessProbe": "ignore",
    "startupProbe": "ignore",
    "terminationMessagePath": "ignore",
    "terminationMessagePolicy": "ignore",
    "stdin": "ignore",
    "stdinOnce": "ignore",
    "tty": "ignore",
    "envFrom": _reject(),
    "volumeMounts": _tmp_mounts,
    "volumeDevices": _reject("volumes"),
    "workingDir": _reject("nodes run in their private work directory"),
    "lifecycle": _reject(),
    "restartPolicy": _reject(),
    "resizePolicy": "ignore",
}

_SCRIPT = {**_CONTAINER, "source": "ok"}

_CONTINUE_ON = {"failed": "ok", "error": "ok"}


def _mutexes(value: Any, path: str) -> list[str]:
    """``synchronization.mutexes``: each with a name (and optional namespace); database locks refused."""
    if not isinstance(value, list):
        return [f"{path}: expected a list"]
    problems = []
    for i, mutex in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(mutex, dict) or not mutex.get("name"):
            problems.append(f"{where}.name: required")
            continue
        problems += [
            f"{where}.{k}: unknown field ({_NS})" for k in mutex if k not in ("name", "namespace", "database")
        ]
        if mutex.get("database"):
            problems.append(f"{where}.database: {_NS} (database locks)")
    return problems


#: Argo v3.6+ ``Synchronization`` (v4.1.2's schema: ``mutexes`` and ``semaphores`` lists).
_SYNCHRONIZATION = {"mutexes": _mutexes, "semaphores": _reject("semaphores")}

_HOOK_KEYS = frozenset({"template", "arguments", "expression"})


def _exit_hook_only(value: Any, path: str) -> list[str]:
    """A task's/step's ``hooks``: the ``exit`` hook (template, arguments, expression) and nothing else."""
    if not isinstance(value, dict):
        return [f"{path}: expected a mapping"]
    problems = []
    for name, hook in value.items():
        where = f"{path}.{name}"
        if name != "exit":
            problems.append(f"{where}: {_NS} (lifecycle hooks other than exit)")
        elif not isinstance(hook, dict):
            problems.append(f"{where}: expected a mapping")
        else:
            problems += [
                f"{where}.{k}: {_NS}" if k == "templateRef" else f"{where}.{k}: unknown field ({_NS})"
                for k in hook
                if k not in _HOOK_KEYS
            ]
            if "artifacts" in (hook.get("arguments") or {}):
                problems.append(f"{where}.arguments.artifacts: {_NS} (artifacts)")
            if not hook.get("template") and "templateRef" not in hook:
                problems.append(f"{where}.template: required")
    return problems


_STEP = {
    "name": "ok",
    "template": "ok",
    "arguments": _ARGUMENTS,
    "when": "ok",
    "withItems": "ok",
    "withParam": "ok",
    "withSequence": {"count": "ok", "start": "ok", "end": "ok", "format": "ok"},
    "continueOn": _CONTINUE_ON,
    "description": "ignore",
    "onExit": "ok",
    "hooks": _exit_hook_only,
    "templateRef": _reject(),
    "inline": _reject(),
}

_DAG_TASK = {**_STEP, "dependencies": "ok", "depends": "ok"}

_RETRY = {
    "limit": "ok",
    "retryPolicy": "ok",
    "backoff": {"duration": "ok", "factor": "ok", "maxDuration": "ok", "cap": "ignore"},
    "affinity": "ignore",
    "expression": "ok",
}

_TEMPLATE = {
    "name": "ok",
    "inputs": _INPUTS,
    "outputs": _OUTPUTS,
    "container": _CONTAINER,
    "script": _SCRIPT,
    "dag": {"tasks": [_DAG_TASK], "failFast": "ok", "target": _reject()},
    "steps": "ok",  # list of lists of _STEP, walked by hand
    "retryStrategy": _RETRY,
    "activeDeadlineSeconds": "ok",
    "pendingTimeout": "ok",
    "parallelism": "ok",
    "failFast": "ok",  # Template.FailFast, on dag/steps templates (.fanout.fail_fast_gate)
    "resource": "ok",  # walked by .resource.check_resource
    "synchronization": _SYNCHRONIZATION,
    # cluster-only
    "metadata": "ignore",
    "nodeSelector": "ignore",
    "tolerations": "ignore",
    "affinity": "ignore",
    "serviceAccountName": "ignore",
    "automountServiceAccountToken": "ignore",
    "securityContext": "ignore",
    "metrics": "ignore",
    "priority": "ignore",
    "priorityClassName": "ignore",
    "schedulerName": "ignore",
    "archiveLocation": "ignore",
    "executor": "ignore",
    "hostAliases": "ignore",
    "podSpecPatch": _scheduling_patch,
    # rejected features
    "suspend": _reject(),
    "containerSet": _reject(),
    "http": _reject(),
    "plugin": _reject(),
    "data": _reject(),
    "volumes": _reject(),
    "sidecars": _reject(),
    "initContainers": _reject(),
    "memoize": _reject(),
    "daemon": _reject(),
    "timeout": _reject("use activeDeadlineSeconds"),
    "artifactLocation": _reject("artifacts"),
    "artifactGC": _reject("artifacts"),
}

_SPEC = {
    "entrypoint": "ok",
    "templates": [_TEMPLATE],
    "arguments": {"parameters": [_ARG_PARAM], "artifacts": _reject("artifacts")},
    "onExit": "ok",
    "parallelism": "ok",
    "activeDeadlineSeconds": "ok",
    # cluster-only
    "serviceAccountName": "ignore",
    "automountServiceAccountToken": "ignore",
    "executor": "ignore",
    "podGC": "ignore",
    "ttlStrategy": "ignore",
    "ttlSecondsAfterFinished": "ignore",
    "metrics": "ignore",
    "artifactRepositoryRef": "ignore",
    "podMetadata": "ignore",
    "priority": "ignore",
    "podPriority": "ignore",
    "podPriorityClassName": "ignore",
    "nodeSelector": "ignore",
    "tolerations": "ignore",
    "affinity": "ignore",
    "securityContext": "ignore",
    "imagePullSecrets": "ignore",
    "volumeClaimGC": "ignore",
    "workflowMetadata": "ignore",
    "archiveLogs": "ignore",
    "schedulerName": "ignore",
    "dnsPolicy": "ignore",
    "dnsConfig": "ignore",
    "hostNetwork": "ignore",
    "hostAliases": "ignore",
    "podDisruptionBudget": "ignore",
    "artifactGC": "ignore",
    # rejected features
    "podSpecPatch": _reject(),
    "volumes": _tmp_volumes,
    "volumeClaimTemplates": _reject("volumes"),
    "workflowTemplateRef": _reject(),
    "templateDefaults": _reject(),
    "synchronization": _SYNCHRONIZATION,
    "hooks": _reject("lifecycle hooks"),
    "retryStrategy": _reject("set retryStrategy on each template"),
    "suspend": _reject(),
    "shutdown": _reject(),
    "podSpecPatchFrom": _reject(),
}

_DOCUMENT = {
    "apiVersion": "ok",
    "kind": "ok",
    "metadata": "ok",  # name/generateName/namespace/labels/annotations read, the rest ignored
    "spec": _SPEC,
    "status": "ignore",
}

#: The rules of a step (walked by hand inside ``steps``' list of lists).
STEP = _STEP
DOCUMENT = _DOCUMENT
