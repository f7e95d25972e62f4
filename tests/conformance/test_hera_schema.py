"""The layer every user has: a closed JSON schema derived from Hera's models of Argo's API; and its
agreement with the published CRD layer where both apply."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conformance import (
    ARGO_VERSION,
    KINDS,
    ArgoSchemas,
    check_crd,
    check_hera,
    closed_schema,
    hera_validator,
)
from tests.conformance.samples import AGGREGATE, TRAIN, base_workflow, cron_workflow, dag_tasks, has_problem


def test_schema_comes_from_argo_4_models() -> None:
    assert ARGO_VERSION.startswith("4."), ARGO_VERSION
    assert set(closed_schema()["kinds"]) == set(KINDS)


def test_schema_and_validators_are_built_once() -> None:
    assert closed_schema() is closed_schema()
    assert all(hera_validator(kind) is hera_validator(kind) for kind in KINDS)


def test_every_object_that_declares_fields_is_closed() -> None:
    def objects(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if node.get("properties"):
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    found = list(objects(closed_schema()["$defs"]))
    assert len(found) > 100
    assert [o for o in found if o.get("additionalProperties") is not False] == []


def test_base_workflow_is_clean_against_the_hera_schema() -> None:
    assert check_hera(base_workflow()) == []
    assert check_hera(cron_workflow()) == []


def test_misspelled_field_fails_the_hera_schema() -> None:
    doc = base_workflow()
    template = doc["spec"]["templates"][TRAIN]
    template["nodeSelecter"] = template.pop("nodeSelector")
    problems = check_hera(doc)
    assert [p.path for p in problems] == ["spec.templates[0].nodeSelecter"]
    assert "unknown field" in problems[0].message and "did you mean 'nodeSelector'" in problems[0].message
    assert problems[0].check == "hera"


def test_misspelled_metadata_and_cron_fields_fail_the_hera_schema() -> None:
    doc = base_workflow()
    doc["metadata"]["lables"] = doc["metadata"].pop("labels")
    assert has_problem(check_hera(doc), "metadata.lables", "did you mean 'labels'")
    cron = cron_workflow()
    cron["spec"]["schedule"] = "* * * * *"  # removed in Argo v4
    assert has_problem(check_hera(cron), "spec.schedule", "unknown field", "did you mean 'schedules'")


def test_int_or_string_and_quantity_take_integers() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][TRAIN]["retryStrategy"] = {
        "limit": 2,
        "backoff": {"duration": "5s", "factor": 2},
    }
    doc["spec"]["templates"][TRAIN]["container"]["resources"] = {"limits": {"cpu": 1, "memory": "1Gi"}}
    assert check_hera(doc) == []
    doc["spec"]["templates"][TRAIN]["container"]["resources"]["limits"]["cpu"] = [1]
    assert has_problem(
        check_hera(doc), "spec.templates[0].container.resources.limits.cpu", "integer or string"
    )


def test_wrong_type_and_missing_field_fail_the_hera_schema() -> None:
    doc = base_workflow()
    doc["spec"]["parallelism"] = "four"
    del doc["spec"]["templates"][AGGREGATE]["outputs"]["parameters"][0]["name"]
    problems = check_hera(doc)
    assert has_problem(problems, "spec.parallelism", "expected integer")
    assert has_problem(problems, "spec.templates[1].outputs.parameters[0].name", "required")


def test_objects_without_declared_fields_stay_open() -> None:
    doc = base_workflow()
    doc["spec"]["templates"][AGGREGATE] = {"name": "aggregate", "plugin": {"hello": {"any": ["thing"]}}}
    assert check_hera(doc) == []


def test_unsupported_kind_is_reported() -> None:
    problems = check_hera({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
    assert [p.path for p in problems] == ["kind"]


def _misspell(template: str, old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def break_it(doc: dict[str, Any]) -> None:
        holder = doc["spec"]["templates"][TRAIN] if template == "train" else doc["spec"]
        holder[new] = holder.pop(old)

    return break_it


#: One broken thing each, that both closed schemas must find, at the same path with the same message.
BROKEN: dict[str, Callable[[dict[str, Any]], None]] = {
    "template field": _misspell("train", "nodeSelector", "nodeSelecter"),
    "spec field": _misspell("spec", "entrypoint", "entryPoint"),
    "metadata field": lambda doc: doc["metadata"].update(lables=doc["metadata"].pop("labels")),
    "task field": lambda doc: dag_tasks(doc)[1].update(dependz=dag_tasks(doc)[1].pop("depends")),
    "container field": lambda doc: doc["spec"]["templates"][TRAIN]["container"].update(
        imagePullPolice="Always"
    ),
    "wrong type": lambda doc: doc["spec"].update(parallelism="four"),
    "null": lambda doc: doc["spec"]["templates"][TRAIN]["outputs"]["parameters"][0].update(name=None),
    "missing name": lambda doc: doc["spec"]["templates"][AGGREGATE]["outputs"]["parameters"][0].pop("name"),
    "list for a map": lambda doc: doc["spec"]["templates"][TRAIN].update(nodeSelector=["a"]),
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_both_schema_layers_agree_on_broken_documents(broken: str, schemas: ArgoSchemas) -> None:
    doc = base_workflow()
    BROKEN[broken](doc)
    hera = [(p.path, p.message) for p in check_hera(doc)]
    assert hera != []
    assert hera == [(p.path, p.message) for p in check_crd(doc, schemas)]
