"""Documents the conformance tests check: what the builder generates, and small hand-written workflows
that negative tests break one thing at a time; with the helpers that read the problems found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edgefed.workflows.build import manifests, round_workflow, to_document
from edgefed.workflows.spec import FederatedTask, parse_task
from edgefed.workflows.spec.incremental import IncrementalLearningJob, parse_job
from tests.conformance import Problem, errors_only, lint_manifest
from tests.helpers import task_doc

# ------------------------------------------------------------------------------ generated documents


def generated_manifests(task: FederatedTask) -> list[dict[str, Any]]:
    """Every Argo document the builder generates for ``task``, of any kind: the round WorkflowTemplate,
    init and round Workflows (also the last round, with evaluation), the submission referencing the
    template, the task Workflow and its template, the CronWorkflow, the deployment Workflow, and an
    incremental learning job's Argo Workflows objects (check Workflow and template, CronWorkflows)."""
    from edgefed.workflows.build.deploy import deploy_workflow

    last = task.spec.last_round
    return [
        *manifests(task, cron=True).values(),
        to_document(round_workflow(task, last, evaluate=True)),
        to_document(deploy_workflow(task, last)),
        *(
            d
            for d in incremental_manifests(task).values()
            if d["kind"] != "EventSource" and d["kind"] != "Sensor"
        ),
    ]


def incremental_job(task: FederatedTask) -> IncrementalLearningJob:
    """A job for ``task`` with every trigger."""
    return parse_job(
        {
            "apiVersion": "edgefed.io/v1alpha1",
            "kind": "IncrementalLearningJob",
            "metadata": {"name": f"{task.name}-inc"},
            "spec": {
                "task": task.name,
                "triggers": {
                    "newRows": {"minRows": 20},
                    "accuracyBelow": {"threshold": 0.7},
                    "schedule": "0 3 * * 0",
                },
                "retraining": {"rounds": 3},
                "promotion": {"minImprovement": 0.01},
            },
        }
    )


def incremental_manifests(task: FederatedTask) -> dict[str, dict[str, Any]]:
    """Every object :func:`incremental_job`'s job generates, by file name (Argo Events' included)."""
    from edgefed.workflows.build.incremental import job_manifests

    return job_manifests(incremental_job(task), task)


def make_task(edges: int, *, custom: bool | str = False) -> FederatedTask:
    """A task with ``edges`` edges; ``custom``: every edge departs from the conventions (largest items);
    ``"secure"``: conventional edges, secure aggregation (FedAdam: its rounds have the protocol's steps)."""
    names = tuple(f"edge-{i}" for i in range(edges))
    if custom == "secure":
        return parse_task(
            task_doc(
                "secure-demo",
                names,
                aggregation={"algorithm": "fedadam", "secure": True, "secureThreshold": 0.75},
                quorum=3,
                deadlines={"edgeSeconds": 900},
            )
        )
    if custom:
        doc = task_doc("heart-demo", tuple(f"hospital-{i:04d}" for i in range(edges)))
        for i, edge in enumerate(doc["spec"]["edges"]):
            edge["credentialsSecret"] = f"hospital-{i:04d}-keys"
            edge["siteCredentialsSecret"] = f"hospital-{i:04d}-site-keys"
            edge["store"] = {"endpoint": f"minio-{i:04d}.hospitals.example:9000", "secure": True}
            edge["dataset"]["key"] = f"heart/{i:04d}/train.parquet"
            edge["tolerations"] = [{"key": "edgefed.io/edge", "operator": "Exists", "effect": "NoSchedule"}]
        return parse_task(doc)
    if edges == 10:  # the optional knobs, so their output is covered too
        doc = task_doc(
            "heart-demo",
            names,
            parallelism=4,
            rounds=6,
            evaluation={"everyRounds": 3},
            stop={"maxRounds": 5},
            sampling={"fraction": 0.5, "minEdges": 2, "seed": 3},
            deadlines={"edgeSeconds": 900, "pendingSeconds": 120},
            store={"endpoint": "minio.fl.svc:9443", "caConfigMap": "stores-ca"},
            resources={"edge": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}},
        )
        doc["spec"]["edges"][0]["store"] = {"endpoint": "minio.edge-0.example:9000", "secure": True}
        doc["spec"]["edges"][1]["credentialsSecret"] = "edge-1-keys"
        return parse_task(doc)
    return parse_task(task_doc("t1", names))


#: Test id -> (edges, custom).
TASKS_UNDER_TEST: dict[str, tuple[int, bool | str]] = {
    "1-edge": (1, False),
    "10-edges": (10, False),
    "5-secure-edges": (5, "secure"),
    "1000-edges": (1000, False),
    "1000-custom-edges": (1000, True),
}


