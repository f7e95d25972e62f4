"""FederatedTask validation: every problem named with its field path; exit 2 and nothing created."""

from __future__ import annotations

import re

import pytest
import yaml

from edgefed.workflows.errors import ExitCode, SpecError
from edgefed.workflows.spec import dump_task, parse_task
from tests.helpers import edgefed, task_doc, write_task


def problems(doc) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_task(doc)
    return info.value.problems


def test_valid_task_parses_with_defaults():
    task = parse_task(task_doc(rounds=5, stop={"maxRounds": 3}))
    assert task.name == "t1"
    assert task.spec.aggregation.algorithm == "fedavg"
    assert task.spec.last_round == 3
    assert task.spec.edges[0].secret_name == "edgefed-edge-a"
    assert parse_task(dump_task(task)) == task  # round trip


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["spec"].update(bogus=1), "spec.bogus: unknown field"),
        (
            lambda d: d["spec"]["training"].update(batchSize="big"),
            "spec.training.batchSize: Input should be a valid integer",
        ),
        (lambda d: d["spec"]["edges"][1].update(name="a"), "spec.edges[1].name: duplicate edge name 'a'"),
        (lambda d: d["spec"].update(quorum=3), "spec.quorum: quorum 3 is above the number of edges (2)"),
        (lambda d: d["spec"]["model"].update(name="resnet"), "spec.model.name: unknown model 'resnet'"),
        (lambda d: d["spec"]["model"].update(name="no_such_module:build"), "spec.model.name: model factory"),
        (
            lambda d: d["spec"]["edges"][0].update(name="Bad_Name"),
            "spec.edges[0].name: 'Bad_Name' is not a DNS-1123 label",
        ),
        (lambda d: d["spec"].update(aggregation={"algorithm": "fedmagic"}), "spec.aggregation"),
        (lambda d: d["spec"]["edges"][0].pop("node"), "spec.edges[0].node: required field is missing"),
        (lambda d: d.update(kind="Workflow"), "kind: Input should be 'FederatedTask'"),
    ],
)
def test_each_bad_field_is_named(mutate, expected):
    doc = task_doc()
    mutate(doc)
    found = problems(doc)
    assert any(p.startswith(expected) for p in found), found


def test_all_problems_reported_at_once():
    doc = task_doc()
    doc["spec"]["edges"][1]["name"] = "a"
    doc["spec"]["quorum"] = 9
    found = problems(doc)
    assert len(found) == 2
    assert found[0].startswith("spec.edges[1].name") and found[1].startswith("spec.quorum")


def test_factory_model_that_exists_is_accepted():
    doc = task_doc()
    doc["spec"]["model"]["name"] = "tests.usercode:linear"  # factory(input_shape, classes, **params)
    assert parse_task(doc).spec.model.builtin is False


def test_cli_bad_spec_exits_2_and_creates_nothing(tmp_path):
    doc = task_doc()
    doc["spec"]["quorum"] = "many"
    doc["spec"]["edges"][0]["bogus"] = True
    path = write_task(tmp_path / "bad.yaml", doc)
    home = tmp_path / "home"
    for command in (["run", str(path)], ["generate", str(path), "-o", str(tmp_path / "out")]):
        result = edgefed(*command, home=home, timeout=120)
        assert result.returncode == ExitCode.INVALID, result.stderr
        assert "spec.quorum: Input should be a valid integer" in result.stderr
        assert "spec.edges[0].bogus: unknown field" in result.stderr
    assert not home.exists(), "a bad spec must not start the store or create state"
    assert not (tmp_path / "out").exists()


def test_cli_cross_field_problem_exits_2(tmp_path):
    path = write_task(tmp_path / "bad.yaml", task_doc(quorum=7))
    result = edgefed("run", str(path), home=tmp_path / "home", timeout=120)
    assert result.returncode == ExitCode.INVALID
    assert "spec.quorum: quorum 7 is above the number of edges (2)" in result.stderr
    assert not (tmp_path / "home").exists()


def test_cli_unreadable_file_exits_2(tmp_path):
    result = edgefed("run", str(tmp_path / "missing.yaml"), home=tmp_path / "home", timeout=120)
    assert result.returncode == ExitCode.INVALID
    assert "no such file" in result.stderr


