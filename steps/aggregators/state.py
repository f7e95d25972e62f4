"""What an aggregation carries from one round to the next (optimizer moments, the DP clip and ledger).

Pure data, serialised with :mod:`edgefed.steps.codec` (an uncompressed npz, never a pickle). The aggregate
step stores it beside the round's model (``server-state.npz``, named with its SHA-256 in the manifest), so
a resumed task continues from exactly the state it left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefed.steps import codec

_STATE_KIND = "edgefed.ServerState"
_STATE_VERSION = 1


@dataclass
class ServerState:
    """Named arrays and JSON-able scalars carried between rounds.

    ``strategy`` names the algorithm that wrote it; ``scalars["rounds"]`` counts the rounds it has
    finished. Each part of an aggregation keeps its own keys: the server optimizers ``momentum/*`` or
    ``m/*`` and ``v/*``; the adaptive clip ``scalars["clip"]``; the Gaussian noise
    ``scalars["privacyLedger"]``.
    """

    strategy: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    scalars: dict[str, Any] = field(default_factory=dict)

    @property
    def rounds(self) -> int:
        return int(self.scalars.get("rounds", 0))

    def put_list(self, name: str, arrays: Sequence[np.ndarray]) -> None:
        """Store ``arrays`` (one per model array) as ``name/0000``, ``name/0001``, ..."""
        for key in [k for k in self.arrays if k.startswith(f"{name}/")]:
            del self.arrays[key]
        for i, a in enumerate(arrays):
            self.arrays[f"{name}/{i:04d}"] = a

    def get_list(self, name: str) -> list[np.ndarray] | None:
        """The arrays stored by :meth:`put_list` under ``name``, in order; None when there are none."""
        keys = sorted(k for k in self.arrays if k.startswith(f"{name}/"))
        return [self.arrays[k] for k in keys] if keys else None

    def to_bytes(self) -> bytes:
        names = sorted(self.arrays)
        meta = {
            "kind": _STATE_KIND,
            "version": _STATE_VERSION,
            "strategy": self.strategy,
            "names": names,
            "scalars": self.scalars,
        }
        return codec.encode([self.arrays[n] for n in names], meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> ServerState:
        arrays, meta = codec.decode(data)
        if meta.get("kind") != _STATE_KIND or meta.get("version") != _STATE_VERSION:
            raise codec.CodecError(
                f"not a server state (kind {meta.get('kind')!r} version {meta.get('version')!r}, "
                f"expected {_STATE_KIND!r} version {_STATE_VERSION})"
            )
        names = meta["names"]
        if len(names) != len(arrays):
            raise codec.CodecError(f"server state names {len(names)} arrays but holds {len(arrays)}")
        return cls(meta["strategy"], dict(zip(names, arrays, strict=True)), dict(meta["scalars"]))


__all__ = ["ServerState"]
