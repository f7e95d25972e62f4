"""Update screening: refuse an update that cannot or should not be aggregated, with the reason.

Checks, in one pass over the update and no temporary bigger than one chunk:

1. the number of arrays, each array's shape and dtype, against the global model;
2. every value finite (no NaN, no ±inf);
3. ``‖w_k - w_global‖₂ <= max_norm`` over all arrays together, when ``max_norm`` is set (a
   norm bound is the cheapest defence against a scaled-up, poisoned update; with the robust
   strategies it complements, not replaces, Krum or the median).

``screen`` returns None for an accepted update, else a one-line reason the lineage can record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from edgefed.steps.strategies.base import KERNEL_CHUNK


def screen(
    update_weights: Sequence[np.ndarray],
    global_weights: Sequence[np.ndarray],
    *,
    max_norm: float | None,
    chunk: int = KERNEL_CHUNK,
) -> str | None:
    """None if ``update_weights`` may be aggregated against ``global_weights``, else why not."""
    if max_norm is not None and not max_norm > 0:
        raise ValueError(f"max_norm must be > 0 or None, got {max_norm}")
    if len(update_weights) != len(global_weights):
        return f"update has {len(update_weights)} arrays, the model has {len(global_weights)}"
    for i, (a, g) in enumerate(zip(update_weights, global_weights, strict=True)):
        if a.shape != g.shape:
            return f"array {i}: shape {a.shape}, expected {g.shape}"
        if a.dtype != g.dtype:
            return f"array {i}: dtype {a.dtype}, expected {g.dtype}"
    largest = max((g.size for g in global_weights), default=1)
    buf = np.empty(min(chunk, max(largest, 1)), np.float64)
    total = 0.0
    for i, (a, g) in enumerate(zip(update_weights, global_weights, strict=True)):
        af, gf = a.reshape(-1), g.reshape(-1)
        for start in range(0, af.size, chunk):
            stop = min(start + chunk, af.size)
            d = buf[: stop - start]
            np.subtract(af[start:stop], gf[start:stop], out=d, dtype=np.float64)
            sq = float(np.dot(d, d))
            if not math.isfinite(sq):
                bad = np.count_nonzero(~np.isfinite(af[start:stop]))
                if bad:
                    return (
                        f"array {i}: {bad} non-finite value(s) (NaN or inf) in elements {start}..{stop - 1}"
                    )
                return (
                    f"array {i}: the update's distance to the model overflows (elements {start}..{stop - 1})"
                )
            total += sq
    norm = math.sqrt(total)
    if max_norm is not None and norm > max_norm:
        return f"update norm ‖w - w_global‖ = {norm:.6g} exceeds max_norm {max_norm:g}"
    return None


__all__ = ["screen"]