def test_columns_must_match_the_model_input_and_not_repeat() -> None:
    from edgefed.workflows.errors import SpecError
    from edgefed.workflows.spec import parse_task
    from tests.helpers import task_doc

    doc = task_doc("cols", ("a",), dataset="sensors")
    doc["spec"]["columns"] = {"features": ["t", "v", "t"], "label": "v"}
    with pytest.raises(SpecError) as err:
        parse_task(doc)
    text = str(err.value)
    assert "spec.columns.features[2]: duplicate column 't'" in text
    assert "spec.columns.label: 'v' is also a feature column" in text
    doc["spec"]["columns"] = {"features": ["t", "v"]}
    with pytest.raises(
        SpecError, match=r"spec.columns.features: 2 feature columns, but model.inputShape \[32\] takes 32"
    ):
        parse_task(doc)


def test_a_training_step_must_be_a_findable_module_function() -> None:
    from edgefed.workflows.errors import SpecError
    from edgefed.workflows.spec import parse_task
    from tests.helpers import task_doc

    doc = task_doc("step", ("a",))
    doc["spec"]["training"] = {"step": "no_colon"}
    with pytest.raises(SpecError, match=r"spec.training.step: .*expected 'module:function'"):
        parse_task(doc)
    doc["spec"]["training"] = {"step": "no_such_module_xyz:step"}
    with pytest.raises(SpecError, match=r"module 'no_such_module_xyz' cannot be found"):
        parse_task(doc)
    doc["spec"]["training"] = {"step": "tests.usercode:l2_softmax_step"}
    assert parse_task(doc).spec.training.step == "tests.usercode:l2_softmax_step"


@pytest.mark.parametrize(
    ("name", "params", "says"),
    [
        ("os:system", {}, "module 'os' is not Python source"),
        ("json:dumps", {}, "takes 1 positional argument(s); it is called with 2 (input_shape, classes)"),
        ("json:no_such_function", {}, "defines no function 'no_such_function' at its top level"),
        ("tests.usercode:linear", {"nope": 1}, "takes no keyword argument 'nope'"),
    ],
)
def test_a_model_factory_is_checked_from_its_source_never_called(name, params, says) -> None:
    from edgefed.workflows.errors import SpecError
    from edgefed.workflows.spec import parse_task
    from tests.helpers import task_doc

    doc = task_doc("factory", ("a",))
    doc["spec"]["model"] = {"name": name, "inputShape": [4], "classes": 2, "params": params}
    with pytest.raises(SpecError, match=re.escape(says)):
        parse_task(doc)
    doc["spec"]["model"] = {
        "name": "tests.usercode:linear",
        "inputShape": [4],
        "classes": 2,
        "params": {"l2": 0.1},
    }
    assert parse_task(doc).spec.model.params == {"l2": 0.1}
    doc["spec"]["training"] = {"step": "os:system"}
    with pytest.raises(
        SpecError, match=r"spec.training.step: training step 'os:system': module 'os' is not Python"
    ):
        parse_task(doc)


def test_run_refuses_a_factory_that_is_not_one_before_anything_starts(tmp_path) -> None:
    from tests.helpers import task_doc

    doc = task_doc("system", ("a",))
    doc["spec"]["model"] = {"name": "os:system", "inputShape": [4], "classes": 2}
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump(doc))
    home = tmp_path / "home"
    result = edgefed("run", str(task), home=home, timeout=120)
    assert result.returncode == ExitCode.INVALID and "module 'os' is not Python source" in result.stderr
    assert "Traceback" not in result.stderr
    assert not home.exists() or list(home.iterdir()) == []  # no store, no run directory


def test_the_autonomy_section_has_defaults_and_names_a_bad_field() -> None:
    spec = parse_task(task_doc("t", ("a", "b"))).spec.autonomy
    assert spec.enabled and spec.cloud_wait_seconds == 30 and spec.late_updates == "use"
    assert spec.max_staleness == 3 and spec.staleness_exponent == 0.5
    for bad, field in (
        ({"cloudWaitSeconds": 0}, "cloudWaitSeconds"),
        ({"lateUpdates": "keep"}, "lateUpdates"),
    ):
        with pytest.raises(SpecError, match=rf"spec\.autonomy\.{field}"):
            parse_task(task_doc("t", ("a", "b"), autonomy=bad))
