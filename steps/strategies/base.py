"""The strategy protocol every named aggregation algorithm implements: a preset composition.

The aggregate step drives one round of any strategy the same way::

    strategy.begin(global_weights, state)          # state: the previous round's ServerState, or None
    for update, examples, edge in accepted_updates:
        strategy.add(update, examples, edge)       # arrays are read-only views: never modified
    new_weights, new_state = strategy.finish()     # persist new_state next to the committed model

``begin``/``add``/``finish`` are written once here. A strategy is a keyword-only dataclass of its
parameters, each declared once with its range and default (``Annotated[float, Field(gt=0)]``, see
:mod:`edgefed.steps.aggregators.params`; the spec's ``aggregation`` section is derived from them), and
fills in two hooks: ``_rules`` (cross-field rules, e.g. FedAdagrad's τ = 0 needs v₀) and ``_compose``,
the :class:`Composition` it stands for: a server optimizer over an aggregator chain from
:mod:`edgefed.steps.aggregators` (FedAdam: Adam over the mean; DP-FedAvg: SGD over Gaussian noise over
a clip over the mean). Strategies whose inner aggregator can be swapped have an ``aggregator``
parameter (the spec's ``aggregation.aggregator`` section: ``{name: trimmed-mean, beta: 0.1}``).

``streaming`` says whether memory is independent of the number of edges (that of the composition's
aggregator). Pure NumPy, no network or object-store I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from edgefed.steps.aggregators import (
    Aggregator,
    Contribution,
    Form,
    Screen,
    ServerOptimizer,
    ServerState,
    params,
)
from edgefed.steps.aggregators import from_config as aggregator_from_config
from edgefed.steps.aggregators.errors import AggregatorError, ShapeMismatchError, UpdateRejectedError
from edgefed.steps.aggregators.kernels import cast_like, shape_problem

#: A strategy's error is the aggregators' (one base for the whole aggregation): the message says which
#: rule is broken; ``param`` names the parameter (snake_case field) it is about, when there is one.
StrategyError = AggregatorError

#: The ``aggregator`` parameter: a spec section naming an aggregator over deltas and its parameters
#: (or an :class:`~edgefed.steps.aggregators.Aggregator`); None keeps the strategy's own.
InnerAggregator = Annotated[
    Mapping[str, Any] | Aggregator | None,
    Field(description="the aggregator over deltas, in place of the strategy's own: {name: ..., ...}"),
    params.NESTED,
]


@dataclass(frozen=True)
class Composition:
    """A server optimizer on top of an aggregator (itself possibly wrappers around an inner one)."""

    optimizer: ServerOptimizer
    aggregator: Aggregator

    @property
    def form(self) -> Form:
        """``point`` when the optimizer takes ``x + Δ`` and the aggregator computes it directly."""
        return "point" if self.optimizer.point_form and self.aggregator.point_form else "delta"


@dataclass(kw_only=True)
class Strategy(ABC):
    """One named aggregation algorithm. Subclasses are keyword-only dataclasses of their parameters.

    Class attribute ``name``: the spec's ``aggregation.algorithm``. After :meth:`finish`, :attr:`report`
    holds JSON-able facts about the round for the lineage (e.g. which edges Krum selected).
    """

    name: ClassVar[str]

    def __post_init__(self) -> None:
        self.validate()
        self.composition = self._compose()
        self.report: dict[str, Any] = {}
        self._global: list[np.ndarray] | None = None
        self._state: ServerState | None = None
        self._edges: list[str] = []

    # -- parameters ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`StrategyError` naming the parameter and the rule it breaks."""
        for param, message in params.problems(self):
            raise self._fail(message, param=param)
        self._rules()

    def _rules(self) -> None:  # noqa: B027 - optional: most strategies have no cross-field rule
        """Cross-field rules (each declared range is already checked)."""

    @abstractmethod
    def _compose(self) -> Composition:
        """The optimizer and aggregator chain this strategy stands for, built from its parameters."""

    def _inner(self, default: Aggregator) -> Aggregator:
        """The strategy's ``aggregator`` section built (with its own checks), or ``default``."""
        section = getattr(self, "aggregator", None)
        if section is None:
            return default
        try:
            return aggregator_from_config(section)
        except AggregatorError as err:
            raise self._fail(f"aggregator: {err}", param="aggregator") from None

    @property
    def streaming(self) -> bool:
        """Whether memory is independent of the number of updates."""
        return self.composition.aggregator.streaming

    @property
    def min_updates(self) -> int:
        """Fewest updates a round needs (the spec's quorum should be at least this)."""
        return self.composition.aggregator.min_updates

    def edge_settings(self) -> dict[str, Any]:
        """Extra training settings the edges need (camelCase, merged into ``training``); FedProx's μ."""
        return {}

    def check_count(self, n: int) -> None:
        """Raise :class:`StrategyError` unless a round of ``n`` updates can be aggregated."""
        try:
            self.composition.aggregator.check_count(n)
        except AggregatorError as err:
            raise self._fail(str(err)) from None

    def privacy_spent(self, state: ServerState) -> dict[str, Any] | None:
        """The privacy spent so far by the rounds ``state`` has seen (JSON-able), or None when the
        strategy gives no differential-privacy guarantee (every one but DP-FedAvg)."""
        return None

    def with_screening(self, max_norm: float | None) -> Strategy:
        """Screen every update before it is aggregated (dtypes, finite values, ``‖w - w_global‖ <=
        max_norm``): the aggregate step's outermost wrapper. Returns ``self``."""
        chain = self.composition.aggregator
        try:
            screened = Screen(inner=chain, max_norm=max_norm)
        except ValueError as err:
            raise self._fail(str(err)) from None
        self.composition = Composition(self.composition.optimizer, screened)
        return self

    def _fail(self, message: str, *, param: str | None = None) -> StrategyError:
        return StrategyError(f"{self.name}: {message}", param=param)

    # -- the round ----------------------------------------------------------------------------
    def begin(self, global_weights: Sequence[np.ndarray], state: ServerState | None = None) -> None:
        """Start a round from the current global model and the previous round's state."""
        if state is not None and state.strategy != self.name:
            raise self._fail(
                f"the server state was written by {state.strategy!r}; start from None to switch algorithms"
            )
        self.close()
        self._global = [np.asarray(w) for w in global_weights]
        self._state = state if state is not None else ServerState(self.name)
        self._edges = []
        self.report = {}
        self.composition.aggregator.begin(self._global, self._state, form=self.composition.form)

    def add(self, update_weights: Sequence[np.ndarray], examples: int, edge: str) -> None:
        """Add one accepted update (read-only arrays in model order) of ``examples`` examples."""
        if self._global is None:
            raise RuntimeError(f"{self.name}: add() before begin()")
        if examples < 0:
            raise UpdateRejectedError(f"{self.name}: edge {edge!r} reports {examples} examples")
        problem = shape_problem(update_weights, self._global)
        if problem is not None:
            raise ShapeMismatchError(problem)
        self.composition.aggregator.add(Contribution(update_weights, float(examples), edge))
        self._edges.append(edge)

    def finish(self) -> tuple[list[np.ndarray], ServerState]:
        """The new global weights (the model's dtypes) and the state to persist for the next round."""
        if self._global is None or self._state is None:
            raise RuntimeError(f"{self.name}: finish() before begin()")
        n, state, chain = len(self._edges), self._state, self.composition.aggregator
        try:
            self.check_count(n)
            try:
                aggregate = chain.finish()
                weights = self.composition.optimizer.apply(
                    self._global, aggregate, state, self.composition.form
                )
                chain.commit(state)
            except AggregatorError as err:
                raise self._fail(str(err), param=err.param) from None
        finally:
            self.close()
        weights = [cast_like(w, g.dtype) for w, g in zip(weights, self._global, strict=True)]
        state.scalars["rounds"] = state.rounds + 1
        report: dict[str, Any] = {}
        for part in reversed(list(chain.parts())):  # the innermost part's facts first
            report.update(part.report)
        report.update(self.composition.optimizer.report)
        self.report = self._report(report)
        self.report.setdefault("updates", n)
        self._global, self._state = None, None
        return weights, state

    def _report(self, report: dict[str, Any]) -> dict[str, Any]:
        """The round's report from its parts' (a strategy may add or reword facts)."""
        return report

    def run(
        self,
        global_weights: Sequence[np.ndarray],
        updates: Iterable[tuple[Sequence[np.ndarray], int, str]],
        state: ServerState | None = None,
    ) -> tuple[list[np.ndarray], ServerState]:
        """One whole round over ``(weights, examples, edge)`` triples (may be a lazy generator)."""
        self.begin(global_weights, state)
        for weights, examples, edge in updates:
            self.add(weights, examples, edge)
        return self.finish()

    def close(self) -> None:
        """Release what a round holds (temporary files); called by finish, safe to call any time."""
        self.composition.aggregator.close()


__all__ = [
    "Composition",
    "InnerAggregator",
    "ServerState",
    "Strategy",
    "StrategyError",
    "UpdateRejectedError",
]
