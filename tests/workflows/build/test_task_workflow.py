"""The task Workflow's structure: chains of plan → round ‖ progress, resource manifests that parse once
Argo has substituted them, deadlines, retries and the join, as a cluster would read them."""

from __future__ import annotations

import json
import math
import re

import yaml

from edgefed.steps.interface import NOT_RETRIED
from edgefed.workflows.build import (
    ClusterSettings,
    cron_workflow,
    round_template,
    task_template,
    task_workflow,
    to_document,
)
from edgefed.workflows.spec import MAX_ROUNDS, parse_task
from tests.helpers import task_doc

#: Argo's controller refuses a template nested this deep (controller.go maxAllowedStackDepth).
ARGO_MAX_STACK_DEPTH = 100


def _templates(doc):
    return {t["name"]: t for t in doc["spec"]["templates"]}


def _substitute(text: str, values: dict[str, str]) -> str:
    """Argo's textual ``{{...}}`` substitution."""
    return re.sub(r"\{\{([^}]*)\}\}", lambda m: values[m.group(1).strip()], text)


def test_the_round_step_creates_an_owned_child_of_the_round_template_whatever_the_json():
    task = parse_task(task_doc("tw", ("a", "b"), sampling={"count": 1, "seed": 4}))
    doc = to_document(task_workflow(task))
    templates = _templates(doc)
    resource = templates["round-workflow"]["resource"]
    assert resource["action"] == "create" and resource["setOwnerReference"] is True
    assert resource["successCondition"] == "status.phase == Succeeded"
    assert resource["failureCondition"] == "status.phase in (Failed, Error)"
    # JSON with quotes, colons and a single quote: the block scalars keep it intact
    params = {p["name"]: p["value"] for p in doc["spec"]["arguments"]["parameters"]}
    values = {f"workflow.parameters.{k}": v for k, v in params.items()}
    values["workflow.parameters.config"] = json.dumps({"model": {"name": 'it\'s: "x"'}})
    values |= {
        "workflow.name": "tw-abcde",
        "inputs.parameters.name": "tw-r00003-a2",
        "inputs.parameters.round": "3",
        "inputs.parameters.evaluate": "true",
        "inputs.parameters.parent": '{"key":"tw/rounds/00002/model.npz","round":2,"sha256":"ab","versionId":"v"}',
        "inputs.parameters.edges": '[{"name":"b","store":"http://s3:9000"}]',
    }
    child = yaml.safe_load(_substitute(resource["manifest"], values))
    assert child["kind"] == "Workflow" and child["metadata"]["name"] == "tw-r00003-a2"
    assert child["metadata"]["labels"] == {
        "edgefed.io/task": "tw",
        "edgefed.io/round": "3",
        "edgefed.io/kind": "round",
    }
    assert child["spec"]["workflowTemplateRef"] == {"name": round_template(task).name}
    arguments = {p["name"]: p["value"] for p in child["spec"]["arguments"]["parameters"]}
    assert arguments["config"] == values["workflow.parameters.config"]
    assert json.loads(arguments["edges"]) == [{"name": "b", "store": "http://s3:9000"}]
    assert json.loads(arguments["parent"])["round"] == 2  # the plan's: the edges read no manifest for it
    assert set(arguments) == {
        "task",
        "round",
        "evaluate",
        "parent",
        "edges",
        "config",
        "store",
        "site-store",
        "dataset-key",
    }
    # every parameter the round template declares without a default is given
    round_params = round_template(task).to_dict()["spec"]["arguments"]["parameters"]
    assert {p["name"] for p in round_params if "value" not in p} <= set(arguments)
    # the round reads back its child's outputs
    outputs = {
        p["name"]: p["valueFrom"]["jsonPath"] for p in templates["round-workflow"]["outputs"]["parameters"]
    }
    assert outputs["accuracy"] == '{.status.outputs.parameters[?(@.name=="accuracy")].value}'


