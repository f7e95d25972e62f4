"""Update screening: refuse an update that cannot or should not be aggregated, with the reason.

Checks, in one pass over the update and no temporary bigger than one chunk (float32 models are
screened in float32, ~7 GB/s on one core; a chunk whose float32 sum of squares overflows is redone in
float64, so the verdict is the float64 one; without ``max_norm`` only finiteness is checked, ~10 GB/s):

1. the number of arrays, each array's shape and dtype, against the global model;
2. every value finite (no NaN, no ±inf);
3. ``‖w_k - w_global‖₂ <= max_norm`` over all arrays together, when ``max_norm`` is set (a
   norm bound is the cheapest defence against a scaled-up, poisoned update; with the robust
   aggregators it complements, not replaces, Krum or the median).

:func:`screen` returns None for an accepted update, else a one-line reason the lineage can record.
:class:`Screen` is the same as the outermost wrapper of an aggregation (the aggregate step's): it
raises :class:`~edgefed.steps.aggregators.errors.UpdateRejectedError` with the reason, and hands the
norm it computed to the parts inside (a clip need not compute it again). The norm is
:func:`~edgefed.steps.aggregators.kernels.delta_norm`, the one the clip uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgefed.steps.aggregators.base import Contribution, Wrapper
from edgefed.steps.aggregators.errors import UpdateRejectedError
from edgefed.steps.aggregators.kernels import KERNEL_CHUNK, delta_norm, shape_problem


def screen(
    update_weights: Sequence[np.ndarray],
    global_weights: Sequence[np.ndarray],
    *,
    max_norm: float | None,
    chunk: int = KERNEL_CHUNK,
) -> str | None:
    """None if ``update_weights`` may be aggregated against ``global_weights``, else why not."""
    _check_max_norm(max_norm)
    problem = shape_problem(update_weights, global_weights, dtypes=True)
    if problem is not None:
        return problem
    return screen_values(update_weights, global_weights, max_norm=max_norm, chunk=chunk)[0]


def screen_values(
    update_weights: Sequence[np.ndarray],
    global_weights: Sequence[np.ndarray],
    *,
    max_norm: float | None,
    chunk: int = KERNEL_CHUNK,
) -> tuple[str | None, float | None]:
    """``(reason or None, ‖w - w_global‖ or None)`` for an update whose arrays match the model's: its
    values finite and, with ``max_norm``, its norm within it (the norm is only computed then)."""
    if max_norm is None:
        return _non_finite(update_weights, chunk), None
    norm = delta_norm(update_weights, global_weights, chunk=chunk)
    if not math.isfinite(norm):
        reason = _non_finite(update_weights, chunk) or _overflow(update_weights, global_weights, chunk)
        return reason or _too_far(norm, max_norm), None
    if norm > max_norm:
        return _too_far(norm, max_norm), norm
    return None, norm


def _check_max_norm(max_norm: float | None) -> None:
    if max_norm is not None and not max_norm > 0:
        raise ValueError(f"max_norm must be > 0 or None, got {max_norm}")


def _too_far(norm: float, max_norm: float) -> str:
    return f"update norm ‖w - w_global‖ = {norm:.6g} exceeds max_norm {max_norm:g}"


def _non_finite(update_weights: Sequence[np.ndarray], chunk: int) -> str | None:
    """Why an update has non-finite values (chunked ``isfinite``, ~10 GB/s), or None."""
    largest = min(chunk, max(max((a.size for a in update_weights), default=1), 1))
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


def _overflow(update: Sequence[np.ndarray], reference: Sequence[np.ndarray], chunk: int) -> str | None:
    """The first chunk whose squared distance to the model overflows even in float64, or None."""
    for i, (a, g) in enumerate(zip(update, reference, strict=True)):
        af, gf = a.reshape(-1), g.reshape(-1)
        for start in range(0, af.size, chunk):
            stop = min(start + chunk, af.size)
            wide = np.subtract(af[start:stop], gf[start:stop], dtype=np.float64)
            if not math.isfinite(float(np.dot(wide, wide))):
                return (
                    f"array {i}: the update's distance to the model overflows (elements {start}..{stop - 1})"
                )
    return None


@dataclass(kw_only=True)
class Screen(Wrapper):
    """Screening as a wrapper: dtypes, finite values and the norm bound (shapes are checked before
    any aggregator sees an update); a refused update raises with the reason."""

    name: ClassVar[str] = "screen"
    max_norm: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_max_norm(self.max_norm)

    @property
    def point_form(self) -> bool:  # type: ignore[override]
        return self.inner.point_form

    def add(self, item: Contribution) -> None:
        reason = shape_problem(item.arrays, self.reference, dtypes=True)
        if reason is None:
            reason, found = screen_values(item.arrays, self.reference, max_norm=self.max_norm)
        if reason is not None:
            raise UpdateRejectedError(reason)
        self.inner.add(item if found is None else item.scaled(1.0, item.scale * found))


__all__ = ["Screen", "screen", "screen_values"]
