"""Argo's node and workflow phases, one enum for the engine, the cluster client and the runtime.

Argo writes them as strings (``status.phase``, ``status.nodes[*].phase``); :class:`Phase` is a
``StrEnum``, so a member compares equal to the string Argo (or a fake server) returns. Standard
library only: the embedded engine imports it too.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Phase"]


class Phase(StrEnum):
    """A node's (or workflow's) phase, spelled as Argo spells it."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    SKIPPED = "Skipped"
    OMITTED = "Omitted"

    @classmethod
    def is_terminal(cls, phase: str | None) -> bool:
        """Whether a *workflow* in ``phase`` is done (Succeeded, Failed or Error)."""
        return phase in _COMPLETED

    @classmethod
    def is_failure(cls, phase: str | None) -> bool:
        """Failed or Error."""
        return phase in (cls.FAILED, cls.ERROR)

    @property
    def completed(self) -> bool:
        """Ran to an end: Succeeded, Failed or Error."""
        return self in _COMPLETED

    @property
    def fulfilled(self) -> bool:
        """Will not change any more: completed, Skipped or Omitted."""
        return self in _FULFILLED


_COMPLETED = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.ERROR})
_FULFILLED = _COMPLETED | {Phase.SKIPPED, Phase.OMITTED}
