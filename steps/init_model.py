"""``init``: commit the task's initial global model as round 0 (deterministic for the model's seed)."""

from __future__ import annotations

from edgefed.steps.context import StepContext
from edgefed.steps.interface import Outputs, Step
from edgefed.steps.registry import RoundCommittedError


def run(argv: list[str]) -> int:
    ctx = StepContext.from_args(StepContext.parser(Step.INIT).parse_args(argv))
    registry = ctx.registry()
    last = registry.last_committed(ctx.task)
    ctx.output(Outputs.LAST_ROUND, str(last or 0))
    if last is not None:
        print(f"task {ctx.task!r} already has an initial model (last committed round: {last}); nothing to do")
        ctx.output(Outputs.MODEL_VERSION, registry.manifest(ctx.task, 0)["model"]["versionId"] or "")
        return 0
    from edgefed.steps.models import initial_weights  # TensorFlow: imported once per (warm) process

    weights = initial_weights(ctx.config["model"])
    try:
        manifest = registry.commit(
            ctx.task,
            0,
            weights,
            {
                "workflow": ctx.workflow,
                "parent": None,
                "contributors": [],
                "missing": [],
                "examples": 0,
                "metrics": {},
                "modelSpec": ctx.config.get("model"),
                "datasetName": ctx.config.get("dataset"),
                "columns": ctx.config.get("columns"),
            },
        )
    except RoundCommittedError as err:  # another init of this task won the race: round 0 is its model
        manifest = err.winner or registry.manifest(ctx.task, 0)
        print(
            f"task {ctx.task!r}: the initial model was committed by {manifest.get('workflow')!r} meanwhile; kept"
        )
        ctx.output(Outputs.MODEL_VERSION, manifest["model"]["versionId"] or "")
        return 0
    ctx.output(Outputs.MODEL_VERSION, manifest["model"]["versionId"] or "")
    print(f"task {ctx.task!r}: initial model committed ({sum(w.size for w in weights)} parameters)")
    return 0


__all__ = ["run"]
