"""Writing a task's manifests to a directory: the Python API behind ``edgefed generate``.

A user's script generates per-task pipelines in a few lines::

    from edgefed.workflows.build import write_manifests
    from edgefed.workflows.spec import load_task

    for path in Path("tasks").glob("*.yaml"):
        write_manifests(load_task(path), Path("out") / path.stem)
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import yaml

from edgefed.steps import layout
from edgefed.workflows.build.names import NODE_LABEL
from edgefed.workflows.build.settings import DEFAULT_SETTINGS, ClusterSettings
from edgefed.workflows.build.workflows import manifests
from edgefed.workflows.policy import iam_policy, mc_commands, notification_model, policy_model
from edgefed.workflows.spec import FederatedTask


def label_nodes_script(task: FederatedTask) -> str:
    """The kubectl commands that pin each edge's steps to its node (``edgefed.io/edge=<edge>``)."""
    lines = [
        "#!/bin/sh",
        f"# Label the edge nodes of task {task.name}: each edge's steps run where its label is.",
        "set -eu",
    ]
    lines += [
        f"kubectl label node {shlex.quote(e.node)} {NODE_LABEL}={shlex.quote(e.name)} --overwrite"
        for e in task.spec.edges
    ]
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the resource templates' manifests) as ``|`` blocks, as people write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not value.endswith((" ", "\t")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(document: dict) -> str:
    """A generated document as YAML."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=120)


def write_manifests(
    task: FederatedTask,
    out: Path,
    *,
    cron: bool = True,
    settings: ClusterSettings = DEFAULT_SETTINGS,
) -> list[Path]:
    """Write the task's manifests (and ``label-nodes.sh``) into ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in manifests(task, cron=cron, settings=settings).items():
        path = out / name
        path.write_text(dump_yaml(document))
        written.append(path)
    script = out / f"{task.name}-label-nodes.sh"
    script.write_text(label_nodes_script(task))
    script.chmod(0o755)
    written.append(script)
    written += write_minio_policies(task, out)
    return written


def write_minio_policies(task: FederatedTask, out: Path) -> list[Path]:
    """The MinIO IAM policies of the task's cloud and edge identities
    (``<task>-minio-policy-<identity>.json``) and the ``mc`` commands that install them
    (``<task>-minio-policies.txt``), all from :func:`~edgefed.workflows.policy.policy_model`."""
    model = policy_model(e.name for e in task.spec.edges)
    del model[layout.ADMIN_IDENTITY]  # a MinIO's own root user: no policy to generate
    return _write_policies(model, out, prefix=task.name)


def _write_policies(model: dict, out: Path, *, prefix: str) -> list[Path]:
    """Each identity's IAM policy (``<prefix>-minio-policy-<identity>.json``) and the ``mc`` commands."""
    written = []
    for identity, grants in model.items():
        path = out / f"{prefix}-minio-policy-{identity}.json"
        path.write_text(json.dumps(iam_policy(grants), indent=2) + "\n")
        written.append(path)
    commands = out / f"{prefix}-minio-policies.txt"
    commands.write_text(mc_commands(model, file_prefix=f"{prefix}-minio-policy-"))
    written.append(commands)
    return written


def write_notification_policies(task: FederatedTask, out: Path, *, prefix: str) -> list[Path]:
    """The MinIO policies of the notification-only identities an incremental job's EventSource holds
    (``<prefix>-minio-policy-notify-<edge>.json``, from :func:`~edgefed.workflows.policy.notification_model`)
    and the ``mc`` commands that install them in each edge's own MinIO."""
    return _write_policies(notification_model(e.name for e in task.spec.edges), out, prefix=prefix)


__all__ = [
    "dump_yaml",
    "label_nodes_script",
    "write_manifests",
    "write_minio_policies",
    "write_notification_policies",
]
