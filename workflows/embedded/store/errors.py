"""The embedded store's one exception."""

from __future__ import annotations

from edgefed.workflows.errors import StoreUnavailableError

__all__ = ["StoreError"]


class StoreError(StoreUnavailableError):
    """The embedded store could not do what was asked; the message says what was expected and found."""
