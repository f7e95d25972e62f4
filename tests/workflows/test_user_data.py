"""A user's own data, through the CLI: put a CSV into an edge's own store, list it, draft a contract from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.helpers import edgefed


def sensor_table(rows: int, seed: int) -> pd.DataFrame:
    """A small made-up sensor table: two readings, a status code, a label."""
    rng = np.random.default_rng(seed)
    temperature = rng.normal(60.0, 5.0, rows).round(2)
    vibration = rng.gamma(2.0, 0.5, rows).round(3)
    return pd.DataFrame(
        {
            "temperature": temperature,
            "vibration": vibration,
            "status": rng.integers(0, 3, rows),
            "label": (temperature + 10 * vibration > 70).astype("int64"),
        }
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("user-data") / "home"
    yield path
    edgefed("store", "stop", home=path, timeout=120)


def test_put_then_ls_shows_the_rows_with_the_edges_own_identity(home: Path, tmp_path: Path) -> None:
    csv = tmp_path / "plant-a.csv"
    sensor_table(120, 1).to_csv(csv, index=False)
    parquet = tmp_path / "plant-b.parquet"
    sensor_table(80, 2).to_parquet(parquet, index=False)
    put = edgefed("data", "put", "plant-a", str(csv), "--dataset", "sensors", home=home, timeout=300)
    assert put.returncode == 0, put.stdout + put.stderr
    assert "s3://edge-plant-a/sensors/train.parquet: 120 rows x 4 columns" in " ".join(put.stdout.split())
    assert "(as site-plant-a)" in put.stdout
    assert (
        edgefed(
            "data", "put", "plant-b", str(parquet), "--dataset", "sensors", home=home, timeout=300
        ).returncode
        == 0
    )
    listed = edgefed("data", "ls", "-o", "json", home=home, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rows = {(r["edge"], r["dataset"]): r for r in json.loads(listed.stdout)}
    assert rows[("plant-a", "sensors")]["rows"] == 120 and rows[("plant-b", "sensors")]["rows"] == 80
    assert rows[("plant-a", "sensors")]["columns"] == 4
    assert rows[("plant-a", "sensors")]["verdict"] == "not checked since it changed"
    table = edgefed("data", "ls", "--edge", "plant-b", home=home, timeout=120)
    assert table.returncode == 0 and "plant-b" in table.stdout and "plant-a" not in table.stdout


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "not a readable csv table"),
        (b"\x00\x01garbage", "bad.parquet", "not a readable parquet table"),
        (b"a,b\n1,2\n", "table.txt", "expected a .csv or .parquet file"),
    ],
)
def test_a_bad_file_is_refused_naming_it_and_nothing_is_written(
    home: Path, tmp_path: Path, content, name, message
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = edgefed("data", "put", "plant-c", str(path), "--dataset", "sensors", home=home, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(path) in " ".join(result.stderr.split()) and message in result.stderr
    listed = edgefed("data", "ls", "-o", "json", home=home, timeout=120)
    assert not [r for r in json.loads(listed.stdout) if r["edge"] == "plant-c"]


def test_contract_draft_proposes_a_contract_the_sample_passes_and_that_catches_a_broken_table(
    tmp_path: Path,
) -> None:
    from edgefed.steps.contracts import check, load_contract

    sample = tmp_path / "sensors.csv"
    sensor_table(200, 3).to_csv(sample, index=False)
    out = tmp_path / "sensors.yaml"
    drafted = edgefed("contract", "draft", str(sample), "--to", str(out), home=tmp_path / "h", timeout=300)
    assert drafted.returncode == 0, drafted.stdout + drafted.stderr
    document = yaml.safe_load(out.read_text())
    columns = {c["name"]: c for c in document["columns"]}
    assert document["contract"] == "sensors" and list(columns) == [
        "temperature",
        "vibration",
        "status",
        "label",
    ]
    assert columns["status"]["values"] == [0, 1, 2] and columns["temperature"]["type"] == "float64"
    assert columns["temperature"]["min"] < 45 and columns["temperature"]["max"] > 75
    assert document["label"] == {"column": "label", "values": [0, 1], "min_distinct": 2}
    contract = load_contract(document)
    assert check(sensor_table(50, 4), contract).passed  # another sample of the same source passes
    broken = sensor_table(50, 5)
    broken.loc[3, "temperature"] = 400.0  # a sensor gone wrong
    assert "temperature" in " ".join(check(broken, contract).failed_names)
    again = edgefed("contract", "draft", str(sample), "--to", str(out), home=tmp_path / "h", timeout=120)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr


def put_plants_and_draft(
    home: Path,
    tmp_path: Path,
    plants: tuple[str, ...],
    tables: list[pd.DataFrame],
    test: pd.DataFrame,
    dataset: str,
    *,
    label: str = "label",
    widen: float,
) -> Path:
    """What a user does before a task on their own data: each plant's CSV into its store (`data put`), a
    held-out CSV (`data put-test`), a contract drafted from one plant's sample (`contract draft`) whose bounds
    are widened by ``widen``, as a user would for the other plants. Returns the contract file."""
    for plant, table in zip(plants, tables, strict=True):
        csv = tmp_path / f"{plant}.csv"
        table.to_csv(csv, index=False)
        put = edgefed("data", "put", plant, str(csv), "--dataset", dataset, home=home, timeout=300)
        assert put.returncode == 0, put.stderr
    test.to_csv(tmp_path / "test.csv", index=False)
    put = edgefed(
        "data", "put-test", str(tmp_path / "test.csv"), "--dataset", dataset, home=home, timeout=300
    )
    assert put.returncode == 0, put.stderr
    contract = tmp_path / f"{dataset}.yaml"
    options = ["--name", dataset, "--to", str(contract)] + (["--label", label] if label != "label" else [])
    sample = str(tmp_path / f"{plants[0]}.csv")
    drafted = edgefed("contract", "draft", sample, *options, home=home, timeout=300)
    assert drafted.returncode == 0, drafted.stderr
    document = yaml.safe_load(contract.read_text())
    for column in document["columns"]:
        if "min" in column:
            column["min"], column["max"] = column["min"] - widen, column["max"] + widen
    if label != "label":
        document.pop("label", None)  # a numeric target: no class set to check
    contract.write_text(yaml.safe_dump(document, sort_keys=False))
    return contract


@pytest.mark.slow
def test_a_task_on_a_users_own_csv_trains_with_no_code(home: Path, tmp_path: Path) -> None:
    """Three plants' CSVs, a held-out set, a drafted contract, a task naming the columns: real rounds."""
    from tests.helpers import task_doc, write_task

    plants = ("plant-x", "plant-y", "plant-z")
    # the draft from one plant's sample is what every plant is checked against: its bounds widened
    contract = put_plants_and_draft(
        home,
        tmp_path,
        plants,
        [sensor_table(150, 10 + i) for i in range(len(plants))],
        sensor_table(200, 99),
        "sensors",
        widen=50,
    )

    doc = task_doc("sensors-task", plants, rounds=8, quorum=3, dataset="sensors")
    doc["spec"]["contract"] = str(contract)
    doc["spec"]["columns"] = {"features": ["temperature", "vibration", "status"], "label": "label"}
    doc["spec"]["model"] = {"name": "mlp", "inputShape": [3], "classes": 2, "params": {"hidden": [16]}}
    doc["spec"]["training"] = {"batchSize": 16, "learningRate": 0.05, "localEpochs": 2, "optimizer": "adam"}
    for edge in doc["spec"]["edges"]:
        edge["dataset"]["key"] = "sensors/train.parquet"
    task = write_task(tmp_path / "task.yaml", doc)
    ran = edgefed("run", str(task), home=home, timeout=900)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    listed = json.loads(
        edgefed("models", "list", "sensors-task", "-o", "json", home=home, timeout=120).stdout
    )
    final = (
        [v for v in listed["versions"] if v.get("accuracy") is not None][-1]
        if isinstance(listed, dict)
        else [v for v in listed if v.get("accuracy") is not None][-1]
    )
    assert final["accuracy"] > 0.8, final  # the label is a threshold of two readings: learnable
    shown = json.loads(edgefed("models", "show", "sensors-task", "-o", "json", home=home, timeout=120).stdout)
    assert shown["round"] == 8 and shown["model"]["verified"] is True
    exported = edgefed(
        "models",
        "export",
        "sensors-task",
        "--to",
        str(tmp_path / "export"),
        "-o",
        "json",
        home=home,
        timeout=300,
    )
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["featureColumns"] == ["temperature", "vibration", "status"]


