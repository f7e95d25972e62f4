"""The lint on references: templates called, templateRefs, arguments passed, and the variables each place may use."""

from __future__ import annotations

import pytest

from tests.conformance import errors_only, format_path, lint_manifest
from tests.conformance.samples import (
    ROUND,
    TASKS,
    TRAIN,
    base_workflow,
    dag_tasks,
    has_problem,
    lint_errors,
    workflow_template,
)


def test_unknown_templates() -> None:
    doc = base_workflow()
    dag_tasks(doc)[1]["template"] = "aggregator"
    doc["spec"]["onExit"] = "cleanup"
    doc["spec"]["hooks"] = {"exit": {"template": "notify"}, "running": {"template": "train"}}
    errors = lint_errors(doc)
    assert has_problem(
        errors, "spec.templates[2].dag.tasks[1].template", "'aggregator'", "did you mean 'aggregate'"
    )
    assert has_problem(errors, "spec.onExit", "'cleanup'")
    assert has_problem(errors, "spec.hooks.exit.template", "'notify'")
    assert has_problem(errors, "spec.hooks.running", "needs an expression")


def test_unknown_entrypoint() -> None:
    doc = base_workflow()
    doc["spec"]["entrypoint"] = "main"
    assert has_problem(lint_errors(doc), "spec.entrypoint", "'main'")
    del doc["spec"]["entrypoint"]
    assert has_problem(lint_errors(doc), "spec.entrypoint", "required")


def test_template_ref_is_out_of_scope_without_templates_and_resolved_with_them() -> None:
    doc = base_workflow()
    dag_tasks(doc).append(
        {
            "name": "score",
            "depends": "aggregate",
            "templateRef": {"name": "scoring", "template": "score"},
            "arguments": {
                "parameters": [{"name": "model", "value": "{{tasks.aggregate.outputs.parameters.version}}"}]
            },
        }
    )
    problems = lint_manifest(doc)
    assert errors_only(problems) == []
    assert [p.severity for p in problems] == ["warning"] and "out of scope" in problems[0].message
    assert lint_manifest(doc, templates=[workflow_template("scoring", ["model"])]) == []
    errors = lint_errors(doc, templates=[workflow_template("scoring", ["model", "dataset"])])
    assert has_problem(errors, "spec.templates[2].dag.tasks[2].arguments", "'dataset'", "not supplied")
    assert has_problem(
        lint_errors(doc, templates=[]), "spec.templates[2].dag.tasks[2].templateRef.name", "'scoring'"
    )
    wrong = workflow_template("scoring", ["model"])
    wrong["spec"]["templates"][0]["name"] = "evaluate"
    assert has_problem(
        lint_errors(doc, templates=[wrong]), "spec.templates[2].dag.tasks[2].templateRef.template", "'score'"
    )


def test_a_workflow_from_a_template_gives_its_parameters_without_values() -> None:
    """argo submit (and a resource template creating the Workflow) is refused when a parameter of the
    referenced WorkflowTemplate has no value on either side."""
    template = workflow_template("round", [])
    template["spec"]["arguments"] = {"parameters": [{"name": "round"}, {"name": "store", "value": "s3"}]}
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "r-"},
        "spec": {"workflowTemplateRef": {"name": "round"}},
    }
    errors = lint_errors(doc, templates=[template])
    assert has_problem(errors, "spec.arguments.parameters", "spec.arguments.round.value", "is required")
    assert not has_problem(errors, "spec.arguments.parameters", "store")
    doc["spec"]["arguments"] = {"parameters": [{"name": "round", "value": "7"}]}
    assert lint_errors(doc, templates=[template]) == []


def test_undeclared_input_parameter() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["container"]["args"].append("--edges={{inputs.parameters.edges}}")
    assert has_problem(
        lint_errors(doc), "spec.templates[0].container.args[2]", "input parameter 'edges' is not declared"
    )


