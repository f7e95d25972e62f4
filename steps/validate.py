"""``validate``: check one edge's dataset against its data contract, at the edge, before it trains.

Reads the edge's dataset from the edge's own store and checks it with Great Expectations against the
contract the task config names (``config["contract"]``: a contract name, a path or the contract
document itself; default: ``config["dataset"]``), see :mod:`edgefed.steps.contracts`.

What stays at the edge, in the edge's OWN bucket ``edge-<edge>`` of its own store:
``edgefed/validation/<task>/round-NNNNN/<workflow>/result.json`` (GE's whole validation result, which
names offending values) and ``result.html`` (its Data Docs page).

What travels, under the edge's prefix of the updates bucket: ``<edge>/<task>/round-NNNNN/<workflow>/
verdict.json`` -- passed or not, the row count, the dataset's ETag, the failed expectations' names and
summary values (counts, proportions, schema facts; never a data value). Data that passed is not checked
again while its bytes (ETag) and contract are unchanged: the verdict cached in the edge's own bucket is
reused and not sent again (the round that checked the bytes sent it; each update names the ETag it
learned from). When the contract fails, the step also writes
the same ``status.json`` the train step writes when it gives up (reason ``data contract <name> failed:
<names>``, exit code 4), so the round's manifest names why the edge sat the round out.

Output parameters: ``passed`` (``true``/``false``), ``failed`` (JSON list of names), ``rows``.

Exit status: 0 the data passed; 4 the data broke the contract (the edge's train step must not run);
3 the dataset is missing or unreadable; 1 anything else (a malformed or unknown contract, the store).
When the cloud store is out of reach and the task's ``autonomy`` lets the edge work offline, the verdict is
kept in the edge's outbox (:mod:`edgefed.steps.autonomy`) and the status is that of the check.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from minio import Minio
from minio.error import S3Error

from edgefed.steps import autonomy, layout
from edgefed.steps.context import StepContext
from edgefed.steps.contracts import (
    Contract,
    ContractError,
    Verdict,
    check,
    data_docs_html,
    full_result_json,
    load_contract,
)
from edgefed.steps.interface import Flag, Outputs, Step, StepExit
from edgefed.steps.store import Endpoint, StepError, client_from_env, put_bytes, read_frame

__all__ = ["CONTRACT_FAILED", "contract_from_config", "parse", "run"]

#: Exit status of a step whose data broke its contract.
CONTRACT_FAILED = StepExit.CONTRACT_FAILED


def parse(argv: list[str]) -> argparse.Namespace:
    parser = StepContext.parser(Step.VALIDATE, at_edge=True)
    parser.add_argument(Flag.CONTRACT, default=None, help="contract name or path (default: from --config)")
    return parser.parse_args(argv)


def contract_from_config(config: dict[str, Any], override: str | None = None) -> Contract:
    """The contract a task config names: ``override``, else ``config["contract"]``, else its dataset."""
    chosen = override or config.get("contract") or config.get("dataset")
    if not chosen:
        raise StepError("no data contract: the task config has neither 'contract' nor 'dataset'")
    try:
        return load_contract(chosen)
    except ContractError as err:
        raise StepError(f"data contract: {err}") from None


def run(argv: list[str]) -> int:
    args = parse(argv)
    ctx = StepContext.from_args(args)
    cloud = autonomy.cloud_client(ctx)
    with ctx.reporting_failures(cloud, args.edge):
        return _validate(ctx, cloud, args)


def _cached_verdict(edge_store: Minio, own_bucket: str, etag: str, contract: Contract) -> dict | None:
    """A passing verdict for the same dataset bytes (same ETag) and contract, if one was recorded.

    Data that passed does not change verdict until it or its contract changes: later rounds skip
    reading and checking it again (a contract that failed is always checked afresh).
    """
    try:
        cached = edge_store.get_object(own_bucket, layout.validation_cache_key(contract.sha256, etag))
    except S3Error:
        return None
    try:
        document = json.loads(cached.read())
    finally:
        cached.close()
        cached.release_conn()
    return document if document.get("passed") is True else None


def _validate(ctx: StepContext, cloud: Minio, args: argparse.Namespace) -> int:
    bucket, _, key = args.dataset.removeprefix("s3://").partition("/")
    contract = contract_from_config(ctx.config, args.contract)
    edge_store = client_from_env(Endpoint.parse(args.dataset_store), site=True)
    own_bucket = layout.edge_bucket(args.edge)
    try:
        etag: str | None = edge_store.stat_object(bucket, key).etag
    except S3Error:
        etag = None  # read_frame below names a missing or unreadable dataset
    cached = _cached_verdict(edge_store, own_bucket, etag, contract) if etag else None
    if cached is not None:
        # Not sent again: the verdict on these bytes travelled in the round that checked them (it names
        # their ETag, as each update names the ETag of the bytes it learned from), and the round needs no
        # copy of it: one PUT to the cloud fewer per edge and round.
        ctx.output(Outputs.PASSED, "true")
        ctx.output(Outputs.FAILED, "[]")
        ctx.output(Outputs.ROWS, str(cached.get("rows", "")))
        print(
            f"edge {args.edge} round {ctx.round}: contract {contract.name} PASSED (unchanged data, verdict of "
            f"round {cached.get('round', '?')} reused)"
        )
        return 0
    started = time.perf_counter()
    frame = read_frame(edge_store, bucket, key)
    read_seconds = time.perf_counter() - started
    try:
        verdict = check(frame, contract)
    except ContractError as err:  # an expectation GE does not know, or bad kwargs
        raise StepError(f"data contract: {err}") from None
    del frame

    # Stays at the edge: the whole result and its Data Docs page, in the edge's own bucket.
    put_bytes(
        edge_store,
        own_bucket,
        layout.validation_result_key(ctx.task, ctx.round, ctx.workflow),
        full_result_json(verdict).encode(),
        content_type="application/json",
    )
    put_bytes(
        edge_store,
        own_bucket,
        layout.validation_result_key(ctx.task, ctx.round, ctx.workflow, page=True),
        data_docs_html(verdict).encode(),
        content_type="text/html; charset=utf-8",
    )

    # Travels: the verdict only.
    verdict.summary["readSeconds"] = round(read_seconds, 4)
    document = verdict.to_json(
        edge=args.edge,
        task=ctx.task,
        round=ctx.round,
        workflow=ctx.workflow,
        datasetUrl=args.dataset,
        datasetEtag=etag,
    )
    _send_verdict(ctx, cloud, edge_store, args.edge, document)
    if verdict.passed and etag:
        put_bytes(
            edge_store,
            own_bucket,
            layout.validation_cache_key(contract.sha256, etag),
            document.encode(),
            content_type="application/json",
        )
    names = verdict.failed_names
    ctx.output(Outputs.PASSED, "true" if verdict.passed else "false")
    ctx.output(Outputs.FAILED, json.dumps(names))
    ctx.output(Outputs.ROWS, str(verdict.rows))
    print(_summary_line(args.edge, ctx.round, contract, verdict))
    if verdict.passed:
        return 0
    ctx.report_edge_failure(
        cloud, args.edge, f"data contract {contract.name} failed: {', '.join(names)}", CONTRACT_FAILED
    )
    return CONTRACT_FAILED


def _send_verdict(ctx: StepContext, cloud: Minio, edge_store: Minio, edge: str, verdict: str) -> None:
    """The verdict to the cloud; when the cloud is out of reach and the edge may work offline, into the edge's
    outbox (its train step then trains offline and its update carries the verdict)."""
    try:
        put_bytes(
            cloud,
            layout.UPDATES_BUCKET,
            layout.verdict_key(edge, ctx.task, ctx.round, ctx.workflow),
            verdict.encode(),
            content_type="application/json",
        )
    except autonomy.Unreachable as err:
        if not autonomy.works_offline(ctx.config):
            raise
        outbox = autonomy.Outbox(edge_store, edge, ctx.task)
        outbox.keep_verdict(ctx.round, json.loads(verdict))
        print(
            f"edge {edge} round {ctx.round}: the cloud store is out of reach ({type(err).__name__}); the "
            f"verdict waits at the edge ({outbox.url(ctx.round, 'verdict')})"
        )


def _summary_line(edge: str, round_: int, contract: Contract, verdict: Verdict) -> str:
    s = verdict.summary
    head = (
        f"edge {edge} round {round_}: contract {contract.name} v{contract.version} "
        f"{'PASSED' if verdict.passed else 'FAILED'} on {verdict.rows} rows "
        f"({s['successful']}/{s['evaluated']} expectations, checked in {s['checkSeconds']:.3f}s)"
    )
    if verdict.passed:
        return head
    return f"{head}; failed: {', '.join(verdict.failed_names)}"
