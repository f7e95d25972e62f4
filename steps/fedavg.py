"""Example-weighted federated averaging, streaming.

McMahan, Moore, Ramage, Hampson, Agüera y Arcas: "Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS 2017, arXiv:1602.05629.

``w = Σ_k n_k w_k / Σ_k n_k`` computed one update at a time: memory is one accumulator the size
of the model plus the update being added, whatever the number of edges. Pure NumPy, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.linalg import blas

_AXPY = {"f": blas.saxpy, "d": blas.daxpy}
_AXPY_MIN = 1024  # below this, the BLAS call costs more than NumPy's temporary


class ShapeMismatchError(ValueError):
    """An update whose arrays do not match the model's."""


class WeightedMean:
    """Streaming example-weighted mean of lists of arrays.

    ``dtype`` is the accumulator's: float32 (the model's own precision, as TFF's mean aggregator
    uses). Each add is one BLAS ``axpy`` (``acc += weight * update``, in place, one pass), so the
    update's arrays may be read-only views and are never copied or modified.
    """

    def __init__(self, dtype: np.dtype | type = np.float32) -> None:
        self.dtype = np.dtype(dtype)
        self.total_weight = 0.0
        self._acc: list[np.ndarray] | None = None
        self.count = 0

    def add(self, arrays: Iterable[np.ndarray], weight: float) -> None:
        """Add one update (its arrays in model order), weighted by ``weight`` (its example count)."""
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        arrays = list(arrays)
        if self._acc is None:
            self._acc = [np.zeros(a.shape, self.dtype) for a in arrays]
        if len(arrays) != len(self._acc):
            raise ShapeMismatchError(f"update has {len(arrays)} arrays, the model has {len(self._acc)}")
        for i, (acc, a) in enumerate(zip(self._acc, arrays, strict=True)):
            if a.shape != acc.shape:
                raise ShapeMismatchError(f"array {i}: shape {a.shape}, expected {acc.shape}")
            axpy = _AXPY.get(self.dtype.char)
            if axpy is not None and a.dtype == self.dtype and a.flags.c_contiguous and a.size > _AXPY_MIN:
                axpy(a.reshape(-1), acc.reshape(-1), a=weight)  # in place on acc's memory
            else:
                acc += np.asarray(a, dtype=self.dtype) * self.dtype.type(weight)
        self.total_weight += weight
        self.count += 1

    def result(self) -> list[np.ndarray]:
        """The weighted mean. Raises when no update (or only zero weights) arrived."""
        if self._acc is None or self.total_weight <= 0:
            raise ValueError("no update with a positive weight to average")
        return [acc / self.dtype.type(self.total_weight) for acc in self._acc]


__all__ = ["ShapeMismatchError", "WeightedMean"]
