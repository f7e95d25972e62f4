"""The incremental learning job's steps: ``probe`` (at each edge), ``decide`` and ``promote-if-better`` (cloud).

One check (the IncrementalLearningJob's check Workflow, run by its CronWorkflow, its Sensor or by hand)::

    probe (each edge)  ──►  decide  ──►  retrain (the task Workflow, when a trigger fired)  ──►  promote-if-better

* ``probe`` reads the edge's dataset from its own store and compares it with what the edge last contributed
  (the ETag and row count its last contribution's manifest names): ``newRows``; with an ``accuracyBelow``
  trigger it also scores the served model on the fresh rows (those after the ones it learned from; datasets
  grow by appending). Only counts and one accuracy travel, to ``<edge>/<task>/probes/<workflow>.json``
  under the edge's own prefix of the updates bucket: never a row.
* ``decide`` reads the probes and the job's triggers (``--job``): when one fired, it outputs the task config
  the retraining runs with (the last round moved ``rounds`` past the served model, the stop conditions off:
  they belong to the first training), and when the served model is not the latest round (a rollback), first
  commits a *rebase* round whose weights are the served model's, so the retraining starts from exactly what
  serves; committed rounds are never rewritten. Its decision is recorded in
  ``<task>/incremental/<workflow>.json`` of the model bucket, with the reason; nothing fired: the reason too.
* ``promote-if-better`` compares the candidate (the last committed round) with the served model on the
  held-out test set (the evaluations both rounds recorded): it promotes only if the candidate's accuracy is
  higher by at least ``minImprovement``, and records why it did or did not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgefed.steps import layout
from edgefed.steps.context import StepContext
from edgefed.steps.datasets import LABEL
from edgefed.steps.hard_examples import fold
from edgefed.steps.interface import Flag, Outputs, Step, StepExit
from edgefed.steps.planning import score
from edgefed.steps.promotions import promote, served
from edgefed.steps.registry import ModelRegistry
from edgefed.steps.store import (
    DataUnavailableError,
    Endpoint,
    StepError,
    client_from_env,
    get_bytes,
    put_json,
    read_frame_object,
    utc_now,
)

__all__ = ["last_contribution", "run_decide", "run_probe", "run_promote_if_better", "served_round"]


def served_round(registry: ModelRegistry, task: str) -> int:
    """The round that serves: the newest promotion's, else the last committed one."""
    record = served(registry, task)
    if record is not None:
        return int(record["round"])
    last = registry.last_committed(task)
    if last is None:
        raise DataUnavailableError(f"task {task!r} has no committed model: train it first")
    return last


def last_contribution(registry: ModelRegistry, task: str, edge: str) -> dict[str, Any] | None:
    """The newest round ``edge`` contributed to: round, example count, the dataset ETag it read."""
    last = registry.last_committed(task) or 0
    for round_ in range(last, 0, -1):
        for contributor in registry.manifest(task, round_).get("contributors", []):
            if contributor["edge"] == edge:
                dataset = contributor.get("dataset") or {}
                return {"round": round_, "rows": int(contributor["examples"]), "etag": dataset.get("etag")}
    return None


def _job_parser(step: str, *, at_edge: bool = False):
    parser = StepContext.parser(step, at_edge=at_edge, per_round=False)
    parser.add_argument(
        Flag.JOB, required=True, help="the job's triggers, retraining and promotion rule (JSON)"
    )
    return parser


