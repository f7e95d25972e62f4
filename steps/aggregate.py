"""``aggregate``: the join step. Reads the updates that arrived, checks the quorum, averages, commits.

Streaming: updates are fetched and added one at a time (FedAvg keeps one accumulator), so memory
does not grow with the number of edges. The commit goes through :class:`ModelRegistry`, whose
protocol guarantees a reader never sees a model without its manifest.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from minio import Minio

from edgefed.steps import codec, layout
from edgefed.steps.context import StepContext
from edgefed.steps.fedavg import ShapeMismatchError, WeightedMean
from edgefed.steps.store import DataUnavailableError, StepError, get_bytes


class QuorumError(StepError):
    """Fewer usable updates than the quorum: nothing is committed."""


def _missing_reason(client: Minio, edge: str, ctx: StepContext) -> str:
    key = layout.edge_status_key(edge, ctx.task, ctx.round, ctx.workflow)
    try:
        status = json.loads(get_bytes(client, layout.UPDATES_BUCKET, key))
    except DataUnavailableError:
        return "no update received (the edge's step did not report)"
    return str(status.get("reason", "the edge's step failed"))


def aggregate(ctx: StepContext, edges: list[str], quorum: int) -> dict[str, Any]:
    """Average this round's updates into a new global model and commit it; returns the manifest."""
    client = ctx.cloud()
    registry = ctx.registry()
    parent = registry.manifest(ctx.task, ctx.round - 1)
    mean = WeightedMean()
    contributors: list[dict[str, Any]] = []
    missing: list[dict[str, str]] = []
    metric_sums: dict[str, float] = {}
    started = time.perf_counter()
    update_bytes = 0
    for edge in edges:
        key = layout.update_key(edge, ctx.task, ctx.round, ctx.workflow)
        try:
            data = get_bytes(client, layout.UPDATES_BUCKET, key)
        except DataUnavailableError:
            missing.append({"edge": edge, "reason": _missing_reason(client, edge, ctx)})
            continue
        weights, meta = codec.decode_views(data)  # read-only views: no copy of the update
        if meta.get("parentSha256") != parent["model"]["sha256"]:
            missing.append(
                {"edge": edge, "reason": "update was trained from another model than the round's parent"}
            )
            continue
        examples = int(meta.get("examples", 0))
        try:
            mean.add(weights, examples)
        except ShapeMismatchError as err:
            missing.append({"edge": edge, "reason": f"update rejected: {err}"})
            continue
        del weights
        update_bytes += len(data)
        contributors.append(
            {
                "edge": edge,
                "examples": examples,
                "sha256": codec.sha256(data),
                "update": f"s3://{layout.UPDATES_BUCKET}/{key}",
                "metrics": meta.get("metrics", {}),
            }
        )
        for name, value in (meta.get("metrics") or {}).items():
            metric_sums[name] = metric_sums.get(name, 0.0) + float(value) * examples
    if len(contributors) < quorum:
        reasons = "; ".join(f"{m['edge']}: {m['reason']}" for m in missing) or "none"
        raise QuorumError(
            f"round {ctx.round} of {ctx.task!r}: {len(contributors)} usable update(s), quorum is {quorum}; "
            f"missing edges: {reasons}. No model version was committed."
        )
    weights = mean.result()
    total = sum(c["examples"] for c in contributors)
    lineage = {
        "workflow": ctx.workflow,
        "aggregation": ctx.config.get("aggregation", {"algorithm": "fedavg"}),
        "parent": {
            "round": parent["round"],
            "versionId": parent["model"]["versionId"],
            "sha256": parent["model"]["sha256"],
        },
        "contributors": contributors,
        "missing": missing,
        "examples": total,
        "quorum": quorum,
        "metrics": {f"train_{k}": v / total for k, v in metric_sums.items()} if total else {},
        "aggregationSeconds": time.perf_counter() - started,
        "updateBytes": update_bytes,
    }
    return registry.commit(ctx.task, ctx.round, weights, lineage)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edgefed-step aggregate")
    StepContext.add_arguments(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--edges", help="JSON list of the round's edges (names or {name: ...})")
    source.add_argument("--edges-file", type=Path, help="file holding that JSON list")
    args = parser.parse_args(argv)
    ctx = StepContext.from_args(args)
    text = args.edges if args.edges is not None else args.edges_file.read_text()
    edges = [e["name"] if isinstance(e, dict) else str(e) for e in json.loads(text)]
    quorum = int(ctx.config.get("quorum", 1))
    manifest = aggregate(ctx, edges, quorum)
    ctx.output("model-version", manifest["model"]["versionId"] or "")
    ctx.output("contributors", str(len(manifest["contributors"])))
    ctx.output("missing", json.dumps([m["edge"] for m in manifest["missing"]]))
    ctx.output("missing-count", str(len(manifest["missing"])))
    for m in manifest["missing"]:
        print(f"edge {m['edge']} sat round {ctx.round} out: {m['reason']}")
    print(
        f"round {ctx.round}: averaged {len(manifest['contributors'])}/{len(edges)} updates "
        f"({manifest['examples']} examples), committed s3://{layout.MODELS_BUCKET}/{manifest['model']['key']} "
        f"version {manifest['model']['versionId']}"
    )
    return 0


__all__ = ["QuorumError", "aggregate", "run"]
