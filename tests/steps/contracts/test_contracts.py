"""Data contracts with real Great Expectations on real partitions, and the ``validate`` step end to end
against the embedded S3 store. GE is imported once for the module (first check)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from edgefed.steps import contracts, datasets, layout, validate
from edgefed.steps.contracts import ContractError, Verdict, check, load_contract
from edgefed.steps.store import DataUnavailableError, parquet_bytes, put_bytes
from edgefed.workflows.data.check import CheckError, check_task, render_table
from edgefed.workflows.spec import parse_task
from tests.bench.contracts import bench_contract
from tests.helpers import task_doc

#: Values planted in a bad row; float32-exact, so we know how they print wherever they leak.
SENTINEL_AGE = float(np.float32(1.2345678))  # above age's max 1.2
SENTINEL_CP = float(np.float32(0.87654321))  # not 0/1, and breaks the cp one-hot sum


def leaked(text: str, value: float) -> bool:
    """Whether ``value`` appears in ``text`` in any usual rendering (repr, rounded, float32 repr)."""
    forms = {repr(value), f"{value:.6f}", f"{value:.6g}", f"{value:.4f}", repr(float(np.float32(value)))}
    return any(form in text for form in forms)


#: Where this module's datasets live in the session store's edge buckets (apart from other modules' data).
DATASET_KEY = "contracts-test/heart/train.parquet"

FORBIDDEN_KEYS = (
    "partial_unexpected_list",
    "unexpected_list",
    "unexpected_index_list",
    "partial_unexpected_counts",
)


#: The summary keys a failed expectation may carry out of the edge (``verdict.TRAVELS`` must be these).
TRAVELLING_KEYS = {
    "element_count", "missing_count", "missing_percent", "unexpected_count", "unexpected_percent",
    "unexpected_percent_total", "unexpected_percent_nonmissing", "observed_value", "missing_columns",
    "missing_column_count", "failing_columns", "failing_column_count", "unexpected_column_count", "column_count",
    "order_differs", "distinct_value_count", "unexpected_value_count", "missing_value_count",
    "violated", "bound", "error",
}  # fmt: skip


def assert_travels_clean(verdict: Verdict, frame: pd.DataFrame) -> None:
    """The verdict JSON names no row-level result list and no value of a row that failed."""
    text = verdict.to_json()
    for key in FORBIDDEN_KEYS:
        assert key not in text
    for failed in verdict.failed:
        assert set(failed.observed) <= TRAVELLING_KEYS


@pytest.fixture(scope="module")
def heart() -> datasets.Partitioned:
    return datasets.partition("heart", split="natural", seed=0)


@pytest.fixture(scope="module")
def cleveland(heart: datasets.Partitioned) -> pd.DataFrame:
    return heart.edges["cleveland"]


@pytest.fixture(scope="module")
def heart_contract() -> contracts.Contract:
    return load_contract("heart")


def bad_heart_row(frame: pd.DataFrame) -> pd.DataFrame:
    """One edge's frame with one bad row: an out-of-range age and a broken one-hot, both sentinels."""
    bad = frame.copy()
    bad.loc[7, "age"] = SENTINEL_AGE
    bad.loc[7, "cp_typical_angina"] = SENTINEL_CP
    return bad


# --------------------------------------------------------------------------------------- contracts


@pytest.mark.parametrize("name", datasets.DATASETS)
def test_contract_columns_are_the_dataset_columns_in_model_order(name: str) -> None:
    contract = load_contract(name)
    info = datasets.info(name)
    assert contract.name == contract.dataset == name
    assert contract.columns == (*info.feature_columns, info.label_column)
    assert contract.label_column == "label"
    assert contract.expectations[0].expectation == "expect_table_columns_to_match_ordered_list"
    assert load_contract(contracts.DEFAULT_CONTRACTS_DIR / f"{name}.yaml").sha256 == contract.sha256


def test_image_contracts_stay_compact() -> None:
    mnist = load_contract("mnist")
    kinds = [e.expectation for e in mnist.expectations]
    assert len(kinds) < 15  # 784 pixel columns are one group, not 784 x 4 expectations
    group = next(e for e in mnist.expectations if e.expectation == "expect_column_group_values_to_be_between")
    assert group.kwargs["column_list"][:2] == ["px_000", "px_001"] and len(group.kwargs["column_list"]) == 784
    assert group.name == "expect_column_group_values_to_be_between(column_list=px_000..px_783 (784 columns))"


