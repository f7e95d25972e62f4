"""A user's own data: put a CSV or Parquet file into an edge's store, list each edge's datasets, draft a contract.

* :func:`read_table`: a CSV or Parquet file as a DataFrame (the error names the file and what is wrong);
* :func:`put_dataset`: written as Parquet to ``s3://edge-<edge>/<name>/train.parquet`` with the edge's own
  site identity (the key every task's ``edges[].dataset`` names by default);
* :func:`list_datasets`: per edge, every dataset with rows, columns, size, last change, and whether the
  current bytes passed a contract (the validate step's verdict cache, keyed by the object's ETag);
* :func:`draft_contract`: a contract document proposed from a sample (types, ranges, null rates, label set).

Why the draft is computed here with pandas and not with Great Expectations' profiling: GE 1.x removed its
profilers (``UserConfigurableProfiler`` and the data assistants were dropped in 1.0), and the contract format
is edgefed's own (``data_contracts/README.md``), which GE would not write anyway. The draft is then loaded by
the contract loader and checked against the sample with GE, so what it proposes is a valid contract the sample
passes.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minio import Minio
from minio.error import S3Error

from edgefed.steps import layout
from edgefed.steps.store import parquet_bytes, put_bytes
from edgefed.workflows.errors import EdgefedError, ExitCode

__all__ = [
    "MAX_FILE_BYTES",
    "DataFileError",
    "DatasetRow",
    "draft_contract",
    "list_datasets",
    "put_dataset",
    "read_table",
]

#: The largest file ``data put`` reads (it is read whole into memory).
MAX_FILE_BYTES = 2 * 1024**3
_SKIPPED_PREFIXES = ("edgefed/", "models/", "hard-examples/")


class DataFileError(EdgefedError):
    """A data file that cannot be read as a table: names the file and what is wrong."""

    exit_code = ExitCode.INVALID


def read_table(path: Path):  # -> pandas.DataFrame
    """``path`` (``.csv`` or ``.parquet``) as a DataFrame with at least one row and one column."""
    import pandas as pd

    if not path.is_file():
        raise DataFileError(f"{path}: not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataFileError(f"{path}: {size} bytes, more than the {MAX_FILE_BYTES} a put reads at once")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise DataFileError(f"{path}: expected a .csv or .parquet file, found {suffix or 'no suffix'!r}")
    except DataFileError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataFileError(f"{path}: not a readable {suffix[1:]} table: {err}") from None
    except Exception as err:  # pyarrow raises several unrelated types for a corrupt Parquet file
        raise DataFileError(
            f"{path}: not a readable {suffix[1:]} table: {type(err).__name__}: {err}"
        ) from None
    if frame.empty or len(frame.columns) == 0:
        raise DataFileError(f"{path}: the table has no rows or no columns")
    return frame


def put_dataset(site: Minio, edge: str, name: str, path: Path) -> dict[str, Any]:
    """Write ``path`` as the edge's dataset ``name`` (a new object version if it exists); what was written."""
    frame = read_table(path)
    key = layout.train_set_key(name)
    bucket = layout.edge_bucket(edge)
    data = parquet_bytes(frame)
    version = put_bytes(site, bucket, key, data)
    return {
        "edge": edge,
        "dataset": name,
        "url": f"s3://{bucket}/{key}",
        "rows": len(frame),
        "columns": list(map(str, frame.columns)),
        "bytes": len(data),
        "versionId": version,
    }


@dataclass(frozen=True)
class DatasetRow:
    edge: str
    dataset: str
    url: str
    rows: int | None
    columns: int | None
    size: int
    last_change: str
    verdict: str  # "passed <contract>" for the current bytes, else "not checked since it changed"

    def to_json(self) -> dict[str, Any]:
        return {
            "edge": self.edge,
            "dataset": self.dataset,
            "url": self.url,
            "rows": self.rows,
            "columns": self.columns,
            "bytes": self.size,
            "lastChange": self.last_change,
            "verdict": self.verdict,
        }


def _passed(site: Minio, bucket: str, etag: str) -> str | None:
    """The contract whose cached passing verdict matches these bytes (the validate step's cache)."""
    suffix = f"-{etag.strip(chr(34))}.json"
    for obj in site.list_objects(bucket, prefix="edgefed/validation/cache/", recursive=True):
        if obj.object_name.endswith(suffix):
            response = site.get_object(bucket, obj.object_name)
            try:
                verdict = json.loads(response.read())
            finally:
                response.close()
                response.release_conn()
            return str(
                (verdict.get("summary") or {}).get("contract") or verdict.get("contract") or "a contract"
            )
    return None


