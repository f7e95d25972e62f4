"""The steps of a secure-aggregation round (``aggregation.secure: true``), around :mod:`edgefed.steps.secagg`.

The round Workflow gets three more edge fan-outs and three small cloud steps; the server's part is
Bonawitz et al.'s relaying, done through the store::

    edge (fan-out): validate ──► secagg-keys   public keys to the cloud; secrets to the edge's OWN store
    secagg-roster --phase=keys                 (cloud) the roster: who advertised, their keys, threshold t
    secagg-share (fan-out)                     each edge's secrets, Shamir-shared, one ciphertext per edge
    secagg-roster --phase=shares               (cloud) each edge's inbox of ciphertexts; who shared
    train (fan-out)                            trains as ever, sends ONLY its masked input
    secagg-roster --phase=masked               (cloud) who survived: sent a masked input
    secagg-unmask (fan-out)                    the shares that remove the masks of the survivors' sum
    aggregate                                  (cloud) sums, unmasks, aggregates the mean, commits

Every message lives in :data:`~edgefed.steps.layout.SECAGG_BUCKET` and is written once (``If-None-Match``):
a retried step resends what it sent, never something else, and an edge never answers two different
survivor lists (which could reveal both halves of one edge's masks). An edge that cannot take part in a
phase (its data failed its check, it dropped earlier) sits the rest of the round out without replacing
the reason it first gave.

What the cloud learns: the sum of the survivors' weighted updates ``Σ c_u (w_u - w_global)`` (fixed point),
their example counts and training metrics (as in every round), never one edge's update. Every update is
screened by its own edge before it is masked (finite values, ``maxUpdateNorm``): the aggregator cannot.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from minio import Minio

from edgefed.steps import codec, layout
from edgefed.steps.context import StepContext
from edgefed.steps.interface import Flag, Step, StepExit
from edgefed.steps.registry import LoadedModel
from edgefed.steps.secagg import (
    DEFAULT_THRESHOLD,
    EdgeSecrets,
    Response,
    Roster,
    SecAggError,
    decode,
    decrypt_shares,
    encode,
    encrypt_shares,
    mask,
    recover,
    respond,
    unmask,
)
from edgefed.steps.store import (
    DataUnavailableError,
    Endpoint,
    ObjectExistsError,
    StepError,
    client_from_env,
    exists,
    get_bytes,
    put_bytes,
)

__all__ = [
    "PHASES",
    "SatOutError",
    "SecureSum",
    "enabled",
    "masked_input",
    "run_secagg_keys",
    "run_secagg_roster",
    "run_secagg_share",
    "run_secagg_unmask",
    "secure_sum",
    "sharers_of",
]

PHASES = ("keys", "shares", "masked")
#: Objects fetched at once when a step reads one message of every edge.
FETCHERS = 8


class SatOutError(StepError):
    """This edge does not take part in the rest of the secure round (it gave its reason earlier, or
    the roster left it out): nothing to retry, and its first reason stays the one recorded."""

    exit_code = StepExit.DATA_UNAVAILABLE
    report = False


class ProtocolError(StepError):
    """The secure round cannot go on (too few edges left, a message that breaks the protocol)."""


def enabled(config: Mapping[str, Any]) -> bool:
    """Whether the task's rounds aggregate securely."""
    return bool((config.get("aggregation") or {}).get("secure"))


def _context(ctx: StepContext) -> str:
    return f"{ctx.task}/{ctx.round}/{ctx.workflow}"


def _edge_key(ctx: StepContext, edge: str, name: str) -> str:
    return layout.secagg_edge_key(edge, ctx.task, ctx.round, ctx.workflow, name)


def _server_key(ctx: StepContext, name: str) -> str:
    return layout.secagg_server_key(ctx.task, ctx.round, ctx.workflow, name)


def _write_once(client: Minio, bucket: str, key: str, data: bytes, *, same: bool = False) -> bytes:
    """Write ``data`` unless the object exists; returns what the object holds (the first write wins).
    ``same``: a different existing object is a :class:`ProtocolError` (a message is sent once)."""
    try:
        put_bytes(client, bucket, key, data, content_type="application/octet-stream", if_absent=True)
        return data
    except ObjectExistsError:
        existing = get_bytes(client, bucket, key)
        if same and existing != data:
            raise ProtocolError(f"s3://{bucket}/{key} was already sent with other content") from None
        return existing