def test_unsampled_rounds_take_the_task_edges_without_copying_them_into_each_node():
    task = parse_task(task_doc("tw", ("a", "b")))
    templates = _templates(to_document(task_workflow(task)))
    assert "{{workflow.parameters.edges}}" in templates["round-workflow"]["resource"]["manifest"]
    assert {p["name"] for p in templates["round-workflow"]["inputs"]["parameters"]} == {
        "name",
        "round",
        "evaluate",
        "parent",
    }


def test_chains_keep_the_nesting_under_argo_limit_at_the_most_rounds_a_spec_allows():
    """``rounds`` calls itself once per round, ``chain`` once per chain: a task of R rounds nests
    1 (task) + ceil(R/S) (chains) + up to S (rounds) + 1 (the plan pod) templates deep."""
    settings = ClusterSettings()
    task = parse_task(task_doc("tw", ("a",), rounds=MAX_ROUNDS))
    templates = _templates(to_document(task_workflow(task, settings=settings)))
    rounds_steps = [s for group in templates["rounds"]["steps"] for s in group]
    chain_steps = [s for group in templates["chain"]["steps"] for s in group]
    assert [s["template"] for s in rounds_steps] == ["plan", "round-workflow", "progress", "rounds"]
    assert [s["template"] for s in chain_steps] == ["rounds", "chain"]
    budget = next(p["value"] for p in chain_steps[0]["arguments"]["parameters"] if p["name"] == "budget")
    assert int(budget) == settings.rounds_per_chain
    chains = math.ceil(MAX_ROUNDS / settings.rounds_per_chain)
    assert 1 + chains + settings.rounds_per_chain + 1 < ARGO_MAX_STACK_DEPTH


def test_edge_deadlines_retries_and_the_join():
    task = parse_task(task_doc("tw", ("a", "b"), deadlines={"edgeSeconds": 300, "pendingSeconds": 60}))
    round_doc = to_document(round_template(task))
    templates = _templates(round_doc)
    for step in ("validate", "train"):
        assert templates[step]["activeDeadlineSeconds"] == 300
        assert templates[step]["pendingTimeout"] == "60s"
    assert "pendingTimeout" not in templates["aggregate"]
    aggregate = next(t for t in templates["round"]["dag"]["tasks"] if t["name"] == "aggregate")
    assert aggregate["depends"] == "edge.Succeeded || edge.Failed || edge.Errored"
    task_doc_ = to_document(task_workflow(task))
    containers = [
        t for t in [*round_doc["spec"]["templates"], *task_doc_["spec"]["templates"]] if "container" in t
    ]
    assert {t["name"] for t in containers} == {"validate", "train", "aggregate", "evaluate", "init", "plan"}
    # pendingTimeout is not checked under a retryStrategy (Argo v4.1): the edge steps give up retrying
    assert "retryStrategy" not in templates["validate"] and "retryStrategy" not in templates["train"]
    plain = _templates(to_document(round_template(parse_task(task_doc("tw", ("a", "b"))))))
    containers = [t for t in containers if t["name"] not in ("validate", "train")] + [
        plain["validate"],
        plain["train"],
    ]
    for t in containers:
        strategy = t["retryStrategy"]
        assert strategy["retryPolicy"] == "Always", t["name"]
        assert strategy["expression"] == f"asInt(lastRetry.exitCode) not in {[int(c) for c in NOT_RETRIED]}"


def test_one_task_workflow_at_a_time_and_the_cron_runs_the_task_template():
    task = parse_task(task_doc("tw", ("a",)))
    for doc in (to_document(task_workflow(task)), to_document(task_template(task))):
        assert doc["spec"]["synchronization"] == {"mutexes": [{"name": "edgefed-task-tw"}]}
        outputs = {
            p["globalName"]
            for t in doc["spec"]["templates"]
            for p in (t.get("outputs") or {}).get("parameters", [])
            if "globalName" in p
        }
        assert {"model-version", "accuracy", "last-round", "rounds-run", "stop-reason"} <= outputs
    cron = to_document(cron_workflow(task))
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"] == {"name": "tw-task"}
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
