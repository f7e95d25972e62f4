"""The aggregator protocol, the wrapper base and the spooled base.

An :class:`Aggregator` combines one round's updates into one aggregate, in the manner of TFF's
aggregation factories (``tff.aggregators``: an inner factory, wrappers around it)::

    aggregator.begin(global_weights, state, form="delta")   # state: the round's ServerState
    for update, examples, edge in updates:                   # arrays are read-only views: never modified
        aggregator.add(Contribution(update, examples, edge))
    aggregate = aggregator.finish()                         # writable arrays, accumulator dtype
    aggregator.commit(state)                                # what the next round needs (clip, ledger)
    aggregator.close()

``form`` says what ``finish`` returns: ``"delta"``, the aggregate of the deltas ``w_k - w_global``
(what a server optimizer steps on), or ``"point"``, the aggregate of the weights themselves
(``w_global + Δ``, for plain FedAvg application; computed directly, without forming the deltas, which
is exact for a median and one BLAS axpy per update for a mean). Only aggregators with ``point_form``
offer it; the wrappers (clip, noise) work on deltas.

``add`` takes a :class:`Contribution`: the update's arrays, its weight (the edge's example count; an
unweighted aggregator ignores it) and edge, and what outer wrappers found: its delta counts ``scale``
times (a clip factor), and ``norm`` is ``‖scale · (w - w_global)‖`` once a wrapper has computed it.

A :class:`Wrapper` holds an ``inner`` aggregator and passes every call on, doing its own part before
or after. :class:`SpooledAggregator` is the base of the aggregators that need every update at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from edgefed.steps.aggregators import params
from edgefed.steps.aggregators.errors import AggregatorError
from edgefed.steps.aggregators.kernels import UpdateSpool, accumulator_dtype, coordinate_chunks, default_chunk
from edgefed.steps.aggregators.state import ServerState

Form = Literal["point", "delta"]


@dataclass(frozen=True)
class Contribution:
    """One update on its way through an aggregator chain (arrays are read-only: never modified)."""

    arrays: Sequence[np.ndarray]
    weight: float
    edge: str
    scale: float = 1.0
    norm: float | None = None

    def scaled(self, factor: float, norm: float) -> Contribution:
        """The same update with its delta scaled by ``factor`` more, of norm ``norm`` now."""
        return replace(self, scale=self.scale * factor, norm=norm)


@dataclass(kw_only=True)
class Aggregator(ABC):
    """One way of combining updates. Subclasses are keyword-only dataclasses of their parameters.

    Class attributes: ``name`` (the spec's ``aggregator.name``), ``streaming`` (memory independent
    of the number of updates), ``point_form`` (can aggregate the weights themselves). After
    :meth:`finish`, :attr:`report` holds JSON-able facts about the round for the lineage.
    """

    name: ClassVar[str]
    streaming: ClassVar[bool] = True
    point_form: ClassVar[bool] = True

    def __post_init__(self) -> None:
        for param, message in params.problems(self):
            raise AggregatorError(f"{self.name}: {message}", param=param)
        self.report: dict[str, Any] = {}
        self.reference: list[np.ndarray] = []
        self.form: Form = "delta"

    @property
    def min_updates(self) -> int:
        """Fewest updates a round needs."""
        return 1

    def check_count(self, n: int) -> None:
        """Raise :class:`AggregatorError` unless a round of ``n`` updates can be aggregated."""
        if n < self.min_updates:
            raise AggregatorError(f"needs at least {self.min_updates} update(s), got {n}")

    def parts(self) -> Iterator[Aggregator]:
        """This aggregator and, for a wrapper, every part inside it (outermost first)."""
        yield self

    def begin(self, reference: Sequence[np.ndarray], state: ServerState, *, form: Form = "delta") -> None:
        """Start a round against the global weights ``reference``; ``state`` is the round's server state."""
        if form == "point" and not self.point_form:
            raise RuntimeError(f"{self.name} aggregates deltas only")
        self.reference, self.form, self.report = list(reference), form, {}
        self._begin(state)

    @abstractmethod
    def _begin(self, state: ServerState) -> None:
        """Prepare the round's accumulators."""

    @abstractmethod
    def add(self, item: Contribution) -> None:
        """Fold one update in (its shapes already checked)."""

    @abstractmethod
    def finish(self) -> list[np.ndarray]:
        """The round's aggregate in ``form``; fill :attr:`report`."""

    def commit(self, state: ServerState) -> None:  # noqa: B027 - optional: most parts keep no state
        """Write into ``state`` what the next round needs (after :meth:`finish`)."""

    def close(self) -> None:  # noqa: B027 - optional: only spooling parts hold resources
        """Release what a round holds (temporary files); safe to call any time."""


