"""A dataset object as Parquet or as Feather V2 (Arrow IPC), told apart by its bytes; and the arrays a step
trains on, straight from the Arrow table or through pandas, the same either way."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from minio import Minio

from edgefed.steps import datasets
from edgefed.steps.store import (
    DataUnavailableError,
    StepError,
    dataset_format,
    frame_bytes,
    put_bytes,
    read_frame_object,
    read_table_object,
)
from edgefed.steps.train import frame_to_arrays

BUCKET = "edge-a"


@pytest.fixture(scope="module")
def digits() -> pd.DataFrame:
    return next(iter(datasets.partition("digits", edges=["a"], limit=120).edges.values()))


@pytest.mark.parametrize("fmt", ["parquet", "feather"])
def test_either_format_reads_back_as_written(
    store_client: Callable[[str], Minio], digits: pd.DataFrame, fmt: str
) -> None:
    admin = store_client("admin")
    key = f"formats-test/{fmt}/train.{fmt}"
    data = frame_bytes(digits, fmt)
    assert dataset_format(data) == fmt
    put_bytes(admin, BUCKET, key, data)
    table, read = read_table_object(admin, BUCKET, key)
    frame, again = read_frame_object(admin, BUCKET, key)
    assert read.etag and read.etag == again.etag and len(table) == len(digits)
    pd.testing.assert_frame_equal(frame, digits.reset_index(drop=True))  # dtypes (float32, int64) kept


def test_feather_compresses_a_large_frame_only() -> None:
    """LZ4 where it pays (a large frame), none for a small one (its reader would undo it column by column)."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    large = pd.DataFrame(np.zeros((2000, 600), np.float32), columns=[f"c{i}" for i in range(600)])
    small = large.iloc[:50]
    packed, plain = frame_bytes(large, "feather"), frame_bytes(small, "feather")
    assert len(packed) < large.memory_usage().sum() / 10  # zeros: LZ4 makes 4.8 MB a few hundred kB
    assert len(plain) > small.memory_usage(index=False).sum()  # every value as it is, plus the schema
    for frame, data in ((large, packed), (small, plain)):
        table = ipc.open_file(pa.BufferReader(data)).read_all()
        pd.testing.assert_frame_equal(table.to_pandas(), frame.reset_index(drop=True))


def test_an_object_in_neither_format_is_named(store_client: Callable[[str], Minio]) -> None:
    admin = store_client("admin")
    put_bytes(admin, BUCKET, "formats-test/notes.parquet", b"id,label\n1,2\n")
    with pytest.raises(
        DataUnavailableError, match=r"formats-test/notes\.parquet is neither Parquet nor Arrow"
    ):
        read_table_object(admin, BUCKET, "formats-test/notes.parquet")
    put_bytes(
        admin, BUCKET, "formats-test/cut.feather", frame_bytes(pd.DataFrame({"a": [1.0]}), "feather")[:40]
    )
    with pytest.raises(DataUnavailableError, match=r"cut\.feather is not a readable feather file"):
        read_table_object(admin, BUCKET, "formats-test/cut.feather")
    with pytest.raises(ValueError, match="expected one of parquet, feather, got 'csv'"):
        frame_bytes(pd.DataFrame({"a": [1.0]}), "csv")


def _table(frame: pd.DataFrame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def test_arrays_from_a_table_equal_the_dataframe_s(digits: pd.DataFrame) -> None:
    x, y = frame_to_arrays(digits, [64], where="w", classes=10)
    tx, ty = frame_to_arrays(_table(digits), [64], where="w", classes=10)
    assert tx.dtype == np.float32 and ty.dtype == np.int64
    np.testing.assert_array_equal(tx, x)
    np.testing.assert_array_equal(ty, y)
    # the spec's columns, in the spec's order (not the file's), and a regression label
    cols = {"features": ["px_007", "px_000", "px_033"], "label": "label"}
    sx, sy = frame_to_arrays(_table(digits), [3], where="w", columns=cols, regression=True)
    np.testing.assert_array_equal(sx, digits[cols["features"]].to_numpy(np.float32))
    assert sy.dtype == np.float32 and (sy == digits["label"].to_numpy()).all()


def test_a_table_with_nulls_or_text_takes_the_dataframe_path_and_its_errors() -> None:
    frame = pd.DataFrame({"f1": [1.0, 2.0, 3.0], "f2": [1, 2, 3], "label": [0, 1, 0]})
    x, _ = frame_to_arrays(_table(frame), [2], where="w")
    np.testing.assert_array_equal(x, [[1, 1], [2, 2], [3, 3]])
    with_null = frame.assign(f2=pd.array([1, None, 3], dtype="Int64"))
    nx, _ = frame_to_arrays(_table(with_null), [2], where="w")
    assert np.isnan(nx[1, 1]) and nx[2, 1] == 3  # as the DataFrame path has it: a missing value is NaN
    text = frame.assign(f1=["a", "b", "c"])
    with pytest.raises(StepError, match="w: the feature columns and the label 'label' must be numbers"):
        frame_to_arrays(_table(text), [2], where="w")
    with pytest.raises(StepError, match=r"w: label 'label' has values outside 0\.\.0"):
        frame_to_arrays(_table(frame), [2], where="w", classes=1)
    with pytest.raises(StepError, match="w: 2 feature columns, the model's inputShape \\[3\\] needs 3"):
        frame_to_arrays(_table(frame), [3], where="w")