def templates_of(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The WorkflowTemplates among ``docs``, which the other documents' templateRefs may name."""
    return [d for d in docs if d["kind"] in ("WorkflowTemplate", "ClusterWorkflowTemplate")]


# ------------------------------------------------------------------------------ hand-written documents


def base_workflow() -> dict[str, Any]:
    """A small valid round-like workflow; negative tests break one thing each."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "t1-r00001-", "labels": {"edgefed.io/task": "t1"}},
        "spec": {
            "entrypoint": "round",
            "arguments": {
                "parameters": [
                    {"name": "edges", "value": '[{"name":"a","node":"n1"},{"name":"b","node":"n2"}]'},
                    {"name": "round", "value": "1"},
                ]
            },
            "templates": [
                {
                    "name": "train",
                    "inputs": {"parameters": [{"name": "edge"}, {"name": "node"}]},
                    "container": {
                        "image": "img:1",
                        "args": [
                            "--edge={{inputs.parameters.edge}}",
                            "--round={{workflow.parameters.round}}",
                        ],
                    },
                    "nodeSelector": {"kubernetes.io/hostname": "{{inputs.parameters.node}}"},
                    "outputs": {
                        "parameters": [{"name": "loss", "valueFrom": {"path": "/tmp/loss", "default": ""}}]
                    },
                    "retryStrategy": {"limit": "2", "retryPolicy": "OnError"},
                },
                {
                    "name": "aggregate",
                    "inputs": {"parameters": [{"name": "losses", "default": "[]"}]},
                    "container": {"image": "img:1", "args": ["{{inputs.parameters.losses}}"]},
                    "outputs": {"parameters": [{"name": "version", "valueFrom": {"path": "/tmp/version"}}]},
                },
                {
                    "name": "round",
                    "dag": {
                        "tasks": [
                            {
                                "name": "train",
                                "template": "train",
                                "withParam": "{{workflow.parameters.edges}}",
                                "arguments": {
                                    "parameters": [
                                        {"name": "edge", "value": "{{item.name}}"},
                                        {"name": "node", "value": "{{item.node}}"},
                                    ]
                                },
                            },
                            {
                                "name": "aggregate",
                                "template": "aggregate",
                                "depends": "train.AnySucceeded || train.AllFailed",
                                "arguments": {
                                    "parameters": [
                                        {"name": "losses", "value": "{{tasks.train.outputs.parameters}}"}
                                    ]
                                },
                            },
                        ]
                    },
                },
            ],
        },
    }


#: Indexes of base_workflow's templates, and the path of its DAG's tasks.
TRAIN, AGGREGATE, ROUND = 0, 1, 2
TASKS = ("spec", "templates", ROUND, "dag", "tasks")


def dag_tasks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """base_workflow's DAG tasks (to modify in place)."""
    return doc["spec"]["templates"][ROUND]["dag"]["tasks"]


def cron_workflow() -> dict[str, Any]:
    """base_workflow run every 30 minutes."""
    base = base_workflow()
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "t1-rounds"},
        "spec": {"schedules": ["*/30 * * * *"], "timezone": "Europe/Paris", "workflowSpec": base["spec"]},
    }


def workflow_template(name: str, inputs: list[str]) -> dict[str, Any]:
    """A WorkflowTemplate ``name`` with one template ``score`` taking ``inputs``."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": name},
        "spec": {
            "templates": [
                {
                    "name": "score",
                    "inputs": {"parameters": [{"name": n} for n in inputs]},
                    "container": {
                        "image": "img:1",
                        "args": [f"{{{{inputs.parameters.{n}}}}}" for n in inputs],
                    },
                }
            ]
        },
    }


def write_yaml(path: Path, *docs: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


# ------------------------------------------------------------------------------ reading problems


def lint_errors(doc: dict[str, Any], **kwargs: Any) -> list[Problem]:
    """The lint's errors (warnings dropped)."""
    return errors_only(lint_manifest(doc, **kwargs))


def has_problem(problems: list[Problem], path: str, *words: str) -> bool:
    """Some problem is at ``path`` and its message holds every one of ``words``."""
    return any(p.path == path and all(w in p.message for w in words) for p in problems)


def assert_clean(problems: list[Problem]) -> None:
    """No errors among ``problems`` (the message lists them)."""
    errors = errors_only(problems)
    assert errors == [], "\n".join(map(str, errors))


__all__ = [
    "AGGREGATE",
    "ROUND",
    "TASKS",
    "TASKS_UNDER_TEST",
    "TRAIN",
    "assert_clean",
    "base_workflow",
    "cron_workflow",
    "dag_tasks",
    "generated_manifests",
    "has_problem",
    "lint_errors",
    "make_task",
    "templates_of",
    "workflow_template",
    "write_yaml",
]