# -- probe ---------------------------------------------------------------------------------------
def run_probe(argv: list[str]) -> int:
    args = _job_parser(Step.PROBE, at_edge=True).parse_args(argv)
    ctx = StepContext.from_args(args)
    job = json.loads(args.job)
    registry = ctx.registry()  # the edge's cloud identity: it may read models, write only its own prefix
    bucket, _, key = args.dataset.removeprefix("s3://").partition("/")
    site = client_from_env(Endpoint.parse(args.dataset_store), site=True)
    frame, read = read_frame_object(site, bucket, key)
    folded = None
    if (job.get("hardExamples") or {}).get("fold"):
        columns = ctx.config.get("columns") or {}
        frame, folded = fold(
            site,
            bucket,
            ctx.task,
            key,
            frame,
            read.etag,
            label_column=columns.get("label", LABEL),
            feature_columns=list(columns.get("features") or [c for c in frame.columns if c != LABEL]),
        )
    rows = len(frame)
    before = last_contribution(registry, ctx.task, args.edge)
    if before is None:
        new_rows = rows
    elif before["etag"] is not None and before["etag"] == read.etag and not (folded and folded.rows):
        new_rows = 0  # the very bytes it learned from
    else:
        new_rows = max(rows - before["rows"], 0)
    serving = served_round(registry, ctx.task)
    report: dict[str, Any] = {
        "edge": args.edge,
        "task": ctx.task,
        "workflow": ctx.workflow,
        "rows": rows,
        "etag": read.etag,
        "lastContribution": before,
        "newRows": new_rows,
        "servedRound": serving,
        "freshAccuracy": None,
        "hardExamples": None
        if folded is None
        else {"folded": folded.rows, "batches": len(folded.batches), "unlabelled": folded.unlabelled},
        "at": utc_now(),
    }
    accuracy = (job.get("triggers") or {}).get("accuracyBelow")
    if accuracy and new_rows >= int(accuracy.get("minRows", 1)):
        from edgefed.steps.models import trainer_for  # TensorFlow: imported once per (warm) process
        from edgefed.steps.train import frame_to_arrays

        fresh = frame.iloc[rows - new_rows :]
        x, y = frame_to_arrays(
            fresh, ctx.config["model"]["inputShape"], where=args.dataset, columns=ctx.config.get("columns")
        )
        model = registry.load(ctx.task, serving)
        scored = trainer_for(ctx.config["model"], ctx.config["training"]).evaluate(model.weights, x, y)
        report["freshAccuracy"] = scored.get("accuracy")  # none for a regression model
    del frame
    put_json(
        registry.client, layout.UPDATES_BUCKET, layout.probe_key(args.edge, ctx.task, ctx.workflow), report
    )
    ctx.output(Outputs.NEW_ROWS, str(new_rows))
    fresh_text = (
        ""
        if report["freshAccuracy"] is None
        else f", served model on them: accuracy {report['freshAccuracy']:.4f}"
    )
    hard_text = (
        ""
        if folded is None
        else f"; {folded.rows} labelled hard examples folded into its dataset, {folded.unlabelled} await a label"
    )
    print(f"edge {args.edge}: {rows} rows, {new_rows} new since its last contribution{fresh_text}{hard_text}")
    return StepExit.OK


# -- decide --------------------------------------------------------------------------------------
def _fired(job: dict[str, Any], probes: list[dict[str, Any]], trigger: str) -> list[str]:
    """Why to retrain (empty: no trigger fired)."""
    triggers = job.get("triggers") or {}
    reasons = []
    if trigger == "schedule":
        reasons.append(f"scheduled retraining ({triggers.get('schedule')})")
    new_rows = triggers.get("newRows")
    if new_rows:
        for p in probes:
            if p["newRows"] >= int(new_rows["minRows"]):
                reasons.append(
                    f"edge {p['edge']} has {p['newRows']} new rows (trigger: >= {new_rows['minRows']})"
                )
    accuracy = triggers.get("accuracyBelow")
    if accuracy:
        for p in probes:
            if p.get("freshAccuracy") is not None and p["freshAccuracy"] < float(accuracy["threshold"]):
                reasons.append(
                    f"the served model scores {p['freshAccuracy']:.4f} on {p['newRows']} fresh rows of edge {p['edge']} "
                    f"(trigger: below {accuracy['threshold']})"
                )
    return reasons


def _rebase(registry: ModelRegistry, ctx: StepContext, serving: int, last: int) -> int:
    """Commit round ``last + 1`` holding the served round's weights (and evaluation): what retraining starts from."""
    model = registry.load(ctx.task, serving)
    manifest = registry.commit(
        ctx.task,
        last + 1,
        model.weights,
        {
            "workflow": ctx.workflow,
            "parent": {
                "round": serving,
                "versionId": model.manifest["model"].get("versionId"),
                "sha256": model.manifest["model"]["sha256"],
            },
            "rebasedOn": serving,
            "note": f"retraining starts from the served round {serving}, not from round {last}",
            "contributors": [],
            "missing": [],
            "examples": 0,
            "metrics": {},
            "modelSpec": model.manifest.get("modelSpec"),
            "datasetName": model.manifest.get("datasetName"),
            "columns": model.manifest.get("columns"),
        },
    )
    evaluation = registry.evaluation(ctx.task, serving)
    if evaluation is not None:
        registry.record_evaluation(
            ctx.task, last + 1, {**evaluation, "round": last + 1, "copiedFrom": serving}
        )
    print(f"round {last + 1}: rebased on the served round {serving} ({manifest['model']['sha256'][:12]})")
    return last + 1


