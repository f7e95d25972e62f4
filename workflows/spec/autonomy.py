"""The ``autonomy`` section: what an edge does when it cannot reach the cloud store, and what the
aggregate does with what it delivers later.

An edge that cannot reach the cloud (for ``cloudWaitSeconds``) still checks its data and trains, from the
last global model it holds in its own site's store, and keeps the update there (its outbox). The next round it
reaches the cloud it delivers the update beside its fresh one, as a *late update*; the aggregate uses it
(``lateUpdates: use``: its change applied to the round's global model, weighted by its examples times
``(1 + staleness) ** -stalenessExponent``, as FedAsync's polynomial staleness function) or drops it
(``drop``, or when more than ``maxStaleness`` global versions behind), and records either in the manifest.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgefed.workflows.spec.base import SpecModel

__all__ = ["AutonomySpec"]


class AutonomySpec(SpecModel):
    """Edge autonomy: train while the cloud is out of reach, deliver the update when it is back."""

    enabled: bool = Field(
        default=True,
        description="an edge that cannot reach the cloud trains from its copy of the global model and keeps "
        "the update at its site until it can deliver it (false: it sits the round out)",
    )
    cloud_wait_seconds: float = Field(
        default=30,
        gt=0,
        le=600,
        description="how long an edge's step retries the cloud store before working offline",
    )
    late_updates: Literal["use", "drop"] = Field(
        default="use",
        description="what the aggregate does with an update delivered rounds after it was trained",
    )
    max_staleness: int = Field(
        default=3,
        ge=0,
        description="a late update trained from a global model more versions behind the round's is dropped",
    )
    staleness_exponent: float = Field(
        default=0.5,
        ge=0,
        description="a used late update weighs examples * (1 + staleness) ** -stalenessExponent",
    )