def _publish(ctx: StepContext, cloud: Minio, name: str, doc: Any) -> Any:
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return json.loads(_write_once(cloud, layout.SECAGG_BUCKET, _server_key(ctx, name), data))


def _server_doc(ctx: StepContext, cloud: Minio, name: str, *, edge: str | None = None) -> Any:
    try:
        return json.loads(get_bytes(cloud, layout.SECAGG_BUCKET, _server_key(ctx, name)))
    except DataUnavailableError:
        if edge is None:
            raise ProtocolError(f"the secure round has no {name} (did its earlier phase run?)") from None
        raise SatOutError(f"the secure round published no {name}: edge {edge} sits it out") from None


def _read_each(client: Minio, keys: Mapping[str, str]) -> dict[str, bytes]:
    """``{edge: bytes}`` of the objects that exist among ``keys`` (``{edge: key}`` in the secagg bucket)."""

    def fetch(item: tuple[str, str]) -> tuple[str, bytes | None]:
        try:
            return item[0], get_bytes(client, layout.SECAGG_BUCKET, item[1])
        except DataUnavailableError:
            return item[0], None

    with ThreadPoolExecutor(max_workers=FETCHERS, thread_name_prefix="edgefed-secagg") as pool:
        return {e: data for e, data in pool.map(fetch, keys.items()) if data is not None}


# -- the edge's own secrets ---------------------------------------------------------------------------
def _site(args: argparse.Namespace) -> Minio:
    return client_from_env(Endpoint.parse(args.dataset_store), site=True)


def _secrets(ctx: StepContext, site: Minio, edge: str) -> EdgeSecrets:
    try:
        return EdgeSecrets.from_bytes(
            get_bytes(
                site, layout.edge_bucket(edge), layout.secagg_secrets_key(ctx.task, ctx.round, ctx.workflow)
            )
        )
    except DataUnavailableError:
        raise SatOutError(
            f"edge {edge} holds no secrets for this secure round (its keys step did not run)"
        ) from None


# -- the steps ----------------------------------------------------------------------------------------
def _edge_step(step: str, argv: list[str]) -> tuple[StepContext, argparse.Namespace]:
    args = StepContext.parser(step, at_edge=True).parse_args(argv)
    return StepContext.from_args(args), args


def run_secagg_keys(argv: list[str]) -> int:
    """At an edge whose data passed its check: draw this round's secrets, keep them in the edge's own store,
    advertise the public keys."""
    ctx, args = _edge_step(Step.SECAGG_KEYS, argv)
    site, cloud = _site(args), ctx.cloud()
    with ctx.reporting_failures(cloud, args.edge):
        fresh = EdgeSecrets.generate()
        kept = EdgeSecrets.from_bytes(
            _write_once(
                site,
                layout.edge_bucket(args.edge),
                layout.secagg_secrets_key(ctx.task, ctx.round, ctx.workflow),
                fresh.to_bytes(),
            )
        )  # a retried step keeps the secrets its first run drew
        message = json.dumps({"edge": args.edge, "keys": kept.public()}, sort_keys=True).encode()
        _write_once(cloud, layout.SECAGG_BUCKET, _edge_key(ctx, args.edge, "keys.json"), message, same=True)
    print(f"edge {args.edge} round {ctx.round}: advertised its secure-aggregation keys")
    return 0


def run_secagg_share(argv: list[str]) -> int:
    """At an edge in the roster: Shamir-share its self-mask seed and mask key, one ciphertext per edge."""
    ctx, args = _edge_step(Step.SECAGG_SHARE, argv)
    site, cloud = _site(args), ctx.cloud()
    roster = Roster.from_json(_server_doc(ctx, cloud, "roster.json", edge=args.edge))
    if args.edge not in roster.keys:
        raise SatOutError(f"edge {args.edge} is not in the secure round's roster (it advertised no keys)")
    with ctx.reporting_failures(cloud, args.edge):
        own = _secrets(ctx, site, args.edge)
        shares = encrypt_shares(args.edge, own, roster)
        message = json.dumps({"edge": args.edge, "shares": shares}, sort_keys=True).encode()
        # fresh shares differ from a first run's: written once, a retry keeps the first
        _write_once(cloud, layout.SECAGG_BUCKET, _edge_key(ctx, args.edge, "shares.json"), message)
    print(f"edge {args.edge} round {ctx.round}: sent its key shares to {len(roster.keys)} edges")
    return 0


