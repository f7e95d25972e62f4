"""What every step is given: task, round, workflow, the cloud store, the task config, an outputs dir.

The workflow passes these as command-line arguments; a step writes its output parameters as files
in ``--outputs`` (the Argo template reads them with ``valueFrom.path``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minio import Minio

from edgefed.steps import layout
from edgefed.steps.registry import ModelRegistry
from edgefed.steps.store import Endpoint, StepError, client_from_env, put_bytes


@dataclass
class StepContext:
    task: str
    round: int
    workflow: str
    store: Endpoint
    config: dict[str, Any]
    outputs: Path

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--task", required=True)
        parser.add_argument("--round", type=int, required=True)
        parser.add_argument("--workflow", default="local")
        parser.add_argument("--store", required=True, help="cloud store endpoint (updates, models)")
        parser.add_argument("--config", required=True, help="task config JSON: model, training, ...")
        parser.add_argument("--outputs", default="/tmp/outputs", help="directory for output parameters")

    @staticmethod
    def add_edge_arguments(parser: argparse.ArgumentParser) -> None:
        """What a step running at an edge is told of it: its name and its dataset in its own store."""
        parser.add_argument("--edge", required=True)
        parser.add_argument("--dataset", required=True, help="s3://bucket/key in the edge's store")
        parser.add_argument("--dataset-store", required=True, help="the edge's store endpoint")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> StepContext:
        return cls(
            task=args.task,
            round=args.round,
            workflow=args.workflow,
            store=Endpoint.parse(args.store),
            config=json.loads(args.config),
            outputs=Path(args.outputs),
        )

    def cloud(self) -> Minio:
        return client_from_env(self.store)

    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.cloud())

    @contextmanager
    def reporting_failures(self, cloud: Minio, edge: str) -> Iterator[None]:
        """Record why an edge's step failed beside where its update would have been, then re-raise.

        Any exception counts, not only :class:`StepError`: the round's manifest should say
        ``unexpected error: ValueError: ...`` rather than that the edge did not report.
        """
        try:
            yield
        except Exception as err:
            is_step_error = isinstance(err, StepError)
            reason = str(err) if is_step_error else f"unexpected error: {type(err).__name__}: {err}"
            status = {
                "edge": edge,
                "status": "failed",
                "reason": reason,
                "exitCode": err.exit_code if is_step_error else 1,
            }
            try:
                key = layout.edge_status_key(edge, self.task, self.round, self.workflow)
                put_bytes(
                    cloud,
                    layout.UPDATES_BUCKET,
                    key,
                    json.dumps(status).encode(),
                    content_type="application/json",
                )
            except StepError:
                pass  # the reason still reaches the step's log
            raise

    def output(self, name: str, value: object) -> None:
        """Write output parameter ``name``."""
        self.outputs.mkdir(parents=True, exist_ok=True)
        text = value if isinstance(value, str) else json.dumps(value)
        (self.outputs / name).write_text(text)


__all__ = ["StepContext"]