def list_datasets(site: Minio, edge: str) -> list[DatasetRow]:
    """Every Parquet dataset in ``edge``'s own bucket (not edgefed's own objects)."""
    import pyarrow.parquet as pq

    bucket = layout.edge_bucket(edge)
    rows = []
    try:
        objects = [o for o in site.list_objects(bucket, recursive=True) if o.object_name.endswith(".parquet")]
    except S3Error as err:
        raise EdgefedError(f"cannot list s3://{bucket}: {err.code}") from None
    for obj in objects:
        if obj.object_name.startswith(_SKIPPED_PREFIXES):
            continue
        response = site.get_object(bucket, obj.object_name)
        try:
            meta = pq.ParquetFile(io.BytesIO(response.read())).metadata
            n_rows, n_columns = meta.num_rows, meta.num_columns
        except Exception:  # a corrupt object is listed, unread
            n_rows = n_columns = None
        finally:
            response.close()
            response.release_conn()
        passed = _passed(site, bucket, obj.etag or "")
        rows.append(
            DatasetRow(
                edge,
                obj.object_name.rpartition("/")[0] or obj.object_name,
                f"s3://{bucket}/{obj.object_name}",
                n_rows,
                n_columns,
                int(obj.size or 0),
                obj.last_modified.isoformat() if obj.last_modified else "",
                f"passed {passed}" if passed else "not checked since it changed",
            )
        )
    return rows


def _dtype(series) -> str:
    kind = series.dtype.kind
    if kind == "b":
        return "bool"
    if kind in "iu":
        return "int64"
    if kind == "f":
        return "float32" if str(series.dtype) == "float32" else "float64"
    return "object"


def _bound(value: float, *, up: bool) -> float | int:
    """A round bound a little outside the observed value (10 % of its magnitude; 0 stays 0, a natural bound)."""
    if value == 0:
        return 0
    bound = value + abs(value) * 0.1 if up else value - abs(value) * 0.1
    digits = max(0, 3 - math.floor(math.log10(abs(bound))))
    rounded = round(bound, digits)
    return int(rounded) if float(rounded).is_integer() and abs(rounded) >= 1 else rounded


def draft_contract(frame, *, name: str, label: str | None = None, max_values: int = 10) -> dict[str, Any]:
    """A contract document for tables like ``frame``: each column's type, range (observed, widened a little),
    allowed values when it has at most ``max_values`` integer values, null rate; the label's set."""
    import numpy as np

    if label is not None and label not in frame.columns:
        raise DataFileError(
            f"--label {label!r} is not a column (columns: {', '.join(map(str, frame.columns[:10]))})"
        )
    label = label if label is not None else ("label" if "label" in frame.columns else None)
    columns: list[dict[str, Any]] = []
    for column in frame.columns:
        series = frame[column]
        entry: dict[str, Any] = {"name": str(column), "type": _dtype(series)}
        nulls = float(series.isna().mean())
        entry["max_null_rate"] = 0.0 if nulls == 0 else min(1.0, round(nulls + 0.05, 2))
        values = series.dropna()
        if entry["type"] in ("int64", "float32", "float64", "bool") and len(values):
            distinct = np.unique(values.to_numpy())
            integral = entry["type"] != "bool" and np.all(np.equal(np.mod(distinct, 1), 0))
            if integral and len(distinct) <= max_values and str(column) != label:
                entry["values"] = [int(v) for v in distinct]
            elif entry["type"] != "bool" and str(column) != label:
                entry["min"] = _bound(float(distinct.min()), up=False)
                entry["max"] = _bound(float(distinct.max()), up=True)
        columns.append(entry)
    document: dict[str, Any] = {
        "contract": name,
        "dataset": name,
        "version": 1,
        "description": f"drafted by `edgefed contract draft` from a sample of {len(frame)} rows: edit the bounds "
        "to what is plausible, not merely what was seen",
        "rows": {"min": 1},
        "column_order": "exact",
        "columns": columns,
    }
    if label is not None:
        classes = sorted(frame[label].dropna().unique().tolist())
        spec: dict[str, Any] = {"column": label}
        if len(classes) <= max_values * 10 and all(float(c).is_integer() for c in classes):
            spec["values"] = [int(c) for c in classes]
            spec["min_distinct"] = min(2, len(classes))
        document["label"] = spec
    return document