def test_contract_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "contract: bad\ndataset: heart\nrows: {min: -1}\n"
        "columns:\n  - {name: a, min: 2, max: 1}\n  - {name: b, colour: red}\n  - {name: 'px', count: 3}\n"
        "label: {column: nope}\n"
    )
    with pytest.raises(ContractError) as info:
        load_contract(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for field in (
        "rows.min",
        "columns[0]: min 2 is above max 1",
        "columns[1].colour",
        "columns[2].name",
        "label.column",
    ):
        assert field in message
    with pytest.raises(ContractError, match=r"contract 'no-such'.*no no-such\.yaml"):
        load_contract("no-such")


def test_unknown_expectation_type_is_reported_with_its_field(cleveland: pd.DataFrame) -> None:
    contract = contracts.parse_contract(
        {
            "contract": "odd",
            "dataset": "heart",
            "columns": [{"name": c} for c in cleveland.columns],
            "expectations": [{"expectation": "expect_the_unexpected", "kwargs": {}}],
        },
        source="odd.yaml",
    )
    with pytest.raises(
        ContractError, match=r"odd\.yaml: expectations\[0\]\.expectation: 'expect_the_unexpected'"
    ):
        check(cleveland, contract)


# -------------------------------------------------------------------------------- real partitions


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("heart", {"split": "natural"}),
        ("digits", {"edges": ["a", "b", "c", "d"], "split": "iid"}),
        ("digits", {"edges": [f"e{i}" for i in range(8)], "split": "label-skew"}),
        ("mnist", {"edges": ["a", "b", "c"], "split": "iid", "limit": 3000}),
        ("mnist", {"edges": [f"e{i}" for i in range(5)], "split": "label-skew", "limit": 2000}),
    ],
    ids=["heart-hospitals", "digits-iid", "digits-label-skew", "mnist-iid", "mnist-label-skew"],
)
def test_every_real_partition_passes(name: str, kwargs: dict) -> None:
    contract = load_contract(name)
    parts = datasets.partition(name, seed=0, **kwargs)
    for edge, frame in parts.edges.items():
        verdict = check(frame, contract)
        assert verdict.passed, (edge, verdict.to_dict())
        assert verdict.failed == [] and verdict.rows == len(frame)
    assert check(parts.test, contract).passed


def test_switzerland_is_mostly_positive_and_still_passes(heart, heart_contract) -> None:
    frame = heart.edges["switzerland"]
    assert frame["label"].mean() > 0.9
    assert check(frame, heart_contract).passed


# ------------------------------------------------------------------------------ one bad edge at a time


def _rename(f: pd.DataFrame) -> pd.DataFrame:
    return f.rename(columns={"chol": "cholesterol"})


def _reorder(f: pd.DataFrame) -> pd.DataFrame:
    cols = list(f.columns)
    cols[0], cols[1] = cols[1], cols[0]
    return f[cols]


def _unscaled_age(f: pd.DataFrame) -> pd.DataFrame:
    out = f.copy()
    out["age"] = out["age"] * 100  # an export that forgot to encode
    return out


def _label_outside_set(f: pd.DataFrame) -> pd.DataFrame:
    out = f.copy()
    out.loc[3, "label"] = 2  # raw num (0-4) instead of the binary label
    return out


def _too_few_rows(f: pd.DataFrame) -> pd.DataFrame:
    return f.head(5)


def _nans(f: pd.DataFrame) -> pd.DataFrame:
    out = f.copy()
    out.loc[[1, 4, 9], "thalch"] = np.nan  # a sensor writing NaNs
    return out


def _float64(f: pd.DataFrame) -> pd.DataFrame:
    return f.astype({"oldpeak": "float64"})


def _one_class(f: pd.DataFrame) -> pd.DataFrame:
    return f[f["label"] == 1].reset_index(drop=True)


def _broken_one_hot(f: pd.DataFrame) -> pd.DataFrame:
    out = f.copy()
    out.loc[[2, 3], ["slope_upsloping", "slope_flat", "slope_downsloping", "slope_missing"]] = 0.0
    return out


