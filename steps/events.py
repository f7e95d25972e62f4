"""TensorBoard event files of a task's rounds, written into the models bucket by the steps.

Each round gets small event files of its own (:func:`~edgefed.steps.layout.events_key`): the aggregate's
(the training loss over the contributing edges, each edge's training loss, examples, contributing and
missing edges, ε spent when DP is on) and the evaluation's (central accuracy and loss). TensorBoard reads
every ``*tfevents*`` file of a directory, so ``edgefed run`` mirrors them into the state directory
(``<home>/tensorboard/<task>/``) and ``tensorboard --logdir`` shows the task's curves.

Written with TensorBoard's own record writer and protos (``tensorboard`` ships with TensorFlow and needs
no TensorFlow import for this): the files are what ``tf.summary`` would write.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping

from minio import Minio

from edgefed.steps import layout
from edgefed.steps.store import put_bytes

__all__ = ["event_file", "write_round_events"]


def event_file(step: int, scalars: Mapping[str, float], *, wall_time: float | None = None) -> bytes:
    """An event file (TFRecord of ``Event`` protos): the file version, then ``scalars`` at ``step``."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    now = time.time() if wall_time is None else wall_time
    out = io.BytesIO()
    writer = RecordWriter(out)
    writer.write(event_pb2.Event(wall_time=now, file_version="brain.Event:2").SerializeToString())
    values = [
        summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
        for tag, value in sorted(scalars.items())
        if value is not None
    ]
    summary = summary_pb2.Summary(value=values)
    writer.write(event_pb2.Event(wall_time=now, step=step, summary=summary).SerializeToString())
    writer.flush()
    return out.getvalue()


def write_round_events(
    client: Minio, bucket: str, task: str, round_: int, writer: str, scalars: Mapping[str, float]
) -> str:
    """Write round ``round_``'s ``scalars`` as ``writer``'s event file; returns its key."""
    key = layout.events_key(task, round_, writer)
    put_bytes(client, bucket, key, event_file(round_, scalars))
    return key
