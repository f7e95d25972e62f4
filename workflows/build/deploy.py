"""The deployment Workflow: a committed model goes into each edge's own store (``edgefed models deploy``).

::

    deploy (fan-out over the edges, pinned to each edge's node)  ──►  record-deployment (cloud)

``deploy`` runs as the edge ServiceAccount with the edge's two identities (it reads the model from the cloud
store, writes it into its own site's store); ``record-deployment`` runs as the cloud ServiceAccount, off the
edge nodes, whatever the edges' outcomes, and records which version each edge runs. The same document runs
embedded and on a cluster (``argo submit``).
"""

from __future__ import annotations

from hera.workflows import DAG, Parameter, RawArtifact, Task, Workflow

from edgefed.steps.interface import EDGES_FILE, Flag, Outputs, Step, flag
from edgefed.workflows.build.edges import edges_parameter, varying_fields
from edgefed.workflows.build.names import DESCRIPTION, LABEL_KIND, LABEL_ROUND, LABEL_TASK, TITLE
from edgefed.workflows.build.settings import DEFAULT_SETTINGS, ClusterSettings
from edgefed.workflows.build.templates import (
    cloud_step,
    edge_store_args,
    every_outcome,
    output,
    over_edges,
    round_args,
    round_parameters,
    task_edge_step,
)
from edgefed.workflows.build.workflows import _spec_settings, for_task
from edgefed.workflows.spec import FederatedTask

__all__ = ["KIND_DEPLOY", "deploy_workflow"]

KIND_DEPLOY = "deploy"


def deploy_workflow(
    task: FederatedTask,
    round_: int,
    *,
    edges: list[str] | None = None,
    settings: ClusterSettings = DEFAULT_SETTINGS,
) -> Workflow:
    """The Workflow that deploys committed round ``round_`` of ``task`` to ``edges`` (default: all)."""
    settings = for_task(task, settings)
    chosen = [e for e in task.spec.edges if edges is None or e.name in edges]
    if edges is not None and (unknown := sorted(set(edges) - {e.name for e in chosen})):
        raise ValueError(f"task {task.name!r} has no edge {', '.join(map(repr, unknown))}")
    fields = varying_fields(task)
    parameters = [
        p
        for p in round_parameters(task, round_=round_, evaluate=False)
        if p.name in ("task", "round", "edges", "config", "store", "site-store")
    ]
    parameters = [
        Parameter(name="edges", description=p.description, value=edges_parameter(task, chosen))
        if p.name == "edges"
        else p
        for p in parameters
    ]
    names = [e.name for e in chosen]
    with Workflow(
        generate_name=f"{task.name}-deploy-r{round_:05d}-",
        labels={
            LABEL_TASK: task.name,
            LABEL_ROUND: str(round_),
            LABEL_KIND: KIND_DEPLOY,
            **settings.extra_labels,
        },
        annotations={
            TITLE: f"{task.name}: deploy round {round_}",
            DESCRIPTION: f"Copies round {round_} of {task.name} into the own store of {len(names)} edge(s): "
            + ", ".join(names[:8])
            + (" ..." if len(names) > 8 else ""),
        },
        entrypoint="deploy-model",
        arguments=parameters,
        active_deadline_seconds=settings.round_deadline_seconds,
        **_spec_settings(settings, service_account=settings.service_accounts.cloud),
    ) as workflow:
        deploy = task_edge_step(
            task, settings, Step.DEPLOY, [output(Outputs.DEPLOYED)], [*round_args(), *edge_store_args(fields)]
        )
        record = cloud_step(
            Step.RECORD_DEPLOYMENT,
            image=task.spec.image,
            cloud_secret=task.spec.cloud_credentials_secret,
            args=[*round_args(), flag(Flag.EDGES_FILE, EDGES_FILE)],
            inputs=[RawArtifact(name="edges", path=EDGES_FILE, data="{{workflow.parameters.edges}}")],
            outputs=[],
            settings=settings,
            deadline_seconds=settings.aggregate_deadline_seconds,
        )
        with DAG(name="deploy-model"):
            edge_task = over_edges("edge", deploy, fields)
            # records who deployed and who did not, then fails if any did not
            Task(name=Step.RECORD_DEPLOYMENT, template=record, depends=every_outcome(edge_task.name))
    return workflow
