"""``evaluate``: score a committed global model on the held-out test set (central evaluation)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edgefed.steps import layout
from edgefed.steps.context import StepContext
from edgefed.steps.events import write_round_events
from edgefed.steps.interface import Outputs, Step
from edgefed.steps.registry import ModelRegistry
from edgefed.steps.store import read_table_object
from edgefed.steps.train import frame_to_arrays


def evaluate_round(ctx: StepContext, registry: ModelRegistry, round_: int) -> dict[str, Any]:
    """Score round ``round_``'s committed model on the task's held-out test set and record it."""
    from edgefed.steps.models import trainer_for  # TensorFlow: imported once per (warm) process

    started = time.perf_counter()

    def test_set() -> Any:
        key = layout.test_set_key(ctx.config["dataset"])
        return read_table_object(registry.client, layout.EVAL_BUCKET, key)[0]

    # the test set and the model are read at once, the two records written at once (a thread waits on its
    # socket): this step is on the round's critical path, alone
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="edgefed-evaluate") as pool:
        test = pool.submit(test_set)
        model = registry.load(ctx.task, round_)  # first: what it raises is what the step reports
        where = f"s3://{layout.EVAL_BUCKET}/{layout.test_set_key(ctx.config['dataset'])}"
        x, y = frame_to_arrays(
            test.result(), ctx.config["model"]["inputShape"], where=where, columns=ctx.config.get("columns")
        )
        metrics = trainer_for(ctx.config["model"], ctx.config["training"]).evaluate(model.weights, x, y)
        metrics.update(
            round=round_,
            workflow=ctx.workflow,
            testSet=where,
            examples=len(y),
            seconds=time.perf_counter() - started,
        )
        recorded = pool.submit(registry.record_evaluation, ctx.task, round_, metrics)
        scalars = {f"eval/{k}": metrics[k] for k in ("accuracy", "loss", "mse", "mae") if k in metrics}
        write_round_events(registry.client, registry.bucket, ctx.task, round_, "evaluate", scalars)
        recorded.result()
    return metrics


def metrics_text(metrics: dict[str, Any]) -> str:
    """``accuracy 0.8123, loss 0.4012 on 120 examples``: what an evaluation shows people."""
    shown = ", ".join(f"{k} {metrics[k]:.4f}" for k in ("accuracy", "mse", "mae", "loss") if k in metrics)
    return f"{shown} on {metrics.get('examples', '?')} examples"


def run(argv: list[str]) -> int:
    ctx = StepContext.from_args(StepContext.parser(Step.EVALUATE).parse_args(argv))
    metrics = evaluate_round(ctx, ctx.registry(), ctx.round)
    ctx.output(Outputs.ACCURACY, f"{metrics['accuracy']:.6f}" if "accuracy" in metrics else "")
    ctx.output(Outputs.LOSS, f"{metrics['loss']:.6f}")
    print(f"round {ctx.round}: {metrics_text(metrics)}")
    return 0


__all__ = ["evaluate_round", "metrics_text", "run"]
