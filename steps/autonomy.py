"""Edge autonomy: an edge that cannot reach the cloud store still checks its data and trains, keeps the
update in its own site's store, and delivers it the next round it reaches the cloud.

The spec's ``autonomy`` section (``ctx.config["autonomy"]``) turns it on; a secure round never works offline
(an edge's update may leave it only masked, inside the protocol), and a task config without the section (a
document written before it existed) behaves as before: the edge sits the round out.

At the edge, in its OWN bucket (:func:`~edgefed.steps.layout.autonomy_prefix`), only the site identity's
rights (read, list, write; never delete):

* ``parent.npz``: the last global model the edge received, its round and SHA-256 in the object's metadata;
  every online train step refreshes it, an offline one trains from it;
* ``outbox/round-NNNNN.npz``: an update trained offline (or trained online when the cloud went away before
  the update reached it), with ``.verdict.json`` (the contract verdict the validate step could not send),
  ``.delivery.json`` (round and workflow it was last sent in) and ``.done.json`` (what became of it).

Delivery, exactly once: an online train step sends each pending entry to
:func:`~edgefed.steps.layout.late_update_key` under its own prefix of the updates bucket and names it in its
own update's ``late`` list; the aggregate reads only late updates an update names, uses or drops each by the
spec's rule and records it in the round's manifest (``lateUpdates``). The manifest is the one record of
consumption: a later train step closes an entry (``.done.json``) once the manifest of the round it was sent in
names it, and sends it again otherwise (that round failed, or the edge's own update never arrived), so an
entry is neither lost nor counted twice. The aggregate side (:func:`add_late_updates`) applies a late update
as its change from the model it was trained from, added to the round's global model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import urllib3
from minio import Minio
from minio.error import S3Error

from edgefed.steps import codec, layout
from edgefed.steps.aggregators.kernels import shape_problem
from edgefed.steps.registry import ModelRegistry
from edgefed.steps.store import (
    DataUnavailableError,
    StepError,
    client_from_env,
    get_bytes,
    get_object,
    put_bytes,
    put_json,
    utc_now,
)

__all__ = [
    "Outbox",
    "Parent",
    "Unreachable",
    "add_late_updates",
    "cloud_client",
    "keep_parent",
    "load_parent",
    "parent_ref",
    "settings",
    "works_offline",
]

#: The cloud's answer never came (refused, reset, timed out, after the client's retries).
Unreachable = urllib3.exceptions.HTTPError

_ENTRY = re.compile(r"round-(\d{5,})\.(npz|verdict\.json|delivery\.json|done\.json)$")


def settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The task's ``autonomy`` section ({} when its config has none: autonomy off)."""
    return dict(config.get("autonomy") or {})


def works_offline(config: Mapping[str, Any]) -> bool:
    """Whether an edge of this task trains when the cloud is out of reach (not in a secure round)."""
    return bool(settings(config).get("enabled")) and not (config.get("aggregation") or {}).get("secure")


def cloud_client(ctx: Any) -> Minio:
    """The cloud client of an edge step: one that gives up after ``cloudWaitSeconds`` when the edge may work
    offline, the step's usual one (``STORE_RETRY``) otherwise."""
    if not works_offline(ctx.config):
        return ctx.cloud()
    return client_from_env(ctx.store, wait_seconds=float(settings(ctx.config).get("cloudWaitSeconds", 30)))


@dataclass(frozen=True)
class Parent:
    """A global model as an edge trains from it: its round, weights and SHA-256."""

    round: int
    weights: list[np.ndarray]
    sha256: str


def parent_ref(text: str | None, round_: int) -> dict[str, Any] | None:
    """The train step's ``--parent`` (the plan's ``parent`` output) when it names round ``round_``'s model;
    None when it is empty or names another round (the step then reads the round's manifest)."""
    if not text:
        return None
    try:
        ref = json.loads(text)
    except ValueError:
        raise StepError(f"--parent: not JSON: {text[:80]!r}") from None
    if not isinstance(ref, dict) or not {"round", "key", "sha256"} <= set(ref):
        raise StepError(f"--parent: expected an object with round, key and sha256, got {text[:120]!r}")
    return ref if int(ref["round"]) == round_ else None