@dataclass(kw_only=True)
class Wrapper(Aggregator):
    """An aggregator around an ``inner`` one (TFF's wrapping factories: clipping, DP, ...): every call
    goes on to ``inner``; a subclass does its part before (``add``) or after (``finish``, ``commit``)."""

    name: ClassVar[str]
    point_form: ClassVar[bool] = False
    inner: Aggregator

    @property
    def streaming(self) -> bool:  # type: ignore[override]
        return self.inner.streaming

    @property
    def min_updates(self) -> int:
        return self.inner.min_updates

    def check_count(self, n: int) -> None:
        self.inner.check_count(n)

    def parts(self) -> Iterator[Aggregator]:
        yield self
        yield from self.inner.parts()

    def begin(self, reference: Sequence[np.ndarray], state: ServerState, *, form: Form = "delta") -> None:
        super().begin(reference, state, form=form)
        self.inner.begin(reference, state, form=form)

    def _begin(self, state: ServerState) -> None:
        """Prepare this wrapper's part of the round (``inner`` begins right after)."""

    def add(self, item: Contribution) -> None:
        self.inner.add(item)

    def finish(self) -> list[np.ndarray]:
        return self.inner.finish()

    def commit(self, state: ServerState) -> None:
        self.inner.commit(state)

    def close(self) -> None:
        self.inner.close()


@dataclass(kw_only=True)
class SpooledParams:
    """The parameter every spooled aggregator has."""

    chunk: Annotated[
        int | None, Field(ge=1, description="coordinates per block (memory O(n x chunk)); default 2**20 // n")
    ] = None


@dataclass(kw_only=True)
class SpooledAggregator(SpooledParams, Aggregator):
    """Base of the aggregators that need every update at once: ``add`` spools each update to a temporary
    file (:class:`~edgefed.steps.aggregators.kernels.UpdateSpool`: the weights, or in delta form the
    scaled deltas), ``finish`` works through ``(n, chunk)`` blocks of coordinates. Peak RAM is
    O(n x chunk) plus the result, never O(n x model); disk is n x model."""

    streaming: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.spool: UpdateSpool | None = None
        self.weights: list[float] = []
        self.edges: list[str] = []

    def _begin(self, state: ServerState) -> None:
        self.close()
        dtype = np.result_type(np.float32, *(accumulator_dtype(g.dtype) for g in self.reference))
        self.spool = UpdateSpool([g.shape for g in self.reference], dtype)
        self.weights, self.edges = [], []

    def add(self, item: Contribution) -> None:
        centre = self.reference if self.form == "delta" else None
        self.spool.add(item.arrays, reference=centre, scale=item.scale)
        self.weights.append(item.weight)
        self.edges.append(item.edge)

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()
        self.spool = None

    def _blocks(self) -> Iterator[tuple[int, int, int, np.ndarray]]:
        """``(array index, start, stop, block)``: each ``(n, stop - start)`` block of the spool."""
        chunk = default_chunk(self.spool.rows, self.chunk)
        for i, start, stop, offset in coordinate_chunks([g.shape for g in self.reference], chunk):
            yield i, start, stop, self.spool.block(offset + start, offset + stop)

    def _empty_result(self) -> list[np.ndarray]:
        return [np.empty(g.shape, self.spool.dtype) for g in self.reference]


__all__ = ["Aggregator", "Contribution", "Form", "SpooledAggregator", "SpooledParams", "Wrapper"]
