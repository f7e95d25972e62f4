"""The one exception of the contracts package."""

from __future__ import annotations

__all__ = ["ContractError"]


class ContractError(ValueError):
    """A contract cannot be found or is malformed; the message names the file and the field."""
