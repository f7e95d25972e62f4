"""The lint on names: object metadata, labels, templates, tasks (Kubernetes' ObjectMeta rules, validate.go)."""

from __future__ import annotations

import pytest

from tests.conformance import lint_manifest
from tests.conformance.problems import format_path
from tests.conformance.samples import (
    AGGREGATE,
    TASKS,
    base_workflow,
    cron_workflow,
    dag_tasks,
    has_problem,
    lint_errors,
)


def test_base_workflow_is_clean() -> None:
    assert lint_manifest(base_workflow()) == []


def test_unsupported_kind_is_reported() -> None:
    problems = lint_manifest({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
    assert [p.path for p in problems] == ["kind"] and "unsupported kind 'Pod'" in problems[0].message


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("generateName", "Bad_Name-", ("DNS-1123",)),
        ("name", "UPPER", ("DNS-1123",)),
        ("name", "x" * 64, ("at most 63",)),
    ],
)
def test_bad_metadata_names(field: str, value: str, words: tuple[str, ...]) -> None:
    doc = base_workflow()
    doc["metadata"] = {field: value}
    assert has_problem(lint_errors(doc), f"metadata.{field}", *words)


def test_generate_name_may_end_with_a_dash_and_names_may_not() -> None:
    doc = base_workflow()
    assert lint_errors(doc) == []
    doc["metadata"] = {"name": "t1-r00001-"}
    assert has_problem(lint_errors(doc), "metadata.name", "DNS-1123")


def test_cron_workflow_names_leave_room_for_the_timestamp() -> None:
    doc = cron_workflow()
    doc["metadata"]["name"] = "c" * 53
    assert has_problem(lint_errors(doc), "metadata.name", "at most 52")


def test_bad_label_is_reported() -> None:
    doc = base_workflow()
    doc["metadata"]["labels"]["edgefed.io/task"] = "not a label value"
    assert has_problem(lint_errors(doc), 'metadata.labels["edgefed.io/task"]', "invalid label value")


def test_bad_template_and_task_names() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][AGGREGATE]["name"] = "Aggregate"
    dag_tasks(doc)[1]["template"] = "Aggregate"
    dag_tasks(doc)[0]["name"] = "train_edges"
    dag_tasks(doc)[1]["depends"] = "train_edges"
    errors = lint_errors(doc)
    assert has_problem(errors, "spec.templates[1].name", "lower-case", "pod")
    assert has_problem(errors, format_path((*TASKS, 0, "name")), "letters, digits and '-'")


def test_template_names_must_be_unique() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][AGGREGATE]["name"] = "train"
    assert has_problem(lint_errors(doc), "spec.templates[1].name", "not unique")
