"""What every step is given: task, round, workflow, the cloud store, the task config, an outputs dir.

The workflow passes these as command-line arguments (:class:`~edgefed.steps.interface.Flag`); a step
writes its output parameters (:class:`~edgefed.steps.interface.Outputs`) as files in ``--outputs``
(the Argo template reads them with ``valueFrom.path``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from minio import Minio

from edgefed.steps import layout
from edgefed.steps.interface import OUTPUTS_DIR, STEP_COMMAND, Flag, StepExit
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
    def parser(cls, step: str, *, at_edge: bool = False, per_round: bool = True) -> argparse.ArgumentParser:
        """The argument parser of ``edgefed-step <step>``: the flags every step takes, and with
        ``at_edge`` those of a step that runs at an edge; the step adds its own. ``per_round=False``:
        a step of the task rather than of one round (``--round`` optional, 0)."""
        parser = argparse.ArgumentParser(prog=f"{STEP_COMMAND} {step}")
        cls.add_arguments(parser, per_round=per_round)
        if at_edge:
            cls.add_edge_arguments(parser)
        return parser

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, per_round: bool = True) -> None:
        parser.add_argument(Flag.TASK, required=True)
        parser.add_argument(Flag.ROUND, type=int, required=per_round, default=0)
        parser.add_argument(Flag.WORKFLOW, default="local")
        parser.add_argument(Flag.STORE, required=True, help="cloud store endpoint (updates, models)")
        parser.add_argument(Flag.CONFIG, required=True, help="task config JSON: model, training, ...")
        parser.add_argument(Flag.OUTPUTS, default=OUTPUTS_DIR, help="directory for output parameters")

    @staticmethod
    def add_edge_arguments(parser: argparse.ArgumentParser) -> None:
        """What a step running at an edge is told of it: its name and its dataset in its own store."""
        parser.add_argument(Flag.EDGE, required=True)
        parser.add_argument(Flag.DATASET, required=True, help="s3://bucket/key in the edge's store")
        parser.add_argument(Flag.DATASET_STORE, required=True, help="the edge's store endpoint")

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

    def report_edge_failure(self, cloud: Minio, edge: str, reason: str, exit_code: int) -> None:
        """Record why ``edge`` sends no update this round, beside where its update would have been
        (the aggregate step names the reason in the manifest). Best effort: the log has it too."""
        status = {"edge": edge, "status": "failed", "reason": reason, "exitCode": int(exit_code)}
        # the reason still reaches the step's log (also when the cloud is what failed)
        with contextlib.suppress(StepError, urllib3.exceptions.HTTPError):
            put_bytes(
                cloud,
                layout.UPDATES_BUCKET,
                layout.edge_status_key(edge, self.task, self.round, self.workflow),
                json.dumps(status).encode(),
                content_type="application/json",
            )

    @contextmanager
    def reporting_failures(self, cloud: Minio, edge: str) -> Iterator[None]:
        """Record why an edge's step failed (:meth:`report_edge_failure`), then re-raise.

        Any exception counts, not only :class:`StepError`: the round's manifest should say
        ``unexpected error: ValueError: ...`` rather than that the edge did not report.
        """
        try:
            yield
        except Exception as err:
            if not getattr(err, "report", True):  # the edge gave its reason in an earlier step
                raise
            if isinstance(err, StepError):
                self.report_edge_failure(cloud, edge, str(err), err.exit_code)
            else:
                reason = f"unexpected error: {type(err).__name__}: {err}"
                self.report_edge_failure(cloud, edge, reason, StepExit.FAILED)
            raise

    def output(self, name: str, value: object) -> None:
        """Write output parameter ``name`` (one of :class:`~edgefed.steps.interface.Outputs`)."""
        self.outputs.mkdir(parents=True, exist_ok=True)
        text = value if isinstance(value, str) else json.dumps(value)
        (self.outputs / name).write_text(text)


__all__ = ["StepContext"]
