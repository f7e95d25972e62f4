"""Which committed version of a task serves: promotion records, append-only beside the rounds.

Each promotion (or rollback) is a new object ``<task>/promotions/<seq>.json`` naming the round, its model's
version id and SHA-256, who, when and why, and the record it replaced. Nothing is ever rewritten: neither a
round nor an earlier record, so the history of what served when is the bucket's content. The served version is
the newest record's; a rollback is a new record serving the version the current one replaced (like
``kubectl rollout undo``, a second rollback returns to where the first started).

Used by the CLI (``edgefed models promote|rollback|show``) and by steps that promote on a rule; no Argo here.
"""

from __future__ import annotations

import json
from typing import Any

from edgefed.steps import layout
from edgefed.steps.registry import ModelRegistry
from edgefed.steps.store import StepError, exists, get_bytes, put_json, utc_now

__all__ = ["PromotionError", "history", "promote", "rollback", "served"]


class PromotionError(StepError):
    """A promotion or rollback that cannot be made (nothing to roll back to, a record already there)."""


def history(registry: ModelRegistry, task: str) -> list[dict[str, Any]]:
    """Every promotion record of ``task``, oldest first."""
    prefix = layout.promotions_prefix(task)
    keys = sorted(
        o.object_name
        for o in registry.client.list_objects(registry.bucket, prefix=prefix)
        if o.object_name.endswith(".json")
    )
    return [json.loads(get_bytes(registry.client, registry.bucket, key)) for key in keys]


def served(registry: ModelRegistry, task: str) -> dict[str, Any] | None:
    """The newest promotion record (what serves), or None when nothing was ever promoted."""
    records = history(registry, task)
    return records[-1] if records else None


def _record(
    registry: ModelRegistry, task: str, round_: int, *, by: str, reason: str, action: str
) -> dict[str, Any]:
    manifest = registry.manifest(task, round_)  # DataUnavailableError names an uncommitted round
    registry.load(task, round_)  # refuses a model whose bytes no longer match its SHA-256
    records = history(registry, task)
    current = records[-1] if records else None
    seq = (current["seq"] + 1) if current else 1
    record = {
        "seq": seq,
        "task": task,
        "action": action,
        "round": round_,
        "versionId": manifest["model"]["versionId"],
        "sha256": manifest["model"]["sha256"],
        "by": by,
        "at": utc_now(),
        "reason": reason,
        "replaces": None if current is None else {"seq": current["seq"], "round": current["round"]},
    }
    key = layout.promotion_key(task, seq)
    if exists(registry.client, registry.bucket, key):
        raise PromotionError(f"task {task!r}: promotion #{seq} was just recorded by someone else; try again")
    put_json(registry.client, registry.bucket, key, record)
    return record


def promote(registry: ModelRegistry, task: str, round_: int, *, by: str, reason: str) -> dict[str, Any]:
    """Make committed round ``round_`` the served version of ``task``; returns the new record."""
    return _record(registry, task, round_, by=by, reason=reason, action="promote")


def rollback(registry: ModelRegistry, task: str, *, by: str, reason: str) -> dict[str, Any]:
    """Serve again the version the current promotion replaced; returns the new record."""
    current = served(registry, task)
    if current is None:
        raise PromotionError(f"task {task!r}: nothing was ever promoted, so there is nothing to roll back")
    if current["replaces"] is None:
        raise PromotionError(
            f"task {task!r}: round {current['round']} (promotion #{current['seq']}) is the first version promoted; "
            "there is no earlier one to roll back to"
        )
    return _record(registry, task, current["replaces"]["round"], by=by, reason=reason, action="rollback")
