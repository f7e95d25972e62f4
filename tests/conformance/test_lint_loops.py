"""The lint on fan-out (withItems, withParam, withSequence, {{item}}) and on what a container can exec."""

from __future__ import annotations

from tests.conformance.samples import AGGREGATE, TRAIN, base_workflow, dag_tasks, has_problem, lint_errors


def test_with_param_and_with_items_are_exclusive() -> None:
    doc = base_workflow()
    dag_tasks(doc)[0]["withItems"] = [{"name": "a", "node": "n1"}]
    assert has_problem(lint_errors(doc), "spec.templates[2].dag.tasks[0]", "only one of withItems, withParam")


def test_item_only_in_a_task_that_fans_out() -> None:
    doc = base_workflow()
    dag_tasks(doc)[1]["arguments"]["parameters"][0]["value"] = "{{item}}"
    assert has_problem(
        lint_errors(doc), "spec.templates[2].dag.tasks[1].arguments.parameters[0].value", "fans out"
    )
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["container"]["args"].append("{{item.name}}")
    assert has_problem(lint_errors(doc), "spec.templates[0].container.args[2]", "input parameter")


def test_item_keys_must_exist_in_the_items() -> None:
    doc = base_workflow()
    dag_tasks(doc)[0]["arguments"]["parameters"][1]["value"] = "{{item.host}}"
    assert has_problem(
        lint_errors(doc),
        "spec.templates[2].dag.tasks[0].arguments.parameters[1].value",
        "{{item.host}}",
        "item.node",
    )
    doc = base_workflow()
    del dag_tasks(doc)[0]["withParam"]
    dag_tasks(doc)[0]["withItems"] = [{"name": "a", "node": "n1"}]
    assert lint_errors(doc) == []
    dag_tasks(doc)[0]["withItems"] = [{"name": "a"}]
    assert has_problem(
        lint_errors(doc), "spec.templates[2].dag.tasks[0].arguments.parameters[1].value", "{{item.node}}"
    )


def test_with_param_value_must_be_a_json_list() -> None:
    doc = base_workflow()
    doc["spec"]["arguments"]["parameters"][0]["value"] = '{"name": "a"}'
    assert has_problem(lint_errors(doc), "spec.templates[2].dag.tasks[0].withParam", "JSON list")


def test_arguments_too_long_to_exec() -> None:
    doc = base_workflow()
    doc["spec"]["arguments"]["parameters"].append({"name": "blob", "value": "x" * 200_000})
    doc["spec"]["templates"][AGGREGATE]["container"]["args"].append("--blob={{workflow.parameters.blob}}")
    assert has_problem(
        lint_errors(doc), "spec.templates[1].container.args[1]", "200,007 bytes", "MAX_ARG_STRLEN"
    )
    doc["spec"]["arguments"]["parameters"][-1]["value"] = "x" * 100_000
    assert lint_errors(doc) == []
    doc["spec"]["templates"][AGGREGATE]["container"]["env"] = [
        {"name": f"BLOB{i}", "value": "{{workflow.parameters.blob}}"} for i in range(21)
    ]
    assert has_problem(lint_errors(doc), "spec.templates[1].container", "ARG_MAX")
