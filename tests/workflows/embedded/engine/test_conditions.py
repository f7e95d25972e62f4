"""A resource template's conditions (Kubernetes label selectors over gjson) and jsonPath outputs (kubectl).

Expected values are what Kubernetes' ``labels.Parse``/``Requirement.Matches``/``String`` and kubectl's
``-o jsonpath`` give (read from ``k8s.io/apimachinery/pkg/labels/selector.go`` and
``k8s.io/client-go/util/jsonpath``), not what this implementation happens to do.
"""

from __future__ import annotations

import pytest

from edgefed.workflows.embedded.engine.conditions import ConditionError, matches, parse_selector
from edgefed.workflows.embedded.engine.jsonpath import JSONPathError, evaluate_jsonpath

CHILD = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"name": "task-r00007-a1", "labels": {"edgefed.io/round": "7", "tier": "edge"}},
    "status": {
        "phase": "Failed",
        "progress": "3/4",
        "outputs": {
            "parameters": [
                {"name": "model-version", "value": "12"},
                {"name": "accuracy", "value": "0.8125"},
            ]
        },
        "retries": 2,
        "ratio": 1000000.0,
        "done": True,
    },
}


def test_set_values_print_sorted_and_requirements_sort_by_key() -> None:
    reqs = parse_selector("status.phase in (Failed,Error),metadata.name")
    assert [str(r) for r in reqs] == ["metadata.name", "status.phase in (Error,Failed)"]
    assert str(parse_selector("status.phase notin ( Succeeded , Running )")[0]) == (
        "status.phase notin (Running,Succeeded)"
    )
    assert str(parse_selector("!status.finishedAt")[0]) == "!status.finishedAt"
    assert str(parse_selector("status.phase==Succeeded")[0]) == "status.phase==Succeeded"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("status.phase == Failed", True),
        ("status.phase = Failed", True),
        ("status.phase != Failed", False),
        ("status.phase in (Failed,Error)", True),
        ("status.phase notin (Failed,Error)", False),
        ("status.nothing != Failed", True),  # a missing key satisfies != and notin
        ("status.nothing notin (Failed)", True),
        ("status.nothing in (Failed)", False),
        ("status.nothing == ", False),
        ("status.retries > 1", True),
        ("status.retries < 2", False),
        ("status.progress > 1", False),  # not an integer: no match
        ("status.outputs.parameters.0.value == 12", True),  # gjson: arrays by index
        ("status.outputs.parameters.# == 2", False),  # '#' is not a valid label key character...
        ("status.done == true", True),
        ("status.phase, !status.finishedAt", True),
        ("status.phase, status.finishedAt", False),
        ("status.ratio == 1000000", True),  # the API server writes 1e6 as 1000000 (encoding/json)
    ],
)
def test_success_requirements(condition: str, expected: bool) -> None:
    if "#" in condition:
        with pytest.raises(ConditionError):
            parse_selector(condition)
        return
    verdict, _ = matches(CHILD, parse_selector(condition), [])
    assert (verdict is True) is expected


def test_a_float_compares_as_the_api_server_writes_it() -> None:
    assert matches({"a": 2.5}, parse_selector("a == 2.5"), [])[0] is True
    assert matches({"a": 2.0}, parse_selector("a == 2"), [])[0] is True


def test_failure_is_checked_first_and_names_the_requirement() -> None:
    success = parse_selector("status.phase == Succeeded")
    failure = parse_selector("status.phase in (Failed,Error)")
    assert matches(CHILD, success, failure) == (
        False,
        "failure condition 'status.phase in (Error,Failed)' evaluated true",
    )
    running = {"status": {"phase": "Running"}}
    assert matches(running, success, failure) == (None, "")
    assert matches(running, [], failure) == (True, "")  # no success condition: done unless failed


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("status.phase === Succeeded", "found '=', expected: identifier"),
        ("status.phase Succeeded", "found 'Succeeded', expected: in, notin, =, ==, !=, gt, lt"),
        ("status.phase == a b", "found 'b', expected: ',' or 'end of string'"),
        ("status.retries > two", "for 'Gt', 'Lt' operators, the value must be an integer"),
        ("status.phase in Failed", "found 'Failed' expected: '('"),
        ("status.phase == x,", "found '', expected: identifier after ','"),
        ("Status Phase", "found 'Phase'"),
        ("status.phase == Succeeded!", "found '!'"),
        ("-bad == x", "key: Invalid value"),
    ],
)
def test_selector_errors(condition: str, message: str) -> None:
    with pytest.raises(ConditionError) as info:
        parse_selector(condition)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{.metadata.name}", "task-r00007-a1"),
        ("{.status.phase}", "Failed"),
        ('{.status.outputs.parameters[?(@.name=="model-version")].value}', "12"),
        ("{.status.outputs.parameters[?(@.name=='accuracy')].value}", "0.8125"),
        ('{.status.outputs.parameters[?(@.name=="missing")].value}', ""),
        ("{.status.nothing.deeper}", ""),
        ("{.status.outputs.parameters[*].name}", "model-version accuracy"),
        ("{.status.outputs.parameters[-1].name}", "accuracy"),
        ("{.status.outputs.parameters[5].name}", ""),
        ("{.metadata.labels.edgefed\\.io/round}", "7"),
        ("{.metadata['labels']['tier']}", "edge"),
        ("round {.metadata.labels.edgefed\\.io/round}: {.status.phase}", "round 7: Failed"),
        ("{$.status.retries}", "2"),
        ("{.status.ratio}", "1e+06"),
        ("{.status.done}", "true"),
        ("{.status.outputs.parameters[0]}", '{"name":"model-version","value":"12"}'),
        ("{.status.outputs.parameters[?(@.value)].name}", "model-version accuracy"),
        ("{.metadata.labels.*}", "7 edge"),
        (".status.phase", ".status.phase"),  # no action: literal text, as kubectl prints it
    ],
)
def test_json_path(template: str, expected: str) -> None:
    assert evaluate_jsonpath(template, CHILD) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{.status.phase[?(@.x=='y')]}", "is not array or slice and cannot be filtered"),
        ("{range .items[*]}{.x}{end}", "range/end is not supported"),
        ("{..name}", "recursive descent"),
        ("{.status.phase", "unclosed action"),
        ("{.status.outputs.parameters[?(@.value > 1)].name}", "incompatible types for comparison"),
    ],
)
def test_json_path_errors(template: str, message: str) -> None:
    with pytest.raises(JSONPathError) as info:
        evaluate_jsonpath(template, CHILD)
    assert message in str(info.value)
