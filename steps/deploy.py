"""``deploy`` (at an edge) and ``record-deployment`` (cloud): a committed model goes to the edges' own stores.

``deploy`` runs on the edge's node: it reads the model of ``--round`` from the cloud's model bucket with the
edge's cloud identity (which may read models), checks it against the SHA-256 of its manifest, and writes, in the
edge's OWN bucket of its own store (site identity):

* ``models/<task>/<round>/model.npz`` and ``manifest.json``: the model as committed, and its lineage;
* ``models/<task>/current.json``: which version the edge runs (task, round, version id, SHA-256, when, by
  which Workflow); a new object version per deployment, so the bucket keeps the edge's history.

It then leaves a receipt under its own prefix of the updates bucket. ``record-deployment`` (cloud) gathers the
receipts into ``<task>/deployments/<workflow>.json`` in the model bucket: the version and each edge's outcome,
what ``edgefed edges status`` shows. It fails when an edge did not deploy, after recording who did.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgefed.steps import layout
from edgefed.steps.context import StepContext
from edgefed.steps.interface import Flag, Outputs, Step, StepExit
from edgefed.steps.store import (
    DataUnavailableError,
    Endpoint,
    StepError,
    client_from_env,
    get_bytes,
    put_bytes,
    put_json,
    utc_now,
)

__all__ = ["run_deploy", "run_record_deployment"]


def run_deploy(argv: list[str]) -> int:
    parser = StepContext.parser(Step.DEPLOY)
    parser.add_argument(Flag.EDGE, required=True)
    parser.add_argument(Flag.DATASET_STORE, required=True, help="the edge's own store endpoint")
    args = parser.parse_args(argv)
    ctx = StepContext.from_args(args)
    cloud = ctx.cloud()
    registry = ctx.registry()
    manifest = registry.manifest(ctx.task, ctx.round)
    data = registry.model_bytes(ctx.task, ctx.round)  # refuses bytes that do not match the manifest
    site = client_from_env(Endpoint.parse(args.dataset_store), site=True)
    own = layout.edge_bucket(args.edge)
    model_key = layout.deployed_model_key(ctx.task, ctx.round)
    put_bytes(site, own, model_key, data)
    put_json(site, own, layout.deployed_manifest_key(ctx.task, ctx.round), manifest)
    current = {
        "task": ctx.task,
        "round": ctx.round,
        "versionId": manifest["model"].get("versionId"),
        "sha256": manifest["model"]["sha256"],
        "model": f"s3://{own}/{model_key}",
        "deployedAt": utc_now(),
        "workflow": ctx.workflow,
        "edge": args.edge,
    }
    put_json(site, own, layout.deployed_current_key(ctx.task), current)
    put_json(
        cloud,
        layout.UPDATES_BUCKET,
        layout.deployment_receipt_key(args.edge, ctx.task, ctx.workflow),
        current,
    )
    ctx.output(Outputs.DEPLOYED, json.dumps(current, sort_keys=True))
    print(
        f"edge {args.edge}: round {ctx.round} of {ctx.task} deployed to s3://{own}/{model_key} ({len(data)} bytes)"
    )
    return StepExit.OK


def run_record_deployment(argv: list[str]) -> int:
    parser = StepContext.parser(Step.RECORD_DEPLOYMENT)
    parser.add_argument(Flag.EDGES_FILE, type=Path, required=True, help="JSON list of the edges asked")
    args = parser.parse_args(argv)
    ctx = StepContext.from_args(args)
    cloud = ctx.cloud()
    manifest = ctx.registry().manifest(ctx.task, ctx.round)
    asked = [e["name"] if isinstance(e, dict) else str(e) for e in json.loads(args.edges_file.read_text())]
    edges = []
    for edge in asked:
        key = layout.deployment_receipt_key(edge, ctx.task, ctx.workflow)
        try:
            receipt = json.loads(get_bytes(cloud, layout.UPDATES_BUCKET, key))
        except DataUnavailableError:
            edges.append(
                {"edge": edge, "deployed": False, "reason": "no receipt: the edge's deploy step failed"}
            )
            continue
        if receipt.get("sha256") != manifest["model"]["sha256"]:
            edges.append({"edge": edge, "deployed": False, "reason": "the receipt names another model"})
            continue
        edges.append(
            {"edge": edge, "deployed": True, "at": receipt.get("deployedAt"), "model": receipt.get("model")}
        )
    record = {
        "task": ctx.task,
        "round": ctx.round,
        "versionId": manifest["model"].get("versionId"),
        "sha256": manifest["model"]["sha256"],
        "workflow": ctx.workflow,
        "recordedAt": utc_now(),
        "edges": edges,
    }
    put_json(cloud, layout.MODELS_BUCKET, layout.deployment_key(ctx.task, ctx.workflow), record)
    failed = [e["edge"] for e in edges if not e["deployed"]]
    done = len(edges) - len(failed)
    print(
        f"round {ctx.round} of {ctx.task}: deployed at {done}/{len(edges)} edges"
        + (f"; not at {', '.join(failed)}" if failed else "")
    )
    if failed:
        raise StepError(f"round {ctx.round} of {ctx.task!r} was not deployed at {', '.join(failed)}")
    return StepExit.OK