BAD_HEART: list[tuple[Callable[[pd.DataFrame], pd.DataFrame], str, dict]] = [
    (_rename, "expect_table_columns_to_match_ordered_list()", {"missing_columns": ["chol"], "unexpected_column_count": 1}),
    (_reorder, "expect_table_columns_to_match_ordered_list()", {"order_differs": True}),
    (_unscaled_age, "expect_column_max_to_be_between(column=age)", {"violated": "max_value", "bound": 1.2}),
    (_label_outside_set, "expect_column_distinct_values_to_be_in_set(column=label)", {"unexpected_value_count": 1}),
    (_too_few_rows, "expect_table_row_count_to_be_between()", {"observed_value": 5}),
    (_nans, "expect_column_proportion_of_non_null_values_to_be_between(column=thalch)", {}),
    (_float64, "expect_column_values_to_be_of_type(column=oldpeak)", {"observed_value": "float64"}),
    (_one_class, "expect_column_unique_value_count_to_be_between(column=label)", {"observed_value": 1}),
    (_one_class, "expect_column_most_common_value_share_to_be_between(column=label)", {"observed_value": 1.0}),
    (
        _broken_one_hot,
        "expect_multicolumn_sum_to_equal(column_list=slope_upsloping..slope_missing (4 columns))",
        {"unexpected_count": 2},
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "name", "observed"), BAD_HEART, ids=[m.__name__.strip("_") for m, _, _ in BAD_HEART]
)
def test_a_bad_edge_fails_and_the_verdict_names_the_expectation(
    cleveland, heart_contract, mutate, name, observed
) -> None:
    frame = mutate(cleveland)
    verdict = check(frame, heart_contract)
    assert not verdict.passed
    assert name in verdict.failed_names, verdict.failed_names
    entry = next(f for f in verdict.failed if f.name == name)
    for key, value in observed.items():
        assert entry.observed[key] == value, entry.observed
    assert verdict.rows == len(frame)
    assert_travels_clean(verdict, frame)


def test_nan_rate_is_reported_as_a_proportion(cleveland, heart_contract) -> None:
    verdict = check(_nans(cleveland), heart_contract)
    entry = next(f for f in verdict.failed if "thalch" in f.name)
    assert entry.observed["observed_value"] == pytest.approx(1 - 3 / len(cleveland), abs=1e-6)


def test_image_edge_with_bad_pixels_fails_on_the_column_group() -> None:
    contract = load_contract("mnist")
    frame = datasets.partition("mnist", edges=["a"], split="iid", seed=0, limit=500).edges["a"].copy()
    frame.loc[3, "px_100"] = 255.0  # raw bytes instead of [0, 1]
    frame.loc[4, "px_200"] = np.nan
    verdict = check(frame, contract)
    assert not verdict.passed
    by_name = {f.name: f.observed for f in verdict.failed}
    assert by_name["expect_column_group_values_to_be_between(column_list=px_000..px_783 (784 columns))"] == {
        "failing_column_count": 1,
        "failing_columns": ["px_100"],
        "column_count": 784,
    }
    nulls = by_name[
        "expect_column_group_proportion_of_non_null_values_to_be_between(column_list=px_000..px_783 (784 columns))"
    ]
    assert nulls["failing_columns"] == ["px_200"]
    assert "255" not in verdict.to_json()


def _results(verdict: Verdict) -> list[dict]:
    return [r.to_json_dict() for r in verdict.result.results]


@pytest.mark.parametrize("mutate", [_reorder, _nans, _broken_one_hot], ids=lambda m: m.__name__.strip("_"))
def test_memoized_configurations_give_ge_s_own_results(
    cleveland, heart_contract, mutate, monkeypatch
) -> None:
    """A check with GE's configuration memo (runtime._memoize_configurations) gives, result for result,
    what GE gives without it; and out of a check the property is GE's own (a fresh object each read)."""
    from edgefed.steps.contracts import runtime

    frame = mutate(cleveland)
    memoized = check(frame, heart_contract)
    monkeypatch.setattr(runtime, "_MEMOIZE", False)
    plain = check(frame, heart_contract)
    assert _results(memoized) == _results(plain)
    assert memoized.failed == plain.failed and not memoized.passed
    expectation = runtime.ge_runtime().suite(heart_contract).expectations[0]
    assert expectation.configuration is not expectation.configuration
    configuration = expectation.configuration  # and the way back (runtime's to_domain_obj memo) is GE's too
    assert configuration.to_domain_obj() is not configuration.to_domain_obj()


