"""Update screening: refuse an update that cannot or should not be aggregated, with the reason.

Checks, in one pass over the update and no temporary bigger than one chunk (float32 models are
screened in float32, ~7 GB/s on one core; a chunk whose float32 sum of squares overflows is redone in
float64, so the verdict is the float64 one; without ``max_norm`` only finiteness is checked, ~10 GB/s):

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
    largest = min(chunk, max(max((g.size for g in global_weights), default=1), 1))
    if max_norm is None:
        return _non_finite(update_weights, chunk, largest)
    buffers: dict[type, np.ndarray] = {}
    total = 0.0
    for i, (a, g) in enumerate(zip(update_weights, global_weights, strict=True)):
        # float32 (and float16) arrays: differences and squares in float32 (BLAS sdot, ~3x float64's
        # speed), a chunk redone in float64 only if its float32 sum overflows; anything else in float64.
        work = np.float32 if a.dtype.kind == "f" and a.dtype.itemsize <= 4 else np.float64
        buf = buffers.get(work)
        if buf is None:
            buf = buffers[work] = np.empty(largest, work)
        af, gf = a.reshape(-1), g.reshape(-1)
        for start in range(0, af.size, chunk):
            stop = min(start + chunk, af.size)
            d = buf[: stop - start]
            np.subtract(af[start:stop], gf[start:stop], out=d, dtype=work)
            sq = float(np.dot(d, d))
            if not math.isfinite(sq):
                bad = np.count_nonzero(~np.isfinite(af[start:stop]))
                if bad:
                    return (
                        f"array {i}: {bad} non-finite value(s) (NaN or inf) in elements {start}..{stop - 1}"
                    )
                wide = np.subtract(af[start:stop], gf[start:stop], dtype=np.float64)
                sq = float(np.dot(wide, wide))
                if not math.isfinite(sq):
                    return f"array {i}: the update's distance to the model overflows (elements {start}..{stop - 1})"
            total += sq
    norm = math.sqrt(total)
    if max_norm is not None and norm > max_norm:
        return f"update norm ‖w - w_global‖ = {norm:.6g} exceeds max_norm {max_norm:g}"
    return None


def _non_finite(update_weights: Sequence[np.ndarray], chunk: int, largest: int) -> str | None:
    """Why an update has non-finite values (chunked ``isfinite``, ~10 GB/s), or None."""
    flags = np.empty(largest, bool)
    for i, a in enumerate(update_weights):
        if a.dtype.kind not in "fc":
            continue  # integers and booleans are always finite
        af = a.reshape(-1)
        for start in range(0, af.size, chunk):
            stop = min(start + chunk, af.size)
            ok = flags[: stop - start]
            np.isfinite(af[start:stop], out=ok)
            if not ok.all():
                bad = ok.size - np.count_nonzero(ok)
                return f"array {i}: {bad} non-finite value(s) (NaN or inf) in elements {start}..{stop - 1}"
    return None


__all__ = ["screen"]
