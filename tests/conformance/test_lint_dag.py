"""The lint on DAGs: depends (through the engine's parser, so lint and engine agree with Argo), dependencies, cycles."""

from __future__ import annotations

import re
from typing import Any

import pytest

from edgefed.workflows.embedded.engine import Engine, WorkflowInvalidError
from edgefed.workflows.embedded.engine.expressions import DependsError, parse_depends
from tests.conformance.samples import ROUND, base_workflow, dag_tasks, has_problem, lint_errors


def test_depends_target_that_does_not_exist() -> None:
    doc = base_workflow()
    dag_tasks(doc)[1]["depends"] = "trian.AnySucceeded || train.AllFailed"
    errors = lint_errors(doc)
    assert has_problem(errors, "spec.templates[2].dag.tasks[1].depends", "'trian'", "did you mean 'train'")


@pytest.mark.parametrize(
    ("depends", "words"),
    [
        ("train &&", ("cannot parse", "at the end")),
        ("(train.Succeeded", ("cannot parse", "expected ')'")),
        ("train.Succeded", ("'train.Succeded' is invalid",)),
        ("train and train", ("cannot parse",)),
    ],
)
def test_malformed_depends(depends: str, words: tuple[str, ...]) -> None:
    doc = base_workflow()
    dag_tasks(doc)[1]["depends"] = depends
    assert has_problem(lint_errors(doc), "spec.templates[2].dag.tasks[1].depends", *words)


def test_items_results_need_a_task_that_fans_out() -> None:
    doc = base_workflow()
    del dag_tasks(doc)[0]["withParam"]
    dag_tasks(doc)[0]["arguments"]["parameters"] = [
        {"name": "edge", "value": "a"},
        {"name": "node", "value": "n1"},
    ]
    assert has_problem(lint_errors(doc), "spec.templates[2].dag.tasks[1].depends", "does not fan out")


def test_continue_on_cannot_be_combined_with_depends() -> None:
    doc = base_workflow()
    dag_tasks(doc)[1]["continueOn"] = {"failed": True}
    assert has_problem(
        lint_errors(doc), "spec.templates[2].dag.tasks[1].continueOn", "'continueOn'", "depends"
    )
    # Argo's rule is per DAG: a task without depends may not use continueOn either
    doc = base_workflow()
    dag_tasks(doc)[0]["continueOn"] = {"failed": True}
    assert has_problem(lint_errors(doc), "spec.templates[2].dag.tasks[0].continueOn", "'continueOn'")


def test_depends_and_dependencies_cannot_be_mixed() -> None:
    doc = base_workflow()
    dag_tasks(doc).append({"name": "report", "template": "aggregate", "dependencies": ["aggregate"]})
    assert has_problem(lint_errors(doc), "spec.templates[2].dag.tasks[2].dependencies", "uses 'depends'")


def test_dependencies_entries_must_exist() -> None:
    doc = base_workflow()
    dag_tasks(doc)[1]["dependencies"] = ["train", "ghost"]
    del dag_tasks(doc)[1]["depends"]
    assert has_problem(lint_errors(doc), "spec.templates[2].dag.tasks[1].dependencies[1]", "'ghost'")


def test_dependency_cycle() -> None:
    doc = base_workflow()
    dag_tasks(doc)[0]["depends"] = "aggregate"
    errors = lint_errors(doc)
    cycles = [p for p in errors if "cycle" in p.message]
    assert len(cycles) == 1 and "train -> aggregate -> train" in cycles[0].message


def test_every_dependency_cycle_is_reported_once() -> None:
    doc = base_workflow()
    tasks = dag_tasks(doc)
    tasks[0]["depends"] = "aggregate"
    tasks += [
        {"name": "a", "template": "aggregate", "depends": "c"},
        {"name": "b", "template": "aggregate", "depends": "a && aggregate"},
        {"name": "c", "template": "aggregate", "depends": "b"},
        {"name": "d", "template": "aggregate", "depends": "d"},
    ]
    cycles = {p.path: p.message for p in lint_errors(doc) if "cycle" in p.message}
    assert cycles == {
        "spec.templates[2].dag.tasks[0].depends": "dependency cycle: train -> aggregate -> train",
        "spec.templates[2].dag.tasks[2].depends": "dependency cycle: a -> c -> b -> a",
        "spec.templates[2].dag.tasks[5].depends": "dependency cycle: d -> d",
    }