def test_memoized_check_of_a_column_group_gives_ge_s_own_results(monkeypatch) -> None:
    """The memos on a contract of 784-column groups (mnist), failing and passing: GE's own results."""
    from edgefed.steps.contracts import runtime

    contract = load_contract("mnist")
    good = datasets.partition("mnist", edges=["a"], split="iid", seed=0, limit=300).edges["a"]
    bad = good.copy()
    bad.loc[bad.index[3], "px_100"] = 255.0
    bad.loc[bad.index[4], "px_200"] = np.nan
    memoized = [check(frame, contract) for frame in (good, bad)]
    monkeypatch.setattr(runtime, "_MEMOIZE", False)
    plain = [check(frame, contract) for frame in (good, bad)]
    for m, p in zip(memoized, plain, strict=True):
        assert _results(m) == _results(p) and m.failed == p.failed
    assert memoized[0].passed and not memoized[1].passed
    # no GE fingerprint of the values (the data is named by its ETag in the verdict): 11 ms a check saved
    assert "pandas_data_fingerprint" not in memoized[0].result.meta["batch_markers"]


def test_the_verdict_carries_no_data_value_but_the_full_result_does(cleveland, heart_contract) -> None:
    frame = bad_heart_row(cleveland)
    verdict = check(frame, heart_contract)
    names = set(verdict.failed_names)
    assert {
        "expect_column_max_to_be_between(column=age)",
        "expect_column_distinct_values_to_be_in_set(column=cp_typical_angina)",
        "expect_multicolumn_sum_to_equal(column_list=cp_typical_angina..cp_asymptomatic (4 columns))",
    } <= names
    travelling = verdict.to_json(edge="cleveland")
    assert not leaked(travelling, SENTINEL_AGE) and not leaked(travelling, SENTINEL_CP)
    assert_travels_clean(verdict, frame)
    # what stays at the edge does name them: the test would see a leak
    full = contracts.full_result_json(verdict)
    assert leaked(full, SENTINEL_AGE) and leaked(full, SENTINEL_CP)
    html = contracts.data_docs_html(verdict)
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:500].lower()
    assert "expect_multicolumn_sum_to_equal" in html or "cp_typical_angina" in html
    assert Verdict.from_dict(json.loads(travelling)).to_dict() == verdict.to_dict()


def test_column_names_found_in_the_data_do_not_travel(cleveland, heart_contract) -> None:
    # an export that lost its header row: a patient's values become column names
    headerless = cleveland.rename(columns={"age": repr(SENTINEL_AGE), "chol": "0.87654321"})
    verdict = check(headerless, heart_contract)
    entry = next(f for f in verdict.failed if f.name == "expect_table_columns_to_match_ordered_list()")
    assert entry.observed["missing_columns"] == ["age", "chol"]
    assert entry.observed["unexpected_column_count"] == 2
    text = verdict.to_json()
    assert not leaked(text, SENTINEL_AGE) and "87654321" not in text


def test_bench_contract_runs_small() -> None:
    result = bench_contract(rows=20_000, repeat=1)
    assert result["passed"] and result["rows"] == 20_000
    assert result["checkSeconds"] > 0  # measured; the 10 s target is `make bench`'s, not a unit test's


# -------------------------------------------------------------------- the step against the real store


@pytest.fixture(scope="module")
def seeded(store, cleveland, heart) -> dict[str, str]:
    """edge-a holds a good heart partition, edge-b one bad row; returns the dataset URLs."""
    admin = store.client(layout.ADMIN_IDENTITY)
    key = DATASET_KEY
    put_bytes(admin, layout.edge_bucket("a"), key, parquet_bytes(heart.edges["hungary"]))
    put_bytes(admin, layout.edge_bucket("b"), key, parquet_bytes(bad_heart_row(cleveland)))
    return {"a": f"s3://edge-a/{key}", "b": f"s3://edge-b/{key}"}


