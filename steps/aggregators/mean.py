"""The (weighted) mean of the updates. Streaming.

McMahan, Moore, Ramage, Hampson, Agüera y Arcas: "Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS 2017. https://arxiv.org/abs/1602.05629

``Δ = Σ_k c_k s_k (w_k - w_global) / Σ_k c_k`` with ``c_k`` the edge's example count (``weighted``,
the default) or 1, and ``s_k`` an outer wrapper's scale (a clip factor; 1 otherwise). In point form
(plain FedAvg application) it is ``Σ_k c_k w_k / Σ_k c_k``, one BLAS axpy per update into one float32
accumulator. The kernel is :class:`~edgefed.steps.aggregators.kernels.WeightedMean`: memory is one model
whatever the number of edges.

Parameters: ``weighted`` (True): weight edges by example count; False is ``1/|S|``. Internal (not in
the spec): ``denominator``, a fixed divisor in place of ``Σ_k c_k`` (DP's expected number of edges, as
TFF's ``NormalizedQuery``). Edge case: a round whose weights are all 0 has nothing to average and fails
(unless a fixed denominator is set).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field

from edgefed.steps.aggregators.base import Aggregator, Contribution
from edgefed.steps.aggregators.kernels import WeightedMean
from edgefed.steps.aggregators.state import ServerState


@dataclass(kw_only=True)
class MeanParams:
    """The mean's parameter (also FedAvgM's and the FedOpt family's ``weighted``)."""

    weighted: Annotated[bool, Field(description="weight edges by example count (False: 1/|S|)")] = True


@dataclass(kw_only=True)
class Mean(MeanParams, Aggregator):
    """``Σ c_k Δ_k / Σ c_k`` (or ``/ denominator``), streamed one update at a time."""

    name: ClassVar[str] = "mean"
    streaming: ClassVar[bool] = True
    denominator: float | None = None

    @property
    def point_form(self) -> bool:  # type: ignore[override]
        """A mean over a fixed denominator is a mean of deltas only (``x + Σ c_k Δ_k / D``)."""
        return self.denominator is None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.total_weight = 0.0
        self._mean: WeightedMean | None = None

    def _begin(self, state: ServerState) -> None:
        self._mean = WeightedMean() if self.form == "point" else WeightedMean(reference=self.reference)

    def add(self, item: Contribution) -> None:
        self._mean.add(item.arrays, item.weight if self.weighted else 1.0, scale=item.scale)

    def finish(self) -> list[np.ndarray]:
        self.total_weight = self._mean.total_weight
        return self._mean.result(denominator=self.denominator, in_place=True)

    def close(self) -> None:
        self._mean = None


__all__ = ["Mean", "MeanParams"]
