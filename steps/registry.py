"""The versioned model bucket: committing global models with their lineage, and reading them back.

Commit protocol (S3 has no multi-object transaction, so the manifest is the commit record):

1. ``<task>/rounds/<R>/model.npz``: the immutable per-round model, and beside it, when the
   aggregation strategy carries state between rounds (server optimizer moments, the adaptive DP
   clip and privacy ledger), ``<task>/rounds/<R>/server-state.npz``.
2. ``<task>/rounds/<R>/manifest.json``: lineage (round, contributing and missing edges with reasons,
   example counts, update SHA-256s, workflow, parent version, metrics) naming the model object's
   (and the server state's) version id and SHA-256. **A round exists only once its manifest exists.**
3. ``<task>/latest.npz``: a new version of the task's ``latest`` object, whose metadata names the
   round and its manifest. It is written after the manifest, so ``latest`` never points at a
   round without one.

Readers find models and server states only through manifests (and verify the SHA-256), so an
interrupted commit leaves at most unreferenced objects, never a model without its manifest; the next
round reads the state its parent's manifest names, so a resumed task continues from exactly it. A round whose
manifest exists is never written again: :meth:`ModelRegistry.commit` refuses, and the store decides it in the
manifest's own write (``If-None-Match: *``), so of concurrent commits of one round exactly one wins and the
others are refused (:class:`RoundCommittedError`), leaving at most their unreferenced model versions.

No TensorFlow here: the control plane lists and inspects models through this module.
"""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from minio import Minio
from minio.error import S3Error
from minio.helpers import ObjectWriteResult

from edgefed.steps import codec, layout
from edgefed.steps.store import (
    DataUnavailableError,
    ObjectExistsError,
    StepError,
    exists,
    get_bytes,
    is_missing,
    put_bytes,
    stat,
    user_metadata,
    write_object,
)

_MANIFEST = re.compile(r"/rounds/(\d{5})/manifest\.json$")