def sharers_of(ctx: StepContext, cloud: Minio, edge: str) -> tuple[Roster, list[str]]:
    """The roster and the edges that shared; :class:`SatOutError` when ``edge`` is not among them."""
    roster = Roster.from_json(_server_doc(ctx, cloud, "roster.json", edge=edge))
    sharers = _server_doc(ctx, cloud, "sharers.json", edge=edge)["edges"]
    if edge not in sharers:
        raise SatOutError(f"edge {edge} did not share its keys in time: it sits the secure round out")
    return roster, sharers


def _flat(weights: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(w, dtype=np.float64).ravel() for w in weights])


def masked_input(
    ctx: StepContext,
    site: Minio,
    edge: str,
    parent: list[np.ndarray],
    weights: list[np.ndarray],
    meta: dict[str, Any],
    *,
    roster: Roster,
    sharers: list[str],
) -> bytes:
    """The only thing a secure round's edge sends of its training: ``mask(encode(c (w - w_parent)))``
    (``c``: its example count, or 1 when the aggregation is unweighted), screened here first."""
    aggregation = ctx.config.get("aggregation") or {}
    delta = _flat(weights) - _flat(parent)
    if not np.isfinite(delta).all():
        raise StepError(f"edge {edge}: its update has values that are not finite numbers; it sends none")
    limit = aggregation.get("maxUpdateNorm")
    norm = float(np.linalg.norm(delta))
    if limit is not None and norm > float(limit):
        raise StepError(
            f"edge {edge}: its update's norm {norm:.4g} exceeds maxUpdateNorm {limit:g}; it sends none"
        )
    weight = float(meta["examples"]) if aggregation.get("weighted", True) else 1.0
    try:
        encoded = encode(weight * delta, roster, len(sharers))
    except SecAggError as err:
        raise StepError(f"edge {edge}: {err}") from None
    masked = mask(encoded, edge, _secrets(ctx, site, edge), roster, sharers)
    return codec.encode([masked], {**meta, "masked": True, "weight": weight, "size": int(delta.size)})


def send_masked_input(ctx: StepContext, cloud: Minio, edge: str, data: bytes) -> None:
    _write_once(cloud, layout.SECAGG_BUCKET, _edge_key(ctx, edge, "masked.npz"), data)


def run_secagg_unmask(argv: list[str]) -> int:
    """At a surviving edge: the shares that remove the survivors' self masks and the dropped edges'
    pairwise masks (never both of one edge), written once for this survivor list."""
    ctx, args = _edge_step(Step.SECAGG_UNMASK, argv)
    site, cloud = _site(args), ctx.cloud()
    roster, sharers = sharers_of(ctx, cloud, args.edge)
    survivors = _server_doc(ctx, cloud, "survivors.json", edge=args.edge)["edges"]
    if args.edge not in survivors:
        raise SatOutError(f"edge {args.edge} sent no masked input: it does not answer the unmasking")
    with ctx.reporting_failures(cloud, args.edge):
        inbox = json.loads(
            get_bytes(cloud, layout.SECAGG_BUCKET, _server_key(ctx, f"inbox/{args.edge}.json"))
        )
        if sorted(inbox) != sorted(sharers):
            raise ProtocolError(
                f"edge {args.edge}'s inbox holds shares of {sorted(inbox)}, the sharers are {sharers}"
            )
        try:
            received = decrypt_shares(args.edge, _secrets(ctx, site, args.edge), roster, inbox)
            response = respond(args.edge, received, sharers, survivors)
        except SecAggError as err:
            raise ProtocolError(f"edge {args.edge}: {err}") from None
        key = _edge_key(ctx, args.edge, "unmask.json")
        data = json.dumps(response.to_json(), sort_keys=True).encode()
        sent = Response.from_json(json.loads(_write_once(cloud, layout.SECAGG_BUCKET, key, data)))
        if sorted(sent.survivors) != sorted(survivors):
            raise ProtocolError(
                f"edge {args.edge} already answered for other survivors: it answers one survivor list only"
            )
    print(f"edge {args.edge} round {ctx.round}: answered the unmasking of {len(survivors)} survivors")
    return 0


