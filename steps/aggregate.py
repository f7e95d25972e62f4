"""``aggregate``: the join step. Reads the updates that arrived, screens them, checks the quorum,
aggregates them with the task's strategy, commits the model and the strategy's server state.

The strategy comes from the spec's ``aggregation`` section (``ctx.config["aggregation"]``, see
:func:`edgefed.steps.strategies.from_config`): FedAvg, FedAvgM/FedAdagrad/FedYogi/FedAdam, FedProx,
median, trimmed mean, Krum/Multi-Krum or DP-FedAvg, each a composition of
:mod:`edgefed.steps.aggregators` (and, with an ``aggregator`` section, another inner aggregator:
FedAdam over a trimmed mean, DP over a median). Each update goes through, in order:

1. the parent check: it was trained from this round's parent model;
2. the strategy's ``add``: the right arrays and shapes, then screening (the outermost wrapper,
   :class:`edgefed.steps.aggregators.Screen`: dtypes, only finite values, and
   ``‖w - w_global‖ <= maxUpdateNorm`` when the spec sets it), then the strategy's own parts.

An update refused at any stage is recorded in the manifest's ``missing`` list with the reason
(``update rejected: ...``), and the quorum applies to the updates that remain; a strategy's own
rule on their number (Krum's n > 2f + 2) is checked against them too. Nothing is committed when
either fails.

Memory: updates are added one at a time, fetched at most ``PREFETCH`` ahead (the store serves the next while
this process screens the current one; small models: as many as fit in ``PREFETCH_BYTES``). FedAvg and the FedOpt family (and FedProx,
DP-FedAvg) stream: memory does not grow with the number of edges. Median, trimmed mean and Krum
need every update at once; their kernels spool them to a local temporary file and work in
coordinate blocks (peak RAM O(n x block), disk n x model; see their docstrings).

Late updates (:mod:`edgefed.steps.autonomy`): an update may name updates its edge trained in earlier
rounds while it could not reach the cloud; they are read after the round's own, used or dropped by the
spec's ``autonomy`` rules, and recorded in the manifest's ``lateUpdates``. The quorum counts the round's own
updates only.

Server state (optimizer moments, the adaptive DP clip and privacy ledger) is read from the parent
round's ``server-state.npz`` (named, with its SHA-256, in the parent's manifest) and the new state
is committed beside the new model, so a resumed task continues from exactly the state it left.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from minio import Minio

from edgefed.steps import autonomy, codec, layout, secure, strategies
from edgefed.steps.context import StepContext
from edgefed.steps.events import write_round_events
from edgefed.steps.interface import Flag, Outputs, Step
from edgefed.steps.registry import ModelRegistry, RoundCommittedError
from edgefed.steps.store import DataUnavailableError, StepError, get_bytes
from edgefed.steps.strategies import ServerState, Strategy, StrategyError, UpdateRejectedError


class QuorumError(StepError):
    """Fewer usable updates than the quorum: nothing is committed."""


class AggregationError(StepError):
    """The strategy cannot aggregate this round's updates (its parameters, or its rule on their
    number): nothing is committed."""


def _reported_reason(client: Minio, edge: str, ctx: StepContext) -> str | None:
    """Why ``edge`` said it sends no update this round, or None when it said nothing."""
    key = layout.edge_status_key(edge, ctx.task, ctx.round, ctx.workflow)
    try:
        status = json.loads(get_bytes(client, layout.UPDATES_BUCKET, key))
    except DataUnavailableError:
        return None
    return str(status.get("reason", "the edge's step failed"))


def _missing_reason(client: Minio, edge: str, ctx: StepContext) -> str:
    # Nothing reported: the step never ended on its own (past its deadline, the pod evicted,
    # the node lost) or never started (not scheduled before its pending timeout).
    return _reported_reason(client, edge, ctx) or (
        "no update and no report: the edge's step did not finish (deadline, eviction or a lost node) "
        "or it could not reach the cloud (it delivers an update it kept at its site later)"
    )


#: Updates fetched ahead of the one being added: the store serves the next ones while this process
#: decodes and screens, and memory holds at most this many updates beyond the strategy's own ...
PREFETCH = 3
#: ... or, for small models, as many as fit in this many bytes (at most ``PREFETCH_MAX``): with updates of
#: kilobytes, each request's latency, not memory, is what a round waits for.
PREFETCH_BYTES = 32 * 1024 * 1024
PREFETCH_MAX = 16


def prefetch_depth(model_bytes: int) -> int:
    """How many updates of about ``model_bytes`` each are fetched ahead."""
    return max(PREFETCH, min(PREFETCH_MAX, PREFETCH_BYTES // max(int(model_bytes), 1)))


def _fetched(
    client: Minio, keys: dict[str, str], depth: int = PREFETCH
) -> Iterator[tuple[str, bytes | None]]:
    """``(edge, update bytes or None when it has none)`` in the edges' order, ``depth`` fetched ahead."""

    def fetch(key: str) -> bytes | None:
        try:
            return get_bytes(client, layout.UPDATES_BUCKET, key)
        except DataUnavailableError:
            return None

    pending: deque[tuple[str, Future[bytes | None]]] = deque()
    items = iter(keys.items())
    with ThreadPoolExecutor(max_workers=depth, thread_name_prefix="edgefed-fetch") as pool:
        try:
            for edge, key in itertools.islice(items, depth):
                pending.append((edge, pool.submit(fetch, key)))
            while pending:
                edge, future = pending.popleft()
                for next_edge, next_key in itertools.islice(items, 1):
                    pending.append((next_edge, pool.submit(fetch, next_key)))
                yield edge, future.result()
        finally:
            for _, future in pending:
                future.cancel()


