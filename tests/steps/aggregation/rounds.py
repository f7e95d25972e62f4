"""Running one aggregation round in the tests: read-only update views, as the aggregate step hands them over."""

from __future__ import annotations

import numpy as np

from edgefed.steps.strategies import ServerState


def updates_near(
    rng: np.random.Generator, x: list[np.ndarray], n: int, scale: float = 0.1
) -> list[list[np.ndarray]]:
    """``n`` updates of ``x`` plus Gaussian noise of std ``scale``, in ``x``'s dtypes."""
    return [[(a + scale * rng.standard_normal(a.shape)).astype(a.dtype) for a in x] for _ in range(n)]


def read_only(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Copies that refuse writes (the aggregate step passes zero-copy views of the update's bytes)."""
    out = []
    for a in arrays:
        a = np.array(a)
        a.flags.writeable = False
        out.append(a)
    return out


def run(strategy, x, updates, examples=None, state=None):
    """One round of ``strategy`` over ``updates`` from ``edge-0``, ``edge-1``, ... (1 example each by default)."""
    examples = examples if examples is not None else [1] * len(updates)
    triples = [(read_only(u), e, f"edge-{i}") for i, (u, e) in enumerate(zip(updates, examples, strict=True))]
    return strategy.run(read_only(x), triples, state)


def round_trip(state: ServerState) -> ServerState:
    """``state`` after serialisation, as the next round reads it back."""
    return ServerState.from_bytes(state.to_bytes())


__all__ = ["read_only", "round_trip", "run", "updates_near"]
