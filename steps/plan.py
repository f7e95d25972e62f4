"""``plan``: between two rounds of the task Workflow, decide from the model registry alone what comes next.

It reads the last committed round and the stop conditions' state (:mod:`edgefed.steps.planning`), and
writes what the task Workflow's next steps need:

* ``go`` ("true"/"false"): start round ``round`` now. "false" when a stop condition holds, or when this
  chain of rounds has spent its ``--budget`` (the task Workflow then starts a new chain: see
  ``workflows/build/task.py`` for why rounds come in chains);
* ``round``, ``evaluate``, ``edges`` (the round's sampled edge items), ``name`` (its Workflow's name:
  :func:`~edgefed.steps.interface.round_workflow_name` of task, round and attempt);
* the task's progress (``last-round``, ``model-version``, ``accuracy``, ``rounds-run``,
  ``stop-reason``) and the Argo UI ``title``/``description`` that show it.

Nothing here comes from Argo: a resubmitted task continues after its last committed round whatever
happened to its earlier Workflows. Each Workflow named for a round is recorded as an attempt; when the
attempt this task Workflow started did not commit, the plan fails (exit 5: a retry cannot help) instead
of starting the round again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from minio import Minio

from edgefed.steps import layout
from edgefed.steps.context import StepContext
from edgefed.steps.interface import Flag, Outputs, Step, StepExit, round_workflow_name
from edgefed.steps.planning import StopState, evaluate_due, min_delta, sample_edges, score, stop_reason
from edgefed.steps.registry import ModelRegistry
from edgefed.steps.store import DataUnavailableError, StepError, get_bytes, put_bytes

__all__ = ["parent_output", "run"]


class RoundNotCommittedError(StepError):
    exit_code = StepExit.ROUND_FAILED


def _stop_state(
    registry: ModelRegistry,
    task: str,
    last: int,
    plan: dict[str, Any],
    evaluate_now: Callable[[int], dict[str, Any] | None] | None = None,
) -> StopState:
    """The stop state after round ``last``: the nearest saved one, brought forward with the evaluations
    after it, and saved (two reads per round in the steady state, not one per round so far).

    ``evaluate_now(r)``: scores round ``last`` when its evaluation is due and missing (its round's Workflow
    committed, then stopped before or in its evaluate step), so no round's metrics are lost to an
    interrupt and the stop conditions see them."""
    cached: dict[int, StopState] = {0: StopState()}
    round_ = last
    while round_ > 0:
        try:
            data = get_bytes(registry.client, registry.bucket, layout.plan_state_key(task, round_))
        except DataUnavailableError:
            round_ -= 1
            continue
        cached[round_] = StopState.from_json(json.loads(data))
        break
    state = cached[round_]
    delta = min_delta(plan)
    for r in range(round_ + 1, last + 1):
        evaluation = registry.evaluation(task, r)
        if evaluation is None and r == last and evaluate_now is not None and evaluate_due(plan, r):
            evaluation = evaluate_now(r)
        if evaluation is not None:
            state.observe(r, score(plan, evaluation), delta)
    if last > round_:
        put_bytes(
            registry.client,
            registry.bucket,
            layout.plan_state_key(task, last),
            json.dumps(state.to_json()).encode(),
            content_type="application/json",
        )
    return state


def _last_attempt(client: Minio, bucket: str, task: str, round_: int) -> tuple[int, dict[str, Any] | None]:
    """How many Workflows were named for ``round_`` so far, and the record of the last one."""
    keys = sorted(
        o.object_name for o in client.list_objects(bucket, prefix=layout.attempts_prefix(task, round_))
    )
    if not keys:
        return 0, None
    return len(keys), json.loads(get_bytes(client, bucket, keys[-1]))


def _new_attempt(
    ctx: StepContext,
    registry: ModelRegistry,
    round_: int,
    uid: str,
    attempts: tuple[int, dict[str, Any] | None],
) -> int:
    """Record this task Workflow's attempt at ``round_`` (``attempts``: :func:`_last_attempt`'s answer);
    returns its number (1, 2, ...).

    Attempts are told apart by the task Workflow's uid, not its name: a name can come back (a
    deleted Workflow's, resubmitted), a uid never does."""
    count, last = attempts
    if last is not None and last.get("uid") == uid:
        raise RoundNotCommittedError(
            f"round {round_} did not commit a model: its Workflow {last['name']} failed "
            f"(argo get {last['name']}); resubmit the task to try the round again"
        )
    attempt = count + 1
    record = {"workflow": ctx.workflow, "uid": uid, "name": round_workflow_name(ctx.task, round_, attempt)}
    put_bytes(
        registry.client,
        registry.bucket,
        layout.attempt_key(ctx.task, round_, attempt),
        json.dumps(record).encode(),
        content_type="application/json",
    )
    return attempt