def _parent_state(
    registry: ModelRegistry, parent: dict[str, Any], strategy: Strategy
) -> tuple[ServerState | None, dict[str, Any]]:
    """The state the parent round committed, and what the lineage records about it."""
    data = registry.server_state(parent)
    if data is None:
        return None, {}
    try:
        state = ServerState.from_bytes(data)
    except codec.CodecError as err:
        raise StepError(f"server state of round {parent['round']}: {err}") from None
    source = {"round": parent["round"], "sha256": parent["serverState"]["sha256"]}
    if state.strategy != strategy.name:
        # The task's algorithm changed between rounds: the new one starts afresh.
        note = f"the parent's state was written by {state.strategy!r}; {strategy.name} starts from none"
        return None, {**source, "note": note}
    return state, source


def _contract_lineage(config: dict[str, Any]) -> dict[str, Any] | None:
    """The data contract the round's edges were checked against: name, version and the SHA-256 of its
    expanded document (what the validate step's verdict cache is keyed by)."""
    from edgefed.steps.validate import contract_from_config

    if not (config.get("contract") or config.get("dataset")):
        return None
    try:
        contract = contract_from_config(config)
    except StepError as err:  # the validate steps already refused such a contract: the edges sat out
        return {"name": config.get("contract") or config.get("dataset"), "error": str(err)}
    return {"name": contract.name, "version": contract.version, "sha256": contract.sha256}


