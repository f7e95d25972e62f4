"""``evaluate``: score a committed global model on the held-out test set (central evaluation)."""

from __future__ import annotations

import time

from edgefed.steps import layout
from edgefed.steps.context import StepContext
from edgefed.steps.interface import Outputs, Step
from edgefed.steps.store import read_parquet
from edgefed.steps.train import frame_to_arrays


def run(argv: list[str]) -> int:
    ctx = StepContext.from_args(StepContext.parser(Step.EVALUATE).parse_args(argv))
    from edgefed.steps.models import trainer_for  # TensorFlow: imported once per (warm) process

    started = time.perf_counter()
    registry = ctx.registry()
    model = registry.load(ctx.task, ctx.round)
    dataset = ctx.config["dataset"]
    where = f"s3://{layout.EVAL_BUCKET}/{layout.test_set_key(dataset)}"
    frame = read_parquet(registry.client, layout.EVAL_BUCKET, layout.test_set_key(dataset))
    x, y = frame_to_arrays(
        frame, ctx.config["model"]["inputShape"], where=where, columns=ctx.config.get("columns")
    )
    metrics = trainer_for(ctx.config["model"], ctx.config["training"]).evaluate(model.weights, x, y)
    metrics.update(
        round=ctx.round, workflow=ctx.workflow, testSet=where, seconds=time.perf_counter() - started
    )
    registry.record_evaluation(ctx.task, ctx.round, metrics)
    ctx.output(Outputs.ACCURACY, f"{metrics['accuracy']:.6f}" if "accuracy" in metrics else "")
    ctx.output(Outputs.LOSS, f"{metrics['loss']:.6f}")
    shown = ", ".join(f"{k} {metrics[k]:.4f}" for k in ("accuracy", "mse", "mae", "loss") if k in metrics)
    print(f"round {ctx.round}: {shown} on {len(y)} examples")
    return 0


__all__ = ["run"]