def run_secagg_roster(argv: list[str]) -> int:
    """In the cloud, between the edges' phases: publish who takes part next (and relay the shares)."""
    parser = StepContext.parser(Step.SECAGG_ROSTER)
    parser.add_argument(Flag.PHASE, choices=PHASES, required=True)
    parser.add_argument(Flag.EDGES_FILE, type=Path, required=True, help="JSON list of the round's edges")
    args = parser.parse_args(argv)
    ctx = StepContext.from_args(args)
    edges = [e["name"] if isinstance(e, dict) else str(e) for e in json.loads(args.edges_file.read_text())]
    cloud = ctx.cloud()
    try:
        message = {"keys": _roster_phase, "shares": _shares_phase, "masked": _masked_phase}[args.phase](
            ctx, cloud, edges
        )
    except SecAggError as err:
        raise ProtocolError(
            f"secure round {ctx.round} of {ctx.task!r}: {err}. No model version is committed."
        ) from None
    print(f"secure round {ctx.round}: {message}")
    return 0


def _roster_phase(ctx: StepContext, cloud: Minio, edges: list[str]) -> str:
    found = _read_each(cloud, {e: _edge_key(ctx, e, "keys.json") for e in edges})
    keys = {e: json.loads(data)["keys"] for e, data in found.items()}
    aggregation = ctx.config.get("aggregation") or {}
    roster = Roster.build(
        _context(ctx), keys, fraction=float(aggregation.get("secureThreshold") or DEFAULT_THRESHOLD)
    )
    roster = Roster.from_json(_publish(ctx, cloud, "roster.json", roster.to_json()))
    return f"{len(roster.keys)} of {len(edges)} edges advertised keys; any {roster.threshold} unmask the sum"


def _shares_phase(ctx: StepContext, cloud: Minio, edges: list[str]) -> str:
    roster = Roster.from_json(_server_doc(ctx, cloud, "roster.json"))
    found = _read_each(cloud, {e: _edge_key(ctx, e, "shares.json") for e in roster.edges})
    sent = {e: json.loads(data)["shares"] for e, data in found.items()}
    sharers = sorted(e for e, shares in sent.items() if sorted(shares) == roster.edges)
    if len(sharers) < roster.threshold:
        raise SecAggError(f"{len(sharers)} edge(s) sent their shares, {roster.threshold} needed")
    with ThreadPoolExecutor(max_workers=FETCHERS, thread_name_prefix="edgefed-secagg") as pool:
        list(
            pool.map(
                lambda v: _publish(ctx, cloud, f"inbox/{v}.json", {u: sent[u][v] for u in sharers}), sharers
            )
        )
    published = _publish(ctx, cloud, "sharers.json", {"edges": sharers})["edges"]
    return f"{len(published)} of {len(roster.keys)} edges shared their keys; inboxes relayed"


def _masked_phase(ctx: StepContext, cloud: Minio, edges: list[str]) -> str:
    roster = Roster.from_json(_server_doc(ctx, cloud, "roster.json"))
    sharers = _server_doc(ctx, cloud, "sharers.json")["edges"]
    with ThreadPoolExecutor(max_workers=FETCHERS, thread_name_prefix="edgefed-secagg") as pool:
        present = list(
            pool.map(lambda e: exists(cloud, layout.SECAGG_BUCKET, _edge_key(ctx, e, "masked.npz")), sharers)
        )
    survivors = [e for e, there in zip(sharers, present, strict=True) if there]
    if len(survivors) < roster.threshold:
        raise SecAggError(
            f"{len(survivors)} edge(s) sent a masked input, {roster.threshold} needed to unmask"
        )
    survivors = _publish(ctx, cloud, "survivors.json", {"edges": survivors})["edges"]
    dropped = sorted(set(sharers) - set(survivors))
    return f"{len(survivors)} of {len(sharers)} edges sent a masked input" + (
        f"; dropped after sharing: {', '.join(dropped)}" if dropped else ""
    )


# -- the aggregate's part ----------------------------------------------------------------------------
@dataclass
class SecureSum:
    """What the aggregate learns from a secure round: the weighted mean of the survivors' models, their
    records (no update of theirs), who sat out and why, and the protocol's report for the manifest."""

    point: list[np.ndarray]
    weight: float
    contributors: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    update_bytes: int = 0