def test_empty_dag() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][ROUND]["dag"]["tasks"] = []
    assert has_problem(lint_errors(doc), "spec.templates[2].dag.tasks", "at least one task")


def test_parse_depends() -> None:
    """The lint reads depends with the engine's parser: the tasks named, the results asked of each."""
    expr = parse_depends("A && (C.Succeeded || C.Failed) || !B5 && should-run.AnySucceeded")
    assert expr.tasks == ["A", "C", "B5", "should-run"]
    assert {task: {result for result, _negated in expr.references(task)} for task in expr.tasks} == {
        "A": {None},
        "C": {"Succeeded", "Failed"},
        "B5": {None},
        "should-run": {"AnySucceeded"},
    }
    with pytest.raises(DependsError):
        parse_depends("A ||| B")
    with pytest.raises(DependsError) as err:
        parse_depends("A B")
    assert err.value.detail == "unexpected 'B' at position 2"


#: What the engine and the lint used to disagree on, and Argo rejects: (depends, the task it names, why).
ARGO_REJECTS = {
    # engine accepted, lint rejected: Argo's task names have no '_' (expr rewrites '-' to '_')
    "underscore": ("a_b.Succeeded", "a_b", "'_' is not allowed"),
    # lint accepted, engine rejected: in Argo's expr a quoted 'my task' is a string, never a task
    "quoted": ("'my task'.Failed", "my task", "quoted task names are not part of Argo's depends syntax"),
    # the lint's parser accepted any result name
    "bogus result": ("train.Bogus", "train", "unknown result '.Bogus'"),
}


def _runnable(first_task: str) -> dict[str, Any]:
    """base_workflow as the embedded engine runs it (containers need a command), first task renamed."""
    doc = base_workflow()
    for template in doc["spec"]["templates"]:
        if "container" in template:
            template["container"]["command"] = ["true"]
    dag_tasks(doc)[0]["name"] = first_task
    return doc


@pytest.mark.parametrize("case", list(ARGO_REJECTS))
def test_engine_and_lint_reject_what_argo_rejects(case: str) -> None:
    depends, name, why = ARGO_REJECTS[case]
    with pytest.raises(DependsError, match=re.escape(why)):
        parse_depends(depends)
    doc = _runnable(name)
    dag_tasks(doc)[1]["depends"] = depends
    assert has_problem(lint_errors(doc), "spec.templates[2].dag.tasks[1].depends", "cannot parse", why)
    with pytest.raises(WorkflowInvalidError, match=re.escape(why)):
        Engine.check(doc)


@pytest.mark.parametrize(
    "depends",
    [
        "train",
        "train.Succeeded || train.Failed",
        "!train.Errored && (train.AnySucceeded || train.AllFailed)",
        "train.Skipped||train.Omitted||train.Daemoned",
        "!!(train)",
        "train.succeeded",
        "train and train",
        "train.",
        "(train",
        "train ||",
        "train)",
        'train.Succeeded || "train".Failed',
    ],
)
def test_lint_and_engine_reject_exactly_what_the_parser_rejects(depends: str) -> None:
    doc = _runnable("train")
    dag_tasks(doc)[1]["depends"] = depends
    try:
        parse_depends(depends)
    except DependsError:
        assert has_problem(lint_errors(doc), "spec.templates[2].dag.tasks[1].depends", "cannot parse")
        with pytest.raises(WorkflowInvalidError, match="invalid depends expression"):
            Engine.check(doc)
    else:
        assert lint_errors(doc) == []
        Engine.check(doc)