def test_undeclared_workflow_parameter() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["container"]["args"].append("--store={{workflow.parameters.store}}")
    assert has_problem(lint_errors(doc), "spec.templates[0].container.args[2]", "workflow parameter 'store'")


def test_workflow_template_parameters_come_from_its_own_arguments() -> None:
    doc = workflow_template("scoring", ["model"])
    doc["spec"]["templates"][0]["container"]["args"].append("{{workflow.parameters.store}}")
    assert has_problem(lint_errors(doc), "spec.templates[0].container.args[1]", "workflow parameter 'store'")
    doc["spec"]["arguments"] = {"parameters": [{"name": "store"}]}  # no value needed in a template
    assert lint_errors(doc) == []


def test_arguments_must_match_the_inputs_of_the_template_called() -> None:
    doc = base_workflow()
    dag_tasks(doc)[0]["arguments"]["parameters"][1]["name"] = "nodes"
    errors = lint_errors(doc)
    assert has_problem(
        errors, "spec.templates[2].dag.tasks[0].arguments.parameters[1].name", "no input parameter 'nodes'"
    )
    assert has_problem(errors, "spec.templates[2].dag.tasks[0].arguments", "'node'", "not supplied")
    # an input with a default need not be supplied
    doc = base_workflow()
    del dag_tasks(doc)[1]["arguments"]
    assert lint_errors(doc) == []


def test_argument_needs_a_value() -> None:
    doc = base_workflow()
    del dag_tasks(doc)[1]["arguments"]["parameters"][0]["value"]
    assert has_problem(
        lint_errors(doc), "spec.templates[2].dag.tasks[1].arguments.parameters[0]", "needs value"
    )


def test_entrypoint_inputs_come_from_spec_arguments() -> None:
    doc = base_workflow()
    doc["spec"]["entrypoint"] = "train"
    assert has_problem(lint_errors(doc), "spec.entrypoint", "'edge'", "spec.arguments")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("{{tasks.ghost.outputs.parameters.version}}", ("task 'ghost' does not exist",)),
        ("{{tasks.aggregate.outputs.parameters.model}}", ("no output parameter 'model'", "version")),
        ("{{tasks.report.outputs.parameters.version}}", ("'report' is not a dependency",)),
        ("{{steps.aggregate.outputs.result}}", ("steps.* is only defined inside a steps template",)),
    ],
)
def test_task_output_references(value: str, words: tuple[str, ...]) -> None:
    doc = base_workflow()
    dag_tasks(doc).append(
        {
            "name": "report",
            "template": "aggregate",
            "depends": "aggregate",
            "arguments": {
                "parameters": [{"name": "losses", "value": "{{tasks.aggregate.outputs.parameters.version}}"}]
            },
        }
    )
    dag_tasks(doc).append(
        {
            "name": "publish",
            "template": "aggregate",
            "depends": "aggregate",
            "arguments": {"parameters": [{"name": "losses", "value": value}]},
        }
    )
    assert lint_errors(base_workflow()) == []
    assert has_problem(
        lint_errors(doc), format_path((*TASKS, 3, "arguments", "parameters", 0, "value")), *words
    )


def test_steps_see_only_earlier_groups() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][ROUND] = {
        "name": "round",
        "steps": [
            [
                {"name": "first", "template": "aggregate"},
                {
                    "name": "second",
                    "template": "aggregate",
                    "arguments": {
                        "parameters": [
                            {"name": "losses", "value": "{{steps.first.outputs.parameters.version}}"}
                        ]
                    },
                },
            ],
            [
                {
                    "name": "third",
                    "template": "aggregate",
                    "arguments": {
                        "parameters": [
                            {"name": "losses", "value": "{{steps.first.outputs.parameters.version}}"}
                        ]
                    },
                }
            ],
        ],
    }
    errors = lint_errors(doc)
    assert [p.path for p in errors] == ["spec.templates[2].steps[0][1].arguments.parameters[0].value"]
    assert "earlier step group" in errors[0].message