def _sat_out_reason(edge: str, roster: Roster, sharers: list[str], reported: str | None) -> str:
    if reported is not None:
        return reported
    if edge not in roster.keys:
        return "advertised no secure-aggregation keys (its keys step did not finish)"
    if edge not in sharers:
        return "sent no key shares in time"
    return (
        "dropped after sharing: sent no masked input; the masks it shared were removed "
        "with the other edges' shares of its key"
    )


def secure_sum(
    ctx: StepContext,
    cloud: Minio,
    edges: list[str],
    parent: LoadedModel,
    missing_reason: Callable[[str], str | None],
) -> SecureSum:
    """Sum the survivors' masked inputs, remove the masks from ``t`` unmasking answers, decode: the
    weighted mean of their models. ``missing_reason(edge)``: what an edge reported, or None."""
    started = time.perf_counter()
    roster = Roster.from_json(_server_doc(ctx, cloud, "roster.json"))
    sharers = _server_doc(ctx, cloud, "sharers.json")["edges"]
    survivors = _server_doc(ctx, cloud, "survivors.json")["edges"]
    inputs = _read_each(cloud, {e: _edge_key(ctx, e, "masked.npz") for e in survivors})
    answers = _read_each(cloud, {e: _edge_key(ctx, e, "unmask.json") for e in survivors})
    shapes = [w.shape for w in parent.weights]
    size = sum(int(np.prod(s)) for s in shapes)
    total = np.zeros(size, dtype=np.uint64)
    result = SecureSum(point=[], weight=0.0)
    for edge in survivors:
        if edge not in inputs:
            raise ProtocolError(f"survivor {edge}'s masked input is gone from the store")
        (masked,), meta = codec.decode_views(inputs[edge])
        if meta.get("parentSha256") != parent.manifest["model"]["sha256"] or masked.shape != (size,):
            # its masks are in the sum already: it cannot be left out now, so the round cannot commit
            raise ProtocolError(
                f"edge {edge}'s masked input does not fit the round's parent model ({masked.shape[0]} values, "
                f"{size} expected, or another parent)"
            )
        total += masked
        result.weight += float(meta["weight"])
        result.update_bytes += len(inputs[edge])
        result.contributors.append(
            {
                "edge": edge,
                "examples": int(meta["examples"]),
                "sha256": codec.sha256(inputs[edge]),
                "update": f"s3://{layout.SECAGG_BUCKET}/{_edge_key(ctx, edge, 'masked.npz')}",
                "masked": True,
                "metrics": meta.get("metrics", {}),
                "dataset": meta.get("dataset"),
            }
        )
    responses = [Response.from_json(json.loads(answers[e])) for e in sorted(answers)]
    try:
        self_seeds, mask_keys = recover(roster, sharers, survivors, responses)
    except SecAggError as err:
        raise ProtocolError(str(err)) from None
    summed = decode(unmask(total, roster, survivors, self_seeds, mask_keys), roster)
    if result.weight <= 0:
        raise ProtocolError("the survivors' weights sum to 0: nothing to average")
    mean = summed / result.weight
    offsets = np.cumsum([0] + [int(np.prod(s)) for s in shapes])
    result.point = [
        (w.astype(np.float64) + mean[a:b].reshape(w.shape)).astype(w.dtype)
        for w, a, b in zip(parent.weights, offsets[:-1], offsets[1:], strict=True)
    ]
    result.missing = [
        {"edge": e, "reason": _sat_out_reason(e, roster, sharers, missing_reason(e))}
        for e in edges
        if e not in survivors
    ]
    result.report = {
        "protocol": "secagg (Bonawitz et al. 2017), semi-honest",
        "threshold": roster.threshold,
        "advertised": len(roster.keys),
        "shared": len(sharers),
        "survivors": len(survivors),
        "answers": len(responses),
        "droppedAfterSharing": sorted(mask_keys),
        "fractionBits": roster.fraction_bits,
        # each input is rounded to 2^-(f+1) at most per value: the bound on the mean's error
        "maxEncodingError": len(survivors) * 2.0 ** -(roster.fraction_bits + 1) / result.weight,
        "seconds": time.perf_counter() - started,
    }
    return result