def _evaluate_missing(ctx: StepContext, registry: ModelRegistry, round_: int) -> dict[str, Any] | None:
    """Round ``round_``'s metrics, scored now; None (the round still counts as done, as when its own
    evaluate step failed) when it cannot be scored: the plan goes on and says why."""
    from edgefed.steps.evaluate import (  # TensorFlow: only when metrics are missing
        evaluate_round,
        metrics_text,
    )

    try:
        metrics = evaluate_round(ctx, registry, round_)
    except Exception as err:  # any failure of the scoring: the round stands, unscored
        print(f"round {round_} was committed but not evaluated, and cannot be evaluated now: {err}")
        return None
    print(
        f"round {round_} was committed but not evaluated (its Workflow stopped after the commit); "
        f"evaluated now: {metrics_text(metrics)}"
    )
    return metrics


def parent_output(round_: int, model: dict[str, Any]) -> str:
    """The ``parent`` output: what of round ``round_``'s committed model its edges need to fetch and verify it
    (they then read no manifest: one request fewer per edge and round)."""
    ref = {"round": round_, **{k: model.get(k) for k in ("key", "versionId", "sha256")}}
    return json.dumps(ref, separators=(",", ":"), sort_keys=True)


def _names(items: list[Any]) -> list[str]:
    return [item if isinstance(item, str) else item["name"] for item in items]


def run(argv: list[str]) -> int:
    parser = StepContext.parser(Step.PLAN, per_round=False)
    parser.add_argument(Flag.EDGES_FILE, required=True, help="JSON list of the task's edge items")
    parser.add_argument(Flag.BUDGET, type=int, required=True, help="rounds this chain may still start")
    parser.add_argument(Flag.SINCE, type=int, default=0, help="last round before this task Workflow")
    parser.add_argument(Flag.WORKFLOW_UID, default="", help="the task Workflow's uid (default: its name)")
    args = parser.parse_args(argv)
    ctx = StepContext.from_args(args)
    plan = ctx.config["plan"]
    registry = ctx.registry()
    last = registry.last_committed(ctx.task)
    if last is None:
        raise DataUnavailableError(f"task {ctx.task!r} has no initial model: the init step runs first")
    next_round = last + 1
    # What does not depend on the stop state is read beside it (threads wait on their sockets): the last
    # round's manifest and the next round's attempts. The plan is on the task's critical path, alone.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="edgefed-plan") as pool:
        manifest = pool.submit(registry.manifest, ctx.task, last)
        attempts = pool.submit(_last_attempt, registry.client, registry.bucket, ctx.task, next_round)
        state = _stop_state(registry, ctx.task, last, plan, lambda r: _evaluate_missing(ctx, registry, r))
        model, attempts_so_far = manifest.result()["model"], attempts.result()
    reason = stop_reason(plan, last, state) if last > 0 else None
    go = reason is None and args.budget > 0
    items = json.loads(Path(args.edges_file).read_text())

    current = state.last is not None and state.last[0] == last
    accuracy = f"{state.last[1]:.4f}" if current and plan.get("metric", "accuracy") == "accuracy" else ""
    version = model["versionId"] or ""
    ctx.output(Outputs.LAST_ROUND, str(last))
    ctx.output(Outputs.MODEL_VERSION, version)
    ctx.output(Outputs.ACCURACY, accuracy)
    ctx.output(Outputs.ROUNDS_RUN, str(max(0, last - args.since)))
    ctx.output(Outputs.STOP_REASON, reason or "")
    ctx.output(Outputs.GO, "true" if go else "false")
    ctx.output(Outputs.BUDGET, str(max(0, args.budget - 1)))
    shown = f", accuracy {accuracy}" if accuracy else ""
    if go:
        chosen = set(sample_edges(_names(items), plan.get("sampling"), next_round))
        sampled = [item for item, name in zip(items, _names(items), strict=True) if name in chosen]
        attempt = _new_attempt(ctx, registry, next_round, args.workflow_uid or ctx.workflow, attempts_so_far)
        ctx.output(Outputs.NEXT_ROUND, str(next_round))
        ctx.output(Outputs.EVALUATE, "true" if evaluate_due(plan, next_round) else "false")
        ctx.output(Outputs.EDGES, json.dumps(sampled, separators=(",", ":")))
        ctx.output(Outputs.NAME, round_workflow_name(ctx.task, next_round, attempt))
        ctx.output(Outputs.PARENT, parent_output(last, model))
        title = f"{ctx.task}: round {next_round} of {plan['lastRound']}"
        description = (
            f"round {last} done{shown}; round {next_round} asks {len(sampled)} of {len(items)} edges"
        )
        print(f"task {ctx.task!r}: round {next_round} next ({len(sampled)} of {len(items)} edges)")
    else:
        for name in (Outputs.NEXT_ROUND, Outputs.EVALUATE, Outputs.EDGES, Outputs.NAME, Outputs.PARENT):
            ctx.output(name, "")
        title = f"{ctx.task}: {'done' if reason else 'running'}, round {last} of {plan['lastRound']}"
        description = f"{reason or 'next chain of rounds'}{shown}"
        print(f"task {ctx.task!r}: after round {last}: {reason or 'chain budget spent'}")
    # They go into a YAML manifest between double quotes (the progress step's patch).
    ctx.output(Outputs.TITLE, title.replace('"', "'"))
    ctx.output(Outputs.DESCRIPTION, description.replace('"', "'"))
    return 0