class RoundCommittedError(StepError):
    """The round already has a manifest: committed rounds are never overwritten.

    ``winner``: the manifest that holds the round, when the refusal came from losing a race to it
    (None when the round was found committed before anything was written)."""

    def __init__(self, message: str, *, winner: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.winner = winner


@dataclass(frozen=True)
class LoadedModel:
    round: int
    weights: list[np.ndarray]
    manifest: dict[str, Any]


@dataclass(frozen=True)
class AuditedRound:
    """A committed round as :meth:`ModelRegistry.audit` found it: its manifest and what does not hold."""

    round: int
    manifest: dict[str, Any]
    problems: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        return not self.problems


def _missing_objects(manifest: dict[str, Any], listed: dict[str, list[Any]]) -> list[str]:
    """What of the objects ``manifest`` names the versioned listing does not show as committed."""
    problems = []
    for field, what in (("model", "model"), ("serverState", "server state")):
        ref = manifest.get(field)
        if not ref:
            continue
        found = next(
            (
                o
                for o in listed.get(ref["key"], [])
                if o.version_id == ref.get("versionId") and not o.is_delete_marker
            ),
            None,
        )
        if found is None:
            problems.append(f"the {what} version it names ({ref.get('versionId')}) is gone")
        elif found.size != ref.get("bytes", found.size):
            problems.append(f"the {what} has {found.size} bytes, the manifest says {ref['bytes']}")
        elif ref.get("etag") and (found.etag or "").strip('"') != ref["etag"]:
            problems.append(f"the {what}'s ETag {found.etag} is not the one committed ({ref['etag']})")
    return problems


class ModelRegistry:
    """Global models of every task in one versioned bucket."""

    def __init__(self, client: Minio, bucket: str = layout.MODELS_BUCKET) -> None:
        self.client = client
        self.bucket = bucket

    # -- reading ---------------------------------------------------------------------------
    def committed_rounds(self, task: str) -> list[int]:
        """Rounds whose manifest exists, ascending (round 0 is the initial model)."""
        rounds = []
        try:
            for obj in self.client.list_objects(
                self.bucket, prefix=layout.rounds_prefix(task), recursive=True
            ):
                match = _MANIFEST.search(obj.object_name)
                if match:
                    rounds.append(int(match.group(1)))
        except S3Error as err:
            if is_missing(err):
                return []
            raise StepError(
                f"cannot list s3://{self.bucket}/{layout.rounds_prefix(task)}: {err.code}"
            ) from None
        return sorted(rounds)

    def last_round(self, task: str) -> int | None:
        rounds = self.committed_rounds(task)
        return rounds[-1] if rounds else None

    def last_committed(self, task: str) -> int | None:
        """:meth:`last_round` in two or three requests however many rounds there are: the round the
        ``latest`` object's metadata names, then forward while a later manifest exists (a commit
        writes its manifest before ``latest``: a crash between the two leaves ``latest`` behind)."""
        latest = stat(self.client, self.bucket, layout.latest_key(task))
        if latest is None:
            return self.last_round(task)
        round_ = int(user_metadata(latest).get("x-amz-meta-round", "-1"))
        if round_ < 0:
            return self.last_round(task)
        while exists(self.client, self.bucket, layout.manifest_key(task, round_ + 1)):
            round_ += 1
        return round_

    def manifest(self, task: str, round_: int) -> dict[str, Any]:
        try:
            data = get_bytes(self.client, self.bucket, layout.manifest_key(task, round_))
        except DataUnavailableError:
            raise DataUnavailableError(
                f"task {task!r} has no committed round {round_} "
                f"(no s3://{self.bucket}/{layout.manifest_key(task, round_)})"
            ) from None
        return json.loads(data)

    def load(self, task: str, round_: int) -> LoadedModel:
        """The committed model of ``round_``, checked against the SHA-256 in its manifest."""
        manifest = self.manifest(task, round_)
        data = self.verified_object(manifest["model"], f"model of round {round_} of {task!r}")
        weights, _ = codec.decode(data)
        return LoadedModel(round_, weights, manifest)

    def model_bytes(self, task: str, round_: int) -> bytes:
        """The committed model file of ``round_`` as stored (``.npz``), checked against its SHA-256."""
        manifest = self.manifest(task, round_)
        return self.verified_object(manifest["model"], f"model of round {round_} of {task!r}")

    def server_state(self, manifest: dict[str, Any]) -> bytes | None:
        """The server-state bytes a round's manifest names (checked against its SHA-256), or None
        when the round has none (round 0, or a strategy without state)."""
        ref = manifest.get("serverState")
        if not ref:
            return None
        return self.verified_object(
            ref, f"server state of round {manifest.get('round')} of {manifest.get('task')!r}"
        )

    def verified_object(self, ref: dict[str, Any], what: str) -> bytes:
        """The object a manifest names (key, versionId, sha256), refused if its bytes do not match."""
        data = get_bytes(self.client, self.bucket, ref["key"], version_id=ref.get("versionId"))
        digest = codec.sha256(data)
        if digest != ref["sha256"]:
            raise StepError(
                f"{what} is corrupt: SHA-256 {digest} does not match the manifest's {ref['sha256']}"
            )
        return data

    def audit(self, task: str) -> list[AuditedRound]:
        """Every committed round of ``task`` as its commit recorded it, each checked against the store.

        One versioned listing of the task's rounds, then each round's manifest *as committed* (its first
        version: a later version would be a write after the commit, which the steps never make) and what
        the listing says of the objects it names: the model version still there with its size and ETag,
        the server state still there, no second manifest version, no delete marker over it."""
        listed: dict[str, list[Any]] = {}
        try:
            for obj in self.client.list_objects(
                self.bucket, prefix=layout.rounds_prefix(task), recursive=True, include_version=True
            ):
                listed.setdefault(obj.object_name, []).append(obj)
        except S3Error as err:
            if is_missing(err):
                return []
            raise StepError(
                f"cannot list the versions under s3://{self.bucket}/{layout.rounds_prefix(task)}: {err.code}"
            ) from None
        out = []
        for key, objects in listed.items():
            match = _MANIFEST.search(key)
            live = [o for o in objects if not o.is_delete_marker]
            if not match or not live:
                continue
            problems: list[str] = []
            if any(o.is_delete_marker and o.is_latest for o in objects):
                problems.append("its manifest is hidden behind a delete marker")
            if len(live) > 1:
                problems.append(
                    f"its manifest was written {len(live) - 1} more time(s) after the commit "
                    "(the commit's first version is shown)"
                )
            # versions are listed newest first: of equal times, the later in the listing is the older
            first = min(enumerate(live), key=lambda iv: (iv[1].last_modified, -iv[0]))[1]
            manifest = json.loads(get_bytes(self.client, self.bucket, key, version_id=first.version_id))
            problems += _missing_objects(manifest, listed)
            out.append(AuditedRound(int(match.group(1)), manifest, tuple(problems)))
        return sorted(out, key=lambda r: r.round)

    def evaluation(self, task: str, round_: int) -> dict[str, Any] | None:
        key = layout.evaluation_key(task, round_)
        try:
            return json.loads(get_bytes(self.client, self.bucket, key))
        except DataUnavailableError:
            return None

    def latest_versions(self, task: str) -> list[dict[str, Any]]:
        """Every version of the task's ``latest`` object, newest first, with the round it holds."""
        out = []
        key = layout.latest_key(task)
        for obj in self.client.list_objects(self.bucket, prefix=key, include_version=True):
            if obj.object_name != key or obj.is_delete_marker:
                continue
            meta = user_metadata(self.client.stat_object(self.bucket, key, version_id=obj.version_id))
            out.append(
                {
                    "versionId": obj.version_id,
                    "round": int(meta.get("x-amz-meta-round", "-1")),
                    "lastModified": obj.last_modified.isoformat() if obj.last_modified else None,
                    "isLatest": bool(obj.is_latest),
                }
            )
        out.sort(key=lambda v: v["round"], reverse=True)
        return out

    # -- writing ---------------------------------------------------------------------------
    def commit(
        self,
        task: str,
        round_: int,
        weights: list[np.ndarray],
        lineage: dict[str, Any],
        *,
        server_state: bytes | None = None,
    ) -> dict[str, Any]:
        """Commit ``weights`` as round ``round_`` with ``lineage``; returns the manifest written.

        ``server_state``: the strategy's state for the next round (``ServerState.to_bytes()``),
        written before the manifest and named in it as ``serverState`` (key, version, SHA-256).
        """
        manifest_key = layout.manifest_key(task, round_)
        data = codec.encode(weights)
        digest = codec.sha256(data)
        model_key = layout.model_key(task, round_)
        # Requests that do not depend on each other are made at once (two threads: each waits on its
        # socket): the two reads before anything is written, then the model and the server state.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="edgefed-commit") as pool:
            committed = pool.submit(exists, self.client, self.bucket, manifest_key)
            copy = pool.submit(self._unreferenced_copy, model_key, digest)
            if committed.result():  # the usual refusal, before any object is written
                raise self._committed_error(task, round_)
            state_key = layout.server_state_key(task, round_)
            state_written = (
                pool.submit(put_bytes, self.client, self.bucket, state_key, server_state)
                if server_state is not None
                else None
            )
            written = copy.result() or write_object(
                self.client, self.bucket, model_key, data, metadata={"sha256": digest}
            )
            state_version = state_written.result() if state_written is not None else None
        version = written.version_id
        state_ref: dict[str, Any] = {}
        if server_state is not None:
            state_ref = {
                "serverState": {
                    "key": state_key,
                    "versionId": state_version,
                    "sha256": codec.sha256(server_state),
                    "bytes": len(server_state),
                }
            }
        manifest = {
            "apiVersion": "edgefed.io/v1alpha1",
            "kind": "ModelManifest",
            "task": task,
            "round": round_,
            "committedAt": datetime.now(UTC).isoformat(),
            "model": {
                "bucket": self.bucket,
                "key": model_key,
                "versionId": version,
                "sha256": digest,
                "bytes": len(data),
                "etag": (written.etag or "").strip('"') or None,
                "shapes": [list(w.shape) for w in weights],
                "dtypes": [str(w.dtype) for w in weights],
            },
            **lineage,
            **state_ref,
        }
        commit_id = uuid.uuid4().hex
        manifest["commitId"] = commit_id
        try:
            # the commit point: the store writes the manifest only if none exists, in the same request,
            # so of concurrent commits of one round exactly one gets here
            put_bytes(
                self.client,
                self.bucket,
                manifest_key,
                json.dumps(manifest, indent=2, sort_keys=True).encode(),
                content_type="application/json",
                if_absent=True,
            )
        except ObjectExistsError:
            winner = self.manifest(task, round_)
            if winner.get("commitId") != commit_id:  # else: ours, answered 412 on a retried request
                raise self._committed_error(task, round_, winner, lost=version) from None
        latest_version = put_bytes(
            self.client,
            self.bucket,
            layout.latest_key(task),
            data,
            metadata={"round": str(round_), "manifest": manifest_key, "sha256": digest},
        )
        manifest["latestVersionId"] = latest_version
        return manifest

    def _unreferenced_copy(self, key: str, digest: str) -> ObjectWriteResult | None:
        """The current version at ``key`` if it holds exactly these bytes (its SHA-256 metadata), else None.

        Called before any manifest of the round exists, so such a version is referenced by none: it was
        written by an earlier execution of this commit that stopped before its manifest (a killed or lost
        aggregate pod, retried). Reusing it leaves one model version for the round, not two."""
        current = stat(self.client, self.bucket, key)
        if current is None or user_metadata(current).get("x-amz-meta-sha256") != digest:
            return None
        return ObjectWriteResult(self.bucket, key, current.version_id, current.etag, current.metadata)

    def _committed_error(
        self, task: str, round_: int, winner: dict[str, Any] | None = None, *, lost: str | None = None
    ) -> RoundCommittedError:
        where = f"s3://{self.bucket}/{layout.manifest_key(task, round_)}"
        if winner is None:
            return RoundCommittedError(
                f"round {round_} of task {task!r} is already committed ({where}); "
                "committed rounds are never overwritten",
                winner=None,
            )
        return RoundCommittedError(
            f"round {round_} of task {task!r} was committed by another commit while this one ran "
            f"(workflow {winner.get('workflow')!r}, {where}); this commit was refused and its model "
            f"version {lost} is referenced by no manifest",
            winner=winner,
        )

    def record_evaluation(self, task: str, round_: int, metrics: dict[str, Any]) -> None:
        key = layout.evaluation_key(task, round_)
        put_bytes(self.client, self.bucket, key, json.dumps(metrics, sort_keys=True).encode())


__all__ = ["AuditedRound", "LoadedModel", "ModelRegistry", "RoundCommittedError"]
