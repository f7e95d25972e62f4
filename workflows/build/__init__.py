"""Generation: a FederatedTask becomes Argo manifests, built with Hera (a pure function of the task and
:class:`ClusterSettings`).

* ``workflows``: the Argo objects (task Workflow and its template, round Workflow, round WorkflowTemplate and submissions, init,
  CronWorkflow, the chart's generic template) and :func:`manifests`;
* ``templates``: the templates of a round (edge fan-out of validate → train, aggregate, evaluate);
* ``task``: the templates of the task Workflow (init, chains of plan → round → progress);
* ``argo41``: Argo v4.1 template fields Hera's models lack (``pendingTimeout``);
* ``edges``: the ``edges`` parameter, conventions and per-edge overrides;
* ``names``: labels, annotations and workflow outputs the cluster and the driver read;
* ``settings``: :class:`ClusterSettings`; ``generate``: writing the manifests to a directory.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names are loaded on first use (PEP 562), so ``build.names`` -- which the cluster client and the
# driver read -- costs nothing, while ``build.workflows`` brings Hera and the spec only when needed.
_EXPORTS = {
    "ClusterSettings": "settings",
    "ServiceAccounts": "settings",
    "DEFAULT_SETTINGS": "settings",
    "KIND_ROUND": "names",
    "KIND_TASK": "names",
    "LABEL_KIND": "names",
    "LABEL_ROUND": "names",
    "LABEL_TASK": "names",
    "NODE_LABEL": "names",
    "ROUND_TEMPLATE": "names",
    "TASK_FILE": "workflows",
    "TaskOutputs": "names",
    "WorkflowOutputs": "names",
    "common_dataset_key": "edges",
    "cron_workflow": "workflows",
    "edge_item": "edges",
    "edges_parameter": "edges",
    "init_workflow": "workflows",
    "label_nodes_script": "generate",
    "manifests": "workflows",
    "round_submission": "workflows",
    "round_template": "workflows",
    "round_workflow": "workflows",
    "step_config": "templates",
    "store_url": "edges",
    "task_submission": "workflows",
    "task_template": "workflows",
    "task_template_name": "names",
    "task_workflow": "workflows",
    "round_workflow_name": "names",
    "template_name": "names",
    "to_document": "workflows",
    "varying_fields": "edges",
    "write_manifests": "generate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