def _run_step(
    store, monkeypatch, tmp_path: Path, edge: str, dataset: str, task: str, round_: int = 3
) -> tuple[int, Path]:
    creds, site = store.credentials(layout.edge_identity(edge)), store.credentials(layout.site_identity(edge))
    monkeypatch.setenv("EDGEFED_ACCESS_KEY", creds.access_key)
    monkeypatch.setenv("EDGEFED_SECRET_KEY", creds.secret_key)
    monkeypatch.setenv("EDGEFED_SITE_ACCESS_KEY", site.access_key)
    monkeypatch.setenv("EDGEFED_SITE_SECRET_KEY", site.secret_key)
    outputs = tmp_path / f"outputs-{edge}-{round_}"
    config = {"dataset": "heart", "model": {"name": "logistic", "inputShape": [32], "classes": 2}}
    argv = [
        f"--task={task}",
        f"--round={round_}",
        "--workflow=wf-1",
        f"--store=http://{store.endpoint}",
        f"--config={json.dumps(config)}",
        f"--outputs={outputs}",
        f"--edge={edge}",
        f"--dataset={dataset}",
        f"--dataset-store=http://{store.endpoint}",
    ]
    return validate.run(argv), outputs


def _get(store, bucket: str, key: str) -> bytes:
    response = store.client(layout.ADMIN_IDENTITY).get_object(bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def _exists(store, bucket: str, key: str) -> bool:
    from edgefed.steps.store import exists

    return exists(store.client(layout.ADMIN_IDENTITY), bucket, key)


def test_step_passes_a_good_edge(store, seeded, monkeypatch, tmp_path, capsys) -> None:
    code, outputs = _run_step(store, monkeypatch, tmp_path, "a", seeded["a"], "contracts-step")
    assert code == 0
    assert (outputs / "passed").read_text() == "true"
    assert json.loads((outputs / "failed").read_text()) == []
    prefix = layout.validation_prefix("contracts-step", 3, "wf-1")
    assert prefix == "edgefed/validation/contracts-step/round-00003/wf-1/"
    result = json.loads(_get(store, "edge-a", prefix + "result.json"))
    assert result["success"] is True and result["statistics"]["unsuccessful_expectations"] == 0
    assert b"<html" in _get(store, "edge-a", prefix + "result.html")[:2000].lower()
    key = layout.verdict_key("a", "contracts-step", 3, "wf-1")
    assert key == "a/contracts-step/round-00003/wf-1/verdict.json"
    verdict = json.loads(_get(store, layout.UPDATES_BUCKET, key))
    assert verdict["passed"] is True and verdict["edge"] == "a" and verdict["rows"] > 20
    assert not _exists(store, layout.UPDATES_BUCKET, layout.edge_status_key("a", "contracts-step", 3, "wf-1"))
    assert "contract heart v1 PASSED" in capsys.readouterr().out


def test_step_reuses_a_passing_verdict_on_unchanged_data_and_sends_it_once(
    store, heart, monkeypatch, tmp_path, capsys
) -> None:
    task, key = "contracts-reuse", "contracts-test/reuse.parquet"
    admin = store.client(layout.ADMIN_IDENTITY)
    rows = heart.edges["hungary"]
    put_bytes(admin, "edge-a", key, parquet_bytes(rows.iloc[:-1]))  # bytes no other test checked
    code, _ = _run_step(store, monkeypatch, tmp_path, "a", f"s3://edge-a/{key}", task, round_=1)
    assert code == 0
    first = json.loads(_get(store, layout.UPDATES_BUCKET, layout.verdict_key("a", task, 1, "wf-1")))
    assert first["passed"] is True and first["round"] == 1
    assert first["datasetEtag"] == admin.stat_object("edge-a", key).etag
    capsys.readouterr()

    code, outputs = _run_step(store, monkeypatch, tmp_path, "a", f"s3://edge-a/{key}", task, round_=2)
    assert code == 0 and (outputs / "passed").read_text() == "true"
    assert (outputs / "rows").read_text() == str(len(rows) - 1)
    assert "PASSED (unchanged data, verdict of round 1 reused)" in capsys.readouterr().out
    assert not _exists(store, layout.UPDATES_BUCKET, layout.verdict_key("a", task, 2, "wf-1"))
    assert not _exists(store, "edge-a", layout.validation_prefix(task, 2, "wf-1") + "result.json")

    put_bytes(admin, "edge-a", key, parquet_bytes(rows.iloc[1:]))  # new bytes: checked and sent afresh
    code, outputs = _run_step(store, monkeypatch, tmp_path, "a", f"s3://edge-a/{key}", task, round_=3)
    assert code == 0 and "reused" not in capsys.readouterr().out
    third = json.loads(_get(store, layout.UPDATES_BUCKET, layout.verdict_key("a", task, 3, "wf-1")))
    assert third["rows"] == len(rows) - 1 and third["datasetEtag"] == admin.stat_object("edge-a", key).etag
    assert _exists(store, "edge-a", layout.validation_prefix(task, 3, "wf-1") + "result.json")


def test_step_stops_a_bad_edge_with_exit_4_and_only_the_verdict_travels(
    store, seeded, monkeypatch, tmp_path, capsys
) -> None:
    code, outputs = _run_step(store, monkeypatch, tmp_path, "b", seeded["b"], "contracts-step")
    assert code == validate.CONTRACT_FAILED == 4
    assert (outputs / "passed").read_text() == "false"
    failed = json.loads((outputs / "failed").read_text())
    assert "expect_column_max_to_be_between(column=age)" in failed

    raw = _get(store, layout.UPDATES_BUCKET, layout.verdict_key("b", "contracts-step", 3, "wf-1")).decode()
    verdict = json.loads(raw)
    assert verdict["passed"] is False and [f["name"] for f in verdict["failed"]] == failed
    assert not leaked(raw, SENTINEL_AGE) and not leaked(raw, SENTINEL_CP)
    for key in FORBIDDEN_KEYS:
        assert key not in raw

    status = json.loads(
        _get(store, layout.UPDATES_BUCKET, layout.edge_status_key("b", "contracts-step", 3, "wf-1"))
    )
    assert status == {
        "edge": "b",
        "status": "failed",
        "reason": f"data contract heart failed: {', '.join(failed)}",
        "exitCode": 4,
    }
    # the details stay in the edge's own bucket, where the sentinels are visible
    prefix = layout.validation_prefix("contracts-step", 3, "wf-1")
    full = _get(store, "edge-b", prefix + "result.json").decode()
    assert leaked(full, SENTINEL_AGE)
    assert _exists(store, "edge-b", prefix + "result.html")
    assert "FAILED" in capsys.readouterr().out


def test_step_without_a_dataset_exits_3_and_says_why(store, seeded, monkeypatch, tmp_path) -> None:
    with pytest.raises(DataUnavailableError) as info:
        _run_step(
            store,
            monkeypatch,
            tmp_path,
            "a",
            "s3://edge-a/contracts-test/missing.parquet",
            "contracts-missing",
        )
    assert info.value.exit_code == 3
    key = layout.edge_status_key("a", "contracts-missing", 3, "wf-1")
    status = json.loads(_get(store, layout.UPDATES_BUCKET, key))
    assert status["exitCode"] == 3 and "missing.parquet" in status["reason"]


# ------------------------------------------------------------------------------------- check_task


def test_check_task_finds_the_one_bad_edge(store, seeded) -> None:
    doc = task_doc("contracts-check", ("a", "b"))
    for edge in doc["spec"]["edges"]:
        edge["dataset"]["key"] = DATASET_KEY
    task = parse_task(doc)
    verdicts = check_task(task, clients_for_edge=lambda e: store.client(layout.site_identity(e)))
    assert list(verdicts) == ["a", "b"]
    assert verdicts["a"].passed and not verdicts["b"].passed
    assert "expect_column_max_to_be_between(column=age)" in verdicts["b"].failed_names

    table = render_table(verdicts)
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "PASS" in text and "FAIL" in text and "expect_column_max_to_be_between(column=age)" in text
    assert not leaked(text, SENTINEL_AGE)

    only_b = check_task(task, clients_for_edge=lambda e: store.client(layout.site_identity(e)), edge="b")
    assert list(only_b) == ["b"]
    with pytest.raises(CheckError, match="edge 'zz' is not an edge"):
        check_task(task, clients_for_edge=store.client, edge="zz")


def test_check_task_reports_a_missing_dataset_as_a_failed_edge(store, seeded) -> None:
    doc = task_doc("contracts-missing-ds", ("a",))
    doc["spec"]["edges"][0]["dataset"]["key"] = "contracts-test/nothing-here.parquet"
    verdicts = check_task(parse_task(doc), clients_for_edge=lambda e: store.client(layout.site_identity(e)))
    assert not verdicts["a"].passed
    assert verdicts["a"].failed_names == [
        "dataset_readable(url=s3://edge-a/contracts-test/nothing-here.parquet)"
    ]


def test_the_allowlist_table_is_what_the_tests_allow() -> None:
    from edgefed.steps.contracts.verdict import TRAVELS

    assert set(TRAVELS) == TRAVELLING_KEYS
