"""Hard examples at an edge: kept by the inference service, labelled later, folded into the edge's dataset.

The edge's inference service (:mod:`edgefed.steps.serving.app`) keeps each batch of hard examples in the edge's
**own** store, ``hard-examples/<task>/<day>/<batch>.parquet`` (features, the label when the request gave one,
both models' answers), and answers each with an example id ``<day>/<batch>:<row>``. A label given later
(``POST /v1/label``) is written beside them under ``hard-examples/<task>/labels/``.

When an IncrementalLearningJob sets ``hardExamples.fold``, its probe step (at the edge, with the edge's site
identity) calls :func:`fold`: every labelled hard example not folded before is appended to the edge's dataset,
as a new version of the dataset object (the bucket is versioned: the previous bytes stay, and each round's
manifest names the version it read). The probe then counts them as new rows, the triggers see them, and the
retraining learns from them after the validate step has checked them against the dataset's contract, like any
row. Unlabelled examples wait for their label. ``folded.json`` records what was folded, so nothing is learned
twice; it is written in two phases (pending, then done once the dataset's new version exists) so that an
interrupted fold is completed, not repeated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from minio import Minio

from edgefed.steps import layout
from edgefed.steps.store import (
    DataUnavailableError,
    StepError,
    exists,
    get_bytes,
    parquet_bytes,
    put_bytes,
    put_json,
    read_frame,
    utc_now,
)

__all__ = ["Folded", "batch_key", "example_id", "fold", "parse_example_id", "pending_labels"]

_SUFFIX = ".parquet"


def example_id(batch: str, row: int) -> str:
    """The id an answer gives a kept hard example: ``<day>/<batch>:<row>``."""
    return f"{batch}:{row}"


def batch_key(task: str, batch: str) -> str:
    day, _, name = batch.partition("/")
    return layout.hard_examples_key(task, day, name)


def parse_example_id(text: str) -> tuple[str, int]:
    """``<day>/<batch>:<row>`` as (batch, row); ``ValueError`` saying what was expected."""
    batch, sep, row = text.rpartition(":")
    day, slash, name = batch.partition("/")
    if not (sep and slash and day.isdigit() and len(day) == 8 and name.isalnum() and row.isdigit()):
        raise ValueError(f"{text!r} is not an example id (expected <yyyymmdd>/<batch>:<row>, as answered)")
    return batch, int(row)


def _batches(site: Minio, bucket: str, task: str) -> list[str]:
    prefix = layout.hard_examples_prefix(task)
    names = []
    for obj in site.list_objects(bucket, prefix=prefix, recursive=True):
        rest = obj.object_name[len(prefix) :]
        if rest.endswith(_SUFFIX) and not rest.startswith("labels/"):
            names.append(rest.removesuffix(_SUFFIX))
    return sorted(names)


def pending_labels(site: Minio, bucket: str, task: str) -> dict[str, dict[int, int]]:
    """Labels given later, by batch and row (the newest label of a row wins)."""
    records = []
    prefix = f"{layout.hard_examples_prefix(task)}labels/"
    for obj in site.list_objects(bucket, prefix=prefix, recursive=True):
        for entry in json.loads(get_bytes(site, bucket, obj.object_name))["labels"]:
            records.append((entry["at"], entry["example"], int(entry["label"])))
    labels: dict[str, dict[int, int]] = {}
    for _, example, label in sorted(records):
        batch, row = parse_example_id(example)
        labels.setdefault(batch, {})[row] = label
    return labels


def _ledger(site: Minio, bucket: str, task: str) -> dict[str, Any]:
    key = layout.hard_examples_ledger_key(task)
    if not exists(site, bucket, key):
        return {"folded": {}, "pending": None}
    return json.loads(get_bytes(site, bucket, key))


@dataclass(frozen=True)
class Folded:
    """What one fold did: rows appended (by batch), examples still waiting for a label."""

    rows: int
    batches: dict[str, list[int]]
    unlabelled: int


def fold(
    site: Minio,
    bucket: str,
    task: str,
    dataset_key: str,
    frame: Any,
    etag: str | None,
    *,
    label_column: str,
    feature_columns: list[str],
) -> tuple[Any, Folded]:
    """Append the labelled hard examples not yet folded to ``frame`` (the dataset read with ``etag``) and write
    it back as the dataset's new version; returns the new frame and what was folded."""
    import pandas as pd

    ledger = _ledger(site, bucket, task)
    key = layout.hard_examples_ledger_key(task)
    done: dict[str, list[int]] = {b: list(rows) for b, rows in ledger["folded"].items()}
    pending = ledger.get("pending")
    if pending is not None:
        # An earlier fold was interrupted. Its dataset write happened if the dataset is no longer the one it
        # read: then its rows are in, only the record is missing; else it is redone below.
        if pending["baseEtag"] != etag:
            for b, rows in pending["batches"].items():
                done[b] = sorted(set(done.get(b, [])) | set(rows))
        put_json(site, bucket, key, {"folded": done, "pending": None, "at": utc_now()})

    later = pending_labels(site, bucket, task)
    parts, taken, unlabelled = [], {}, 0
    for batch in _batches(site, bucket, task):
        kept = read_frame(site, bucket, batch_key(task, batch))
        missing = [c for c in feature_columns if c not in kept.columns]
        if missing:
            raise StepError(
                f"s3://{bucket}/{batch_key(task, batch)}: no feature column {missing[0]!r}: it was kept by a "
                "model with other columns than the dataset's"
            )
        labels = kept["label"].astype("Int64").tolist()
        for row, label in later.get(batch, {}).items():
            if 0 <= row < len(labels):
                labels[row] = label
        already = set(done.get(batch, []))
        rows = [i for i, v in enumerate(labels) if v is not pd.NA and i not in already]
        unlabelled += sum(1 for i, v in enumerate(labels) if v is pd.NA and i not in already)
        if not rows:
            continue
        part = pd.DataFrame({c: kept[c].iloc[rows].to_numpy() for c in feature_columns})
        part[label_column] = [int(labels[i]) for i in rows]
        parts.append(part)
        taken[batch] = rows
    if not parts:
        return frame, Folded(0, {}, unlabelled)

    added = pd.concat(parts, ignore_index=True)
    for column in frame.columns:  # the dataset's own types where the values allow them
        if column not in added.columns:
            added[column] = pd.NA
        else:
            try:
                cast = added[column].astype(frame[column].dtype)
                if (cast.astype("float64") == added[column].astype("float64")).all():
                    added[column] = cast
            except (TypeError, ValueError):
                pass
    grown = pd.concat([frame, added[list(frame.columns)]], ignore_index=True)
    record = {"folded": done, "pending": {"baseEtag": etag, "batches": taken}, "at": utc_now()}
    put_json(site, bucket, key, record)
    try:
        put_bytes(site, bucket, dataset_key, parquet_bytes(grown))
    except StepError as err:
        raise DataUnavailableError(f"folding hard examples into s3://{bucket}/{dataset_key}: {err}") from None
    for b, rows in taken.items():
        done[b] = sorted(set(done.get(b, [])) | set(rows))
    put_json(site, bucket, key, {"folded": done, "pending": None, "at": utc_now()})
    return grown, Folded(len(added), taken, unlabelled)