def load_parent(ctx: Any, cloud: Minio, ref: dict[str, Any] | None = None) -> tuple[Parent, bytes]:
    """The round's parent from the cloud registry and its bytes (for :func:`keep_parent`), checked against the
    SHA-256 that ``ref`` (:func:`parent_ref`) names, else its manifest's. Raises :data:`Unreachable` from the
    cloud."""
    registry = ModelRegistry(cloud)
    if ref is None:
        ref = registry.manifest(ctx.task, ctx.round - 1)["model"]
    data = registry.verified_object(ref, f"model of round {ctx.round - 1} of {ctx.task!r}")
    weights, _ = codec.decode(data)
    return Parent(ctx.round - 1, weights, ref["sha256"]), data


def keep_parent(site: Minio, edge: str, task: str, parent: Parent, data: bytes) -> None:
    """Keep ``parent`` (its bytes ``data``) as the edge's copy for a round it cannot reach the cloud."""
    put_bytes(
        site,
        layout.edge_bucket(edge),
        layout.site_parent_key(task),
        data,
        metadata={"round": str(parent.round), "sha256": parent.sha256},
    )


def site_parent(site: Minio, edge: str, task: str) -> Parent | None:
    """The edge's copy of the last global model it received, None when it has none."""
    try:
        read = get_object(site, layout.edge_bucket(edge), layout.site_parent_key(task))
    except DataUnavailableError:
        return None
    # get_object keeps no user metadata; a stat gives it (a second request, made only on an offline round)
    described = site.stat_object(layout.edge_bucket(edge), layout.site_parent_key(task))
    meta = {k.lower().removeprefix("x-amz-meta-"): v for k, v in (described.metadata or {}).items()}
    sha = codec.sha256(read.data)
    if meta.get("sha256") != sha:
        raise StepError(
            f"s3://{layout.edge_bucket(edge)}/{layout.site_parent_key(task)}: the edge's copy of the global "
            f"model is corrupt (SHA-256 {sha}, recorded {meta.get('sha256')})"
        )
    weights, _ = codec.decode(read.data)
    return Parent(int(meta["round"]), weights, sha)