def run_decide(argv: list[str]) -> int:
    parser = _job_parser(Step.DECIDE)
    parser.add_argument(Flag.EDGES_FILE, type=Path, required=True)
    parser.add_argument(Flag.TRIGGER, default="check", choices=("check", "schedule", "event"))
    args = parser.parse_args(argv)
    ctx = StepContext.from_args(args)
    job = json.loads(args.job)
    registry = ctx.registry()
    edges = [e["name"] if isinstance(e, dict) else str(e) for e in json.loads(args.edges_file.read_text())]
    probes, unreported = [], []
    for edge in edges:
        try:
            probes.append(
                json.loads(
                    get_bytes(
                        registry.client, layout.UPDATES_BUCKET, layout.probe_key(edge, ctx.task, ctx.workflow)
                    )
                )
            )
        except DataUnavailableError:
            unreported.append(edge)
    serving = served_round(registry, ctx.task)
    last = registry.last_committed(ctx.task) or 0
    reasons = _fired(job, probes, args.trigger)
    decision: dict[str, Any] = {
        "job": job.get("job"),
        "task": ctx.task,
        "workflow": ctx.workflow,
        "trigger": args.trigger,
        "at": utc_now(),
        "servedRound": serving,
        "lastRound": last,
        "probes": [
            {
                k: p.get(k)
                for k in ("edge", "rows", "newRows", "freshAccuracy", "hardExamples", "lastContribution")
            }
            for p in probes
        ],
        "unreported": unreported,
        "retrain": bool(reasons),
        "reasons": reasons or ["no trigger fired"],
    }
    config = dict(ctx.config)
    if reasons:
        base = _rebase(registry, ctx, serving, last) if serving != last else last
        rounds = int((job.get("retraining") or {}).get("rounds", 1))
        plan = {**config.get("plan", {}), "lastRound": base + rounds, "stop": {}}
        config["plan"] = plan
        decision.update(baseRound=base, targetRound=base + rounds)
    put_json(registry.client, registry.bucket, layout.incremental_key(ctx.task, ctx.workflow), decision)
    ctx.output(Outputs.RETRAIN, "true" if reasons else "false")
    ctx.output(Outputs.REASON, "; ".join(decision["reasons"]))
    ctx.output(Outputs.BASE_ROUND, str(decision.get("baseRound", serving)))
    ctx.output(Outputs.TASK_CONFIG, json.dumps(config, sort_keys=True, separators=(",", ":")))
    if reasons:
        print(
            f"retrain {ctx.task} from round {decision['baseRound']} to {decision['targetRound']}: {'; '.join(reasons)}"
        )
    else:
        summary = ", ".join(f"{p['edge']} +{p['newRows']}" for p in probes) or "no edge reported"
        print(f"{ctx.task}: no trigger fired ({summary}); nothing retrains")
    return StepExit.OK


# -- promote-if-better ---------------------------------------------------------------------------
def run_promote_if_better(argv: list[str]) -> int:
    parser = _job_parser(Step.PROMOTE_IF_BETTER)
    parser.add_argument(Flag.SINCE, type=int, required=True, help="the round retraining started from")
    args = parser.parse_args(argv)
    ctx = StepContext.from_args(args)
    job = json.loads(args.job)
    registry = ctx.registry()
    key = layout.incremental_key(ctx.task, ctx.workflow)
    decision = json.loads(get_bytes(registry.client, registry.bucket, key))
    serving = int(decision["servedRound"])
    candidate = registry.last_committed(ctx.task) or 0
    if candidate <= args.since:
        raise StepError(f"the retraining of {ctx.task!r} committed no round after {args.since}")
    delta = float((job.get("promotion") or {}).get("minImprovement", 0.0))
    plan = ctx.config.get("plan") or {}
    metric = plan.get("metric", "accuracy")
    scores = {r: registry.evaluation(ctx.task, r) for r in (serving, candidate)}
    missing = [r for r, e in scores.items() if e is None]
    if missing:
        promoted, why = (
            False,
            f"round(s) {missing} have no evaluation on the held-out set: nothing is promoted",
        )
    else:
        old, new = float(scores[serving][metric]), float(scores[candidate][metric])
        # better by delta in the metric's own direction (mse: lower is better)
        promoted = score(plan, scores[candidate]) >= score(plan, scores[serving]) + delta
        verb = "beats" if promoted else "does not beat"
        why = (
            f"candidate round {candidate} {metric} {new:.4f} {verb} the served round {serving}'s {old:.4f} "
            f"by >= {delta:g} on the held-out set"
        )
    if promoted:
        promote(registry, ctx.task, candidate, by=f"incremental learning job {job.get('job')}", reason=why)
    outcome = {"candidateRound": candidate, "promoted": promoted, "reason": why, "at": utc_now()}
    put_json(registry.client, registry.bucket, key, {**decision, "outcome": outcome})
    ctx.output(Outputs.PROMOTED, "true" if promoted else "false")
    ctx.output(Outputs.REASON, why)
    print(("promoted: " if promoted else "kept the served model: ") + why)
    return StepExit.OK