#: A user's training step for a linear regression: each plant solves ridge regression on its own rows exactly
#: (the built-in trainer would take many SGD epochs on these unscaled readings); FedAvg averages the solutions.
RIDGE_STEP = """
import numpy as np


def ridge_step(weights, x, y, *, model, training, seed):
    kernel, bias = weights
    design = np.hstack([x, np.ones((len(x), 1), x.dtype)]).astype(np.float64)
    penalty = 1e-3 * np.eye(design.shape[1])
    solution = np.linalg.solve(design.T @ design + penalty, design.T @ y.astype(np.float64))
    residual = design @ solution - y
    kernel = solution[:-1].reshape(kernel.shape).astype(np.float32)
    bias = solution[-1:].reshape(bias.shape).astype(np.float32)
    return [kernel, bias], {"mse": float(np.mean(residual**2)), "solver": 1.0}
"""


def regression_table(rows: int, seed: int) -> pd.DataFrame:
    """The sensor table with a numeric target: a plant's output, linear in the readings, plus noise."""
    frame = sensor_table(rows, seed).drop(columns=["label"])
    noise = np.random.default_rng(seed + 1000).normal(0, 0.5, rows)
    frame["output"] = (
        0.5 * frame["temperature"] + 3 * frame["vibration"] - 10 * frame["status"] + noise
    ).round(3)
    return frame