def aggregate(ctx: StepContext, edges: list[str], quorum: int) -> dict[str, Any]:
    """Aggregate this round's updates into a new global model and commit it; returns the manifest."""
    config = dict(ctx.config.get("aggregation") or {"algorithm": "fedavg"})
    try:
        strategy = strategies.from_config(config, screening=True)
    except StrategyError as err:
        raise AggregationError(f"aggregation: {err}. No model version was committed.") from None
    client = ctx.cloud()
    registry = ctx.registry()
    parent = registry.load(ctx.task, ctx.round - 1)
    global_weights = parent.weights
    state, state_source = _parent_state(registry, parent.manifest, strategy)
    contributors: list[dict[str, Any]] = []
    missing: list[dict[str, str]] = []
    metric_sums: dict[str, float] = {}
    started = time.perf_counter()
    update_bytes = 0
    strategy.begin(global_weights, state)
    secure_report: dict[str, Any] | None = None
    late_named: list[tuple[str, list[int]]] = []  # (edge, trained rounds of the late updates it sent)
    late: list[dict[str, Any]] = []
    try:
        if secure.enabled(ctx.config):
            # the edges' updates are masked: the strategy gets their weighted mean, one "update"
            summed = secure.secure_sum(ctx, client, edges, parent, lambda e: _reported_reason(client, e, ctx))
            contributors, missing, secure_report = summed.contributors, summed.missing, summed.report
            update_bytes = summed.update_bytes
            if len(contributors) >= quorum:
                try:
                    strategy.add(summed.point, summed.weight, "secure-sum")
                except UpdateRejectedError as err:
                    raise AggregationError(f"the secure sum was rejected: {err}") from None
        else:
            keys = {edge: layout.update_key(edge, ctx.task, ctx.round, ctx.workflow) for edge in edges}
            depth = prefetch_depth(parent.manifest["model"].get("bytes") or 0)
            for edge, data in _fetched(client, keys, depth):
                key = keys[edge]
                if data is None:
                    missing.append({"edge": edge, "reason": _missing_reason(client, edge, ctx)})
                    continue
                try:
                    weights, meta = codec.decode_views(data)  # read-only views: no copy of the update
                    examples = int(meta.get("examples", 0))
                except (codec.CodecError, TypeError, ValueError) as err:
                    missing.append({"edge": edge, "reason": f"update rejected: unreadable update ({err})"})
                    continue
                if meta.get("parentSha256") != parent.manifest["model"]["sha256"]:
                    missing.append(
                        {
                            "edge": edge,
                            "reason": "update was trained from another model than the round's parent",
                        }
                    )
                    continue
                try:
                    strategy.add(weights, examples, edge)
                except UpdateRejectedError as err:
                    missing.append({"edge": edge, "reason": f"update rejected: {err}"})
                    continue
                del weights
                if meta.get("late"):
                    late_named.append((edge, [int(r) for r in meta["late"]]))
                update_bytes += len(data)
                contributors.append(
                    {
                        "edge": edge,
                        "examples": examples,
                        "sha256": codec.sha256(data),
                        "update": f"s3://{layout.UPDATES_BUCKET}/{key}",
                        "metrics": meta.get("metrics", {}),
                        "dataset": meta.get("dataset"),
                    }
                )
        if late_named:
            late, read = autonomy.add_late_updates(ctx, client, registry, strategy, parent, late_named)
            update_bytes += read
        if len(contributors) < quorum:
            reasons = "; ".join(f"{m['edge']}: {m['reason']}" for m in missing) or "none"
            raise QuorumError(
                f"round {ctx.round} of {ctx.task!r}: {len(contributors)} usable update(s), quorum is {quorum}; "
                f"missing edges: {reasons}. No model version was committed."
            )
        try:
            strategy.check_count(len(contributors))
            weights, new_state = strategy.finish()
        except StrategyError as err:
            raise AggregationError(
                f"round {ctx.round} of {ctx.task!r}: {err}. No model version was committed."
            ) from None
    finally:
        strategy.close()
    total = sum(c["examples"] for c in contributors)
    for contributor in contributors:
        for name, value in (contributor.get("metrics") or {}).items():
            metric_sums[name] = metric_sums.get(name, 0.0) + float(value) * contributor["examples"]
    lineage = {
        "workflow": ctx.workflow,
        "aggregation": config,
        "aggregationReport": strategy.report,
        "parent": {
            "round": parent.round,
            "versionId": parent.manifest["model"]["versionId"],
            "sha256": parent.manifest["model"]["sha256"],
        },
        "edges": list(edges),  # the edges the round asked (all, or the sample)
        "contributors": contributors,
        "missing": missing,
        "examples": total,
        "contract": _contract_lineage(ctx.config),
        # what the weights are (an export rebuilds the model from it) and which schema they read
        "modelSpec": ctx.config.get("model"),
        "datasetName": ctx.config.get("dataset"),
        "columns": ctx.config.get("columns"),
        "quorum": quorum,
        "metrics": {f"train_{k}": v / total for k, v in metric_sums.items()} if total else {},
        "aggregationSeconds": time.perf_counter() - started,
        "updateBytes": update_bytes,
    }
    if late:
        lineage["lateUpdates"] = late  # also the record a delivering edge closes its outbox entry by
    if state_source:
        lineage["serverStateFrom"] = state_source
    if secure_report is not None:
        lineage["secureAggregation"] = secure_report
    privacy = strategy.privacy_spent(new_state)
    if privacy is not None:
        # the rounds the ledger accounts for: all of them unless the task switched to DP midway
        privacy["coversRounds"] = [ctx.round - privacy["rounds"] + 1, ctx.round]
        lineage["privacy"] = privacy
    try:
        return registry.commit(ctx.task, ctx.round, weights, lineage, server_state=new_state.to_bytes())
    except RoundCommittedError as err:
        # the same step executed twice (a retried pod whose first run committed, or two at once): the
        # round stands as that execution committed it; a commit by another workflow is refused
        winner = err.winner or registry.manifest(ctx.task, ctx.round)
        if winner.get("workflow") != ctx.workflow:
            raise
        print(
            f"round {ctx.round} of {ctx.task!r} is already committed by this workflow ({ctx.workflow}): "
            f"this execution repeats the step and keeps that commit (model version {winner['model']['versionId']})"
        )
        return winner