class Outbox:
    """The updates ``edge`` trained for ``task`` that the cloud does not have yet, in its own site's store."""

    def __init__(self, site: Minio, edge: str, task: str) -> None:
        self.site, self.edge, self.task = site, edge, task
        self.bucket = layout.edge_bucket(edge)

    def url(self, trained_round: int, kind: str = "npz") -> str:
        return f"s3://{self.bucket}/{layout.outbox_key(self.task, trained_round, kind)}"

    def keep(self, trained_round: int, data: bytes) -> None:
        """Keep an update trained in ``trained_round`` until the cloud has it."""
        put_bytes(self.site, self.bucket, layout.outbox_key(self.task, trained_round), data)

    def keep_verdict(self, trained_round: int, document: dict[str, Any]) -> None:
        put_json(self.site, self.bucket, layout.outbox_key(self.task, trained_round, "verdict"), document)

    def verdict(self, trained_round: int) -> dict[str, Any] | None:
        return self._record(trained_round, "verdict")

    def _record(self, trained_round: int, kind: str) -> dict[str, Any] | None:
        try:
            return json.loads(
                get_bytes(self.site, self.bucket, layout.outbox_key(self.task, trained_round, kind))
            )
        except DataUnavailableError:
            return None

    def pending(self) -> list[int]:
        """Trained rounds of the entries not closed yet, oldest first (one listing of the outbox)."""
        kinds: dict[int, set[str]] = {}
        try:
            for obj in self.site.list_objects(self.bucket, prefix=layout.outbox_prefix(self.task)):
                match = _ENTRY.search(obj.object_name)
                if match:
                    kinds.setdefault(int(match.group(1)), set()).add(match.group(2).split(".")[0])
        except S3Error as err:
            raise StepError(
                f"cannot list s3://{self.bucket}/{layout.outbox_prefix(self.task)}: {err.code}"
            ) from None
        return sorted(r for r, found in kinds.items() if "npz" in found and "done" not in found)

    def close(self, trained_round: int, record: dict[str, Any]) -> None:
        """Record what became of an entry; it is not sent again (the entry itself stays, as the edge's record)."""
        put_json(
            self.site,
            self.bucket,
            layout.outbox_key(self.task, trained_round, "done"),
            {
                **record,
                "edge": self.edge,
                "task": self.task,
                "trainedRound": trained_round,
                "closed": utc_now(),
            },
        )

    def deliver(self, ctx: Any, cloud: Minio, pending: list[int] | None = None) -> list[int]:
        """Send every pending entry (``pending``: :meth:`pending`'s answer, when already asked) as a late update
        of this round; returns their trained rounds (the edge's update names them). Entries a committed round
        already recorded are closed instead."""
        sent: list[int] = []
        registry = ModelRegistry(cloud)
        for trained in self.pending() if pending is None else pending:
            if trained >= ctx.round:  # trained offline in an earlier attempt of this very round
                self.close(
                    trained, {"supersededBy": f"round {ctx.round}'s training with the cloud reachable"}
                )
                print(
                    f"edge {self.edge}: the update it kept for round {trained} is superseded by this round's"
                )
                continue
            delivery = self._record(trained, "delivery")
            if delivery and int(delivery["round"]) < ctx.round:
                recorded = consumed(registry, self.task, int(delivery["round"]), self.edge, trained)
                if recorded is not None:
                    self.close(trained, {"consumedIn": int(delivery["round"]), **recorded})
                    continue
            data = get_bytes(self.site, self.bucket, layout.outbox_key(self.task, trained))
            put_json(
                self.site,
                self.bucket,
                layout.outbox_key(self.task, trained, "delivery"),
                {"round": ctx.round, "workflow": ctx.workflow, "sent": utc_now()},
            )
            key = layout.late_update_key(self.edge, ctx.task, ctx.round, ctx.workflow, trained)
            put_bytes(cloud, layout.UPDATES_BUCKET, key, data)
            sent.append(trained)
            print(
                f"edge {self.edge} round {ctx.round}: delivered the update it trained in round {trained} "
                f"while the cloud was out of reach (s3://{layout.UPDATES_BUCKET}/{key})"
            )
        return sent


def consumed(
    registry: ModelRegistry, task: str, round_: int, edge: str, trained: int
) -> dict[str, Any] | None:
    """What round ``round_``'s manifest records of ``edge``'s late update trained in ``trained``; None when the
    round is not committed or does not name it (so it was never counted)."""
    try:
        manifest = registry.manifest(task, round_)
    except DataUnavailableError:
        return None
    for record in manifest.get("lateUpdates") or []:
        if record.get("edge") == edge and record.get("trainedRound") == trained:
            return {
                "used": bool(record.get("used")),
                **({"reason": record["reason"]} if "reason" in record else {}),
            }
    return None


