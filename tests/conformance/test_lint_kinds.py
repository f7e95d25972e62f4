"""The other kinds: CronWorkflow (schedules, time zone), WorkflowTemplate, a Workflow submitted from a template."""

from __future__ import annotations

import pytest

from tests.conformance import (
    ArgoSchemas,
    check_crd,
    check_hera,
    check_manifest,
    cron_schedule_problem,
    errors_only,
    lint_manifest,
)
from tests.conformance.samples import (
    base_workflow,
    cron_workflow,
    has_problem,
    lint_errors,
    workflow_template,
)


def test_cron_workflow() -> None:
    assert lint_manifest(cron_workflow()) == []
    doc = cron_workflow()
    doc["spec"]["schedules"] = ["*/30 * * *", "61 * * * *"]
    doc["spec"]["timezone"] = "Mars/Olympus"
    errors = lint_errors(doc)
    assert has_problem(errors, "spec.schedules[0]", "expected 5 fields")
    assert has_problem(errors, "spec.schedules[1]", "outside 0-59")
    assert has_problem(errors, "spec.timezone", "Mars/Olympus")
    doc["spec"]["workflowSpec"]["entrypoint"] = "nope"
    assert has_problem(lint_errors(doc), "spec.workflowSpec.entrypoint", "'nope'")


def test_cron_workflow_against_the_hera_schema() -> None:
    """The same check as the next test's, on the layer every user has."""
    assert check_hera(cron_workflow()) == []
    doc = cron_workflow()
    doc["spec"]["schedule"] = "* * * * *"  # removed in Argo v4
    assert has_problem(check_hera(doc), "spec.schedule", "unknown field", "did you mean 'schedules'")


def test_cron_workflow_against_schemas(schemas: ArgoSchemas) -> None:
    assert check_manifest(cron_workflow(), schemas=schemas) == []
    doc = cron_workflow()
    doc["spec"]["schedule"] = "* * * * *"  # removed in Argo v4
    assert has_problem(check_crd(doc, schemas), "spec.schedule", "unknown field", "did you mean 'schedules'")


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [
        ("0 3 * * mon-fri", True),
        ("@every 1h30m", True),
        ("@daily", True),
        ("CRON_TZ=UTC 0 0 1 jan *", True),
        ("0 24 * * *", False),
        ("0 0 * * 7", False),
        ("*/0 * * * *", False),
        ("@fortnightly", False),
    ],
)
def test_cron_schedules(schedule: str, ok: bool) -> None:
    assert (cron_schedule_problem(schedule) is None) is ok


def test_workflow_template_needs_no_entrypoint() -> None:
    assert lint_manifest(workflow_template("scoring", ["model"])) == []


def test_workflow_parameters_without_value_are_a_warning() -> None:
    doc = base_workflow()
    del doc["spec"]["arguments"]["parameters"][1]["value"]
    problems = lint_manifest(doc)
    assert errors_only(problems) == []
    assert has_problem(problems, "spec.arguments.parameters[1]", "'round' has no value", "argo submit -p")


def test_submission_from_a_workflow_template() -> None:
    template = workflow_template("scoring", ["model"])
    template["spec"]["entrypoint"] = "score"
    template["spec"]["arguments"] = {"parameters": [{"name": "model"}, {"name": "store", "value": "s3"}]}
    template["spec"]["templates"][0]["inputs"]["parameters"][0]["value"] = "{{workflow.parameters.model}}"
    submission = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "scoring-"},
        "spec": {
            "workflowTemplateRef": {"name": "scoring"},
            "arguments": {"parameters": [{"name": "model", "value": "v3"}]},
        },
    }
    assert lint_manifest(template) == []
    assert lint_manifest(submission, templates=[template]) == []
    problems = lint_manifest(submission)
    assert errors_only(problems) == [] and "out of scope" in problems[0].message
    assert has_problem(lint_errors(submission, templates=[]), "spec.workflowTemplateRef.name", "'scoring'")
    del submission["spec"]["arguments"]
    assert has_problem(
        lint_manifest(submission, templates=[template]), "spec.arguments", "'model'", "no value"
    )
    submission["spec"]["templates"] = template["spec"]["templates"]
    assert has_problem(
        lint_errors(submission, templates=[template]), "spec.templates", "must not define templates"
    )