def training_scalars(manifest: dict[str, Any]) -> dict[str, float]:
    """What TensorBoard shows of a committed round: training metrics over the contributing edges and
    per edge, the examples, how many edges contributed and sat out, and ε spent when DP is on."""
    scalars: dict[str, float] = {
        "edges/contributing": len(manifest["contributors"]),
        "edges/missing": len(manifest["missing"]),
        "edges/late": sum(1 for u in manifest.get("lateUpdates") or [] if u["used"]),
        "examples": manifest["examples"],
    }
    for name, value in (manifest.get("metrics") or {}).items():
        scalars[name.replace("train_", "train/", 1)] = value
    for contributor in manifest["contributors"]:
        for name, value in (contributor.get("metrics") or {}).items():
            scalars[f"edge/{contributor['edge']}/{name}"] = value
        scalars[f"edge/{contributor['edge']}/examples"] = contributor["examples"]
    epsilon = (manifest.get("privacy") or {}).get("epsilon")
    if epsilon is not None:
        scalars["privacy/epsilon"] = epsilon
    return scalars


def run(argv: list[str]) -> int:
    parser = StepContext.parser(Step.AGGREGATE)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(Flag.EDGES, help="JSON list of the round's edges (names or {name: ...})")
    source.add_argument(Flag.EDGES_FILE, type=Path, help="file holding that JSON list")
    args = parser.parse_args(argv)
    ctx = StepContext.from_args(args)
    text = args.edges if args.edges is not None else args.edges_file.read_text()
    edges = [e["name"] if isinstance(e, dict) else str(e) for e in json.loads(text)]
    quorum = int(ctx.config.get("quorum", 1))
    manifest = aggregate(ctx, edges, quorum)
    registry = ctx.registry()
    write_round_events(
        registry.client, registry.bucket, ctx.task, ctx.round, "aggregate", training_scalars(manifest)
    )
    ctx.output(Outputs.MODEL_VERSION, manifest["model"]["versionId"] or "")
    ctx.output(Outputs.CONTRIBUTORS, str(len(manifest["contributors"])))
    ctx.output(Outputs.MISSING, json.dumps([m["edge"] for m in manifest["missing"]]))
    ctx.output(Outputs.MISSING_COUNT, str(len(manifest["missing"])))
    for m in manifest["missing"]:
        print(f"edge {m['edge']} sat round {ctx.round} out: {m['reason']}")
    for u in manifest.get("lateUpdates") or []:
        what = (
            f"used (staleness {u['staleness']}, weight {u['weight']:.4g})"
            if u["used"]
            else f"dropped: {u['reason']}"
        )
        print(f"edge {u['edge']}'s late update trained in round {u['trainedRound']}: {what}")
    algorithm = manifest["aggregation"].get("algorithm", "fedavg")
    print(
        f"round {ctx.round}: aggregated {len(manifest['contributors'])}/{len(edges)} updates "
        f"({manifest['examples']} examples) with {algorithm}, committed "
        f"s3://{layout.MODELS_BUCKET}/{manifest['model']['key']} version {manifest['model']['versionId']}"
    )
    privacy = manifest.get("privacy")
    if privacy:
        epsilon = "unbounded" if privacy["epsilon"] is None else f"{privacy['epsilon']:.4g}"
        print(
            f"privacy spent after {privacy['rounds']} round(s): epsilon {epsilon} at delta {privacy['delta']:g} "
            f"(noise multiplier {privacy['noiseMultiplier']:.4g})"
        )
    return 0


__all__ = ["AggregationError", "QuorumError", "aggregate", "run"]