@pytest.mark.slow
def test_a_regression_task_on_a_users_csv_learns_and_stops_on_its_metric(home: Path, tmp_path: Path) -> None:
    from tests.helpers import task_doc, write_task

    plants = ("mill-1", "mill-2", "mill-3")
    test = regression_table(200, 77)
    contract = put_plants_and_draft(
        home,
        tmp_path,
        plants,
        [regression_table(200, 20 + i) for i in range(len(plants))],
        test,
        "output",
        label="output",
        widen=100,
    )
    baseline = float(np.mean(np.abs(test["output"] - test["output"].mean())))  # predicting the mean

    doc = task_doc("output-task", plants, rounds=15, quorum=3, dataset="output")
    doc["spec"]["contract"] = str(contract)
    doc["spec"]["columns"] = {"features": ["temperature", "vibration", "status"], "label": "output"}
    doc["spec"]["model"] = {"name": "logistic", "inputShape": [3], "task": "regression"}  # one linear output
    # the user's own training step, in their own module on PYTHONPATH (README: "Your own model and training step")
    code = tmp_path / "usercode"
    code.mkdir()
    (code / "millcode.py").write_text(RIDGE_STEP)
    doc["spec"]["training"] = {"learningRate": 0.1, "localEpochs": 1, "step": "millcode:ridge_step"}
    doc["spec"]["evaluation"] = {"metric": "mae"}
    doc["spec"]["stop"] = {"targetMetric": round(baseline / 4, 3)}
    for edge in doc["spec"]["edges"]:
        edge["dataset"]["key"] = "output/train.parquet"
    task_file = write_task(tmp_path / "task.yaml", doc)
    ran = edgefed("run", str(task_file), home=home, timeout=900, env={"PYTHONPATH": str(code)})
    assert ran.returncode == 0, ran.stdout + ran.stderr
    shown = json.loads(edgefed("models", "show", "output-task", "-o", "json", home=home, timeout=120).stdout)
    # each plant ran the user's step: its metrics are in the round's lineage
    assert all(c["metrics"]["solver"] == 1.0 for c in shown["contributors"]), shown["contributors"]
    evaluation = shown["evaluation"]
    assert set(evaluation) >= {"mse", "mae", "loss"} and "accuracy" not in evaluation
    assert evaluation["mae"] < baseline / 2, (evaluation, baseline)
    if shown["round"] < 15:  # it stopped early: on the target, in mae's direction (lower)
        assert f"target mae {round(baseline / 4, 3)} reached" in ran.stdout
        assert evaluation["mae"] <= baseline / 4


def test_a_regression_spec_names_what_does_not_fit() -> None:
    from edgefed.workflows.errors import SpecError
    from edgefed.workflows.spec import parse_task
    from tests.helpers import task_doc

    doc = task_doc("reg", ("a",), dataset="output")
    doc["spec"]["model"] = {"name": "logistic", "inputShape": [3], "task": "regression", "classes": 2}
    doc["spec"]["evaluation"] = {"metric": "accuracy"}
    doc["spec"]["stop"] = {"targetAccuracy": 0.9}
    with pytest.raises(SpecError) as err:
        parse_task(doc)
    text = str(err.value)
    assert "spec.model.classes: a regression model has one output" in text
    doc["spec"]["model"].pop("classes")
    with pytest.raises(SpecError) as err:
        parse_task(doc)
    text = str(err.value)
    assert "spec.evaluation.metric: a regression task records mse, mae, loss, not 'accuracy'" in text
    assert "spec.stop.targetAccuracy: a regression task has no accuracy" in text