def add_late_updates(
    ctx: Any,
    client: Minio,
    registry: ModelRegistry,
    strategy: Any,
    parent: Any,
    named: list[tuple[str, list[int]]],
) -> tuple[list[dict[str, Any]], int]:
    """Fold in the late updates the round's updates name (``(edge, [trained round, ...])``), by the spec's rule;
    returns the manifest's ``lateUpdates`` records and the bytes read. ``parent``: the round's parent model.

    A used late update enters the strategy as ``w_parent + (w - w_base)``, ``w_base`` the committed model it
    was trained from, weighted by ``examples * (1 + staleness) ** -stalenessExponent``; the strategy screens it
    as any update. Dropped: ``lateUpdates: drop``, more than ``maxStaleness`` versions behind, DP-FedAvg (an
    edge contributes once a round: the privacy ledger counts no second contribution), not trained from a
    committed model of the task, or already counted (the edge's update of that round did arrive)."""
    from edgefed.steps.strategies import DPFedAvg, UpdateRejectedError

    rules = settings(ctx.config)
    algorithm = (ctx.config.get("aggregation") or {}).get("algorithm", "fedavg")
    records: list[dict[str, Any]] = []
    read = 0
    bases: dict[int, list[np.ndarray]] = {}
    for edge, rounds in named:
        for trained in rounds:
            key = layout.late_update_key(edge, ctx.task, ctx.round, ctx.workflow, int(trained))
            record: dict[str, Any] = {
                "edge": edge,
                "trainedRound": int(trained),
                "update": f"s3://{layout.UPDATES_BUCKET}/{key}",
                "used": False,
            }
            records.append(record)
            try:
                data = get_bytes(client, layout.UPDATES_BUCKET, key)
                weights, meta = codec.decode_views(data)
            except DataUnavailableError:
                record["reason"] = "named by the edge's update but not in the store"
                continue
            except codec.CodecError as err:
                record["reason"] = f"unreadable update ({err})"
                continue
            read += len(data)
            base_round = int(meta.get("parentRound", -1))
            staleness = parent.round - base_round
            examples = int(meta.get("examples", 0))
            record.update(
                sha256=codec.sha256(data),
                parentRound=base_round,
                staleness=staleness,
                examples=examples,
                metrics=meta.get("metrics", {}),
                dataset=meta.get("dataset"),
            )
            if meta.get("verdict") is not None:
                record["verdict"] = meta["verdict"]
            reason = _drop_reason(rules, algorithm == DPFedAvg.name, meta, edge, int(trained), staleness)
            if reason is None:
                reason = _committed_problem(registry, ctx.task, edge, int(trained), base_round, meta)
            if reason is not None:
                record["reason"] = reason
                continue
            if base_round not in bases:
                bases[base_round] = registry.load(ctx.task, base_round).weights
            problem = shape_problem(weights, parent.weights)
            if problem is not None:
                record["reason"] = f"update rejected: {problem}"
                continue
            point = [
                (g + (np.asarray(w) - b)).astype(g.dtype, copy=False)
                for g, w, b in zip(parent.weights, weights, bases[base_round], strict=False)
            ]
            weight = examples * (1.0 + staleness) ** -float(rules.get("stalenessExponent", 0.5))
            try:
                strategy.add(point, weight, f"{edge}@round-{trained}")
            except UpdateRejectedError as err:
                record["reason"] = f"update rejected: {err}"
                continue
            record.update(used=True, weight=weight)
    return records, read


def _committed_problem(
    registry: ModelRegistry, task: str, edge: str, trained: int, base_round: int, meta: Mapping[str, Any]
) -> str | None:
    """Why the registry rules a late update out: not trained from a committed model of the task, or the
    edge's update of that round reached the cloud after all (an answer lost, not the request) and counted."""
    try:
        base = registry.manifest(task, base_round)
    except DataUnavailableError:
        base = None
    if base is None or base["model"]["sha256"] != meta.get("parentSha256"):
        return f"trained from a model that is not the task's committed round {base_round}"
    try:
        own = registry.manifest(task, trained)
    except DataUnavailableError:
        return None
    if any(c.get("edge") == edge for c in own.get("contributors") or []):
        return f"edge {edge}'s update of round {trained} reached the cloud in time and counted in that round"
    return None


def _drop_reason(
    rules: Mapping[str, Any], dp: bool, meta: Mapping[str, Any], edge: str, trained: int, staleness: int
) -> str | None:
    if meta.get("edge") != edge or meta.get("round") != trained:
        return f"the object is not edge {edge}'s update of round {trained}"
    if rules.get("lateUpdates", "use") == "drop":
        return "the task drops late updates (autonomy.lateUpdates: drop)"
    if dp:
        return "DP-FedAvg counts one contribution per edge and round: a late update would spend privacy unaccounted"
    limit = int(rules.get("maxStaleness", 3))
    if staleness > limit:
        return f"{staleness} global versions behind, more than autonomy.maxStaleness {limit}"
    return None
