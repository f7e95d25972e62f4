"""Generation: a FederatedTask becomes Argo manifests, built with Hera (a pure function of the task and
:class:`ClusterSettings`).

* ``workflows``: the Argo objects (round Workflow, round WorkflowTemplate and submissions, init,
  CronWorkflow, the chart's generic template) and :func:`manifests`;
* ``templates``: the templates of a round (edge fan-out of validate → train, aggregate, evaluate);
* ``edges``: the ``edges`` parameter, conventions and per-edge overrides;
* ``names``: labels, annotations and workflow outputs the cluster and the driver read;
* ``settings``: :class:`ClusterSettings`; ``generate``: writing the manifests to a directory.
"""

from edgefed.workflows.build.edges import (
    common_dataset_key,
    edge_item,
    edges_parameter,
    store_url,
    varying_fields,
)
from edgefed.workflows.build.generate import label_nodes_script, write_manifests
from edgefed.workflows.build.names import LABEL_ROUND, LABEL_TASK, NODE_LABEL, WorkflowOutputs, template_name
from edgefed.workflows.build.settings import DEFAULT_SETTINGS, ClusterSettings
from edgefed.workflows.build.templates import step_config
from edgefed.workflows.build.workflows import (
    cron_workflow,
    generic_round_template,
    init_workflow,
    manifests,
    round_submission,
    round_template,
    round_workflow,
    to_document,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "LABEL_ROUND",
    "LABEL_TASK",
    "NODE_LABEL",
    "ClusterSettings",
    "WorkflowOutputs",
    "common_dataset_key",
    "cron_workflow",
    "edge_item",
    "edges_parameter",
    "generic_round_template",
    "init_workflow",
    "label_nodes_script",
    "manifests",
    "round_submission",
    "round_template",
    "round_workflow",
    "step_config",
    "store_url",
    "template_name",
    "to_document",
    "varying_fields",
    "write_manifests",
]
