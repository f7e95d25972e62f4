"""Data contracts gate every edge inside real rounds: generated workflows on the embedded engine, the real
store, real Great Expectations and TensorFlow. A bad edge sits out and says why; no row leaves an edge."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pytest

from edgefed.steps import layout
from edgefed.steps.registry import ModelRegistry
from edgefed.steps.store import parquet_bytes
from edgefed.workflows.driver import TaskDriver
from edgefed.workflows.embedded.runtime import EmbeddedRuntime
from edgefed.workflows.errors import RoundFailedError
from edgefed.workflows.spec import parse_task
from tests.helpers import seeded_runtime, task_doc

HOSPITALS = ("cleveland", "hungary", "switzerland")
#: Planted in every edge's data (in range, so the contract passes): must never appear in a cloud bucket.
SENTINELS = {"cleveland": 0.4812345671, "hungary": 0.4823456781, "switzerland": 0.4834567891}
#: Planted in a corrupted row (out of range): the verdict must not carry it either.
BAD_VALUE = 9.87654321


@pytest.fixture(scope="module")
def runtime(store, tmp_path_factory) -> Iterator[EmbeddedRuntime]:
    with seeded_runtime(store, tmp_path_factory.mktemp("home"), "heart", HOSPITALS) as rt:
        parts = rt.seeded
        admin = store.client(layout.ADMIN_IDENTITY)
        for edge in HOSPITALS:  # a recognisable value in every edge's rows
            frame = parts.edges[edge].copy()
            frame.loc[0, "age"] = np.float32(SENTINELS[edge])
            blob = parquet_bytes(frame)
            admin.put_object(layout.edge_bucket(edge), "heart/train.parquet", io.BytesIO(blob), len(blob))
        rt.frames = {e: pd.read_parquet(io.BytesIO(parquet_bytes(parts.edges[e]))) for e in HOSPITALS}
        yield rt


def run(runtime: EmbeddedRuntime, doc: dict):
    task = parse_task(doc)
    parameters = runtime.prepare(task)
    registry = ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY))
    return TaskDriver(task, executor=runtime, registry=registry, parameters=parameters).run(), registry


def put(runtime: EmbeddedRuntime, edge: str, key: str, frame: pd.DataFrame) -> None:
    blob = parquet_bytes(frame)
    runtime.store.client(layout.ADMIN_IDENTITY).put_object(
        layout.edge_bucket(edge), key, io.BytesIO(blob), len(blob)
    )


def renamed_column(f: pd.DataFrame) -> pd.DataFrame:
    return f.rename(columns={"chol": "cholesterol"})


def out_of_range(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f.loc[0, "age"] = np.float32(BAD_VALUE)
    return f


def label_outside_set(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f.loc[0, "label"] = 7
    return f


def too_few_rows(f: pd.DataFrame) -> pd.DataFrame:
    return f.head(5).copy()


def nans(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f.loc[0:9, "thalch"] = np.nan
    return f


CASES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "renamed-column": (renamed_column, "expect_table_columns_to_match_ordered_list"),
    "out-of-range": (out_of_range, "expect_column_max_to_be_between(column=age)"),
    "label-outside-set": (label_outside_set, "expect_column_distinct_values_to_be_in_set(column=label)"),
    "too-few-rows": (too_few_rows, "expect_table_row_count_to_be_between"),
    "nans": (nans, "thalch"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_edge_sits_out_says_why_and_the_others_train(runtime, case):
    corrupt, expectation = CASES[case]
    key = f"heart/bad-{case}.parquet"
    put(runtime, "cleveland", key, corrupt(runtime.frames["cleveland"]))
    doc = task_doc(f"bad-{case}", HOSPITALS, rounds=1, quorum=2)
    doc["spec"]["edges"][0]["dataset"]["key"] = key
    result, registry = run(runtime, doc)
    manifest = registry.manifest(f"bad-{case}", 1)
    assert [c["edge"] for c in manifest["contributors"]] == ["hungary", "switzerland"]
    (missing,) = manifest["missing"]
    assert missing["edge"] == "cleveland"
    assert missing["reason"].startswith("data contract heart failed: ")
    assert expectation in missing["reason"]
    assert result.rounds[0].missing == ["cleveland"]
    # the verdict that travelled names the expectation and carries no data value
    cloud = runtime.store.client(layout.CLOUD_IDENTITY)
    workflow = manifest["workflow"]
    verdict = cloud.get_object(
        layout.UPDATES_BUCKET,
        f"{layout.update_round_prefix('cleveland', f'bad-{case}', 1)}{workflow}/verdict.json",
    ).read()
    assert b'"passed": false' in verdict or b'"passed":false' in verdict
    assert str(BAD_VALUE).encode() not in verdict and b"9.876" not in verdict
    # the full result stays in the edge's own bucket
    own = runtime.store.client(layout.site_identity("cleveland"))
    prefix = f"edgefed/validation/bad-{case}/round-00001/{workflow}/"
    names = {o.object_name for o in own.list_objects("edge-cleveland", prefix=prefix)}
    assert names == {prefix + "result.json", prefix + "result.html"}


def test_all_edges_bad_fails_the_round_and_commits_nothing(runtime):
    doc = task_doc("all-bad", HOSPITALS, rounds=1, quorum=1)
    for i, edge in enumerate(HOSPITALS):
        put(runtime, edge, "heart/all-bad.parquet", nans(runtime.frames[edge]))
        doc["spec"]["edges"][i]["dataset"]["key"] = "heart/all-bad.parquet"
    with pytest.raises(RoundFailedError) as info:
        run(runtime, doc)
    message = str(info.value)
    assert "0 usable update(s), quorum is 1" in message
    assert all(f"{edge}: data contract heart failed" in message for edge in HOSPITALS)
    assert ModelRegistry(runtime.store.client(layout.CLOUD_IDENTITY)).committed_rounds("all-bad") == [0]


def _encodings(value: float) -> list[bytes]:
    return [
        struct.pack("<f", np.float32(value)),
        struct.pack("<d", float(np.float32(value))),
        struct.pack("<d", value),
        repr(float(np.float32(value))).encode(),
        f"{value:.7f}".encode(),
    ]


def test_the_cloud_buckets_hold_no_dataset_rows(runtime):
    """After real rounds (and the failures above), no edge row is anywhere in updates or models."""
    run(runtime, task_doc("no-rows", HOSPITALS, rounds=2, quorum=3))
    admin = runtime.store.client(layout.ADMIN_IDENTITY)
    needles = {edge: _encodings(v) for edge, v in SENTINELS.items()}
    needles["bad-value"] = _encodings(BAD_VALUE)
    # a whole row of an edge, as it would be serialised: its float32 feature bytes
    rows = {
        edge: frame.drop(columns=["label"]).iloc[1].to_numpy(np.float32).tobytes()
        for edge, frame in runtime.frames.items()
    }
    scanned = 0
    for bucket in (layout.UPDATES_BUCKET, layout.MODELS_BUCKET):
        for obj in admin.list_objects(bucket, recursive=True, include_version=True):
            if obj.is_delete_marker:  # another test's deletion (the session store is shared): no bytes
                continue
            blob = admin.get_object(bucket, obj.object_name, version_id=obj.version_id).read()
            scanned += 1
            for edge, encodings in needles.items():
                assert not [e for e in encodings if e in blob], (
                    f"{edge} value in s3://{bucket}/{obj.object_name}"
                )
            for edge, row in rows.items():
                assert row not in blob, f"a row of {edge} in s3://{bucket}/{obj.object_name}"
    assert scanned > 20  # updates, verdicts, statuses, models, manifests, evaluations were all looked at
    # and the scan itself can find a row: the edges' own buckets do hold them
    own = admin.get_object("edge-cleveland", "heart/train.parquet").read()
    frame = pd.read_parquet(io.BytesIO(own))
    assert np.float32(SENTINELS["cleveland"]) in frame["age"].to_numpy(np.float32)


@pytest.mark.slow
def test_cli_data_check_exits_1_and_names_the_bad_edge(tmp_path):
    from tests.helpers import edgefed, write_task

    home = tmp_path / "home"
    doc = task_doc("check", ("cleveland", "hungary"), rounds=1)
    path = write_task(tmp_path / "task.yaml", doc)
    try:
        assert edgefed("data", "seed", "--task", str(path), home=home, timeout=300).returncode == 0
        good = edgefed("data", "check", str(path), home=home, timeout=300)
        assert good.returncode == 0, good.stdout + good.stderr
        assert good.stdout.count("PASS") == 2
        # hungary's export loses a column
        from edgefed.workflows.embedded.store import EmbeddedStore

        admin = EmbeddedStore(home / "store").client(layout.ADMIN_IDENTITY)
        frame = pd.read_parquet(io.BytesIO(admin.get_object("edge-hungary", "heart/train.parquet").read()))
        blob = parquet_bytes(frame.drop(columns=["oldpeak"]))
        admin.put_object("edge-hungary", "heart/train.parquet", io.BytesIO(blob), len(blob))
        bad = edgefed("data", "check", str(path), "-o", "json", home=home, timeout=300)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        import json

        verdicts = json.loads(bad.stdout)
        assert verdicts["cleveland"]["passed"] is True and verdicts["hungary"]["passed"] is False
        assert any(
            "expect_table_columns_to_match_ordered_list" in f["name"] for f in verdicts["hungary"]["failed"]
        )
        only = edgefed("data", "check", str(path), "--edge", "cleveland", home=home, timeout=300)
        assert only.returncode == 0 and "hungary" not in only.stdout
    finally:
        edgefed("store", "stop", home=home, timeout=120)
