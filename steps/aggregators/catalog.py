"""The aggregators a spec can name, and building one from its section.

``from_config({"name": "trimmed-mean", "beta": 0.2})`` -> ``CoordinateTrimmedMean(beta=0.2)``. Keys are
the aggregator's declared parameters, camelCase or snake_case; an unknown name, an unknown key or a
value out of range raises :class:`~edgefed.steps.aggregators.errors.AggregatorError` naming it. A
strategy's ``aggregator`` section is read with it (``edgefed.steps.strategies``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgefed.steps.aggregators import params
from edgefed.steps.aggregators.base import Aggregator
from edgefed.steps.aggregators.errors import AggregatorError
from edgefed.steps.aggregators.krum import MultiKrum
from edgefed.steps.aggregators.mean import Mean
from edgefed.steps.aggregators.median import CoordinateMedian
from edgefed.steps.aggregators.trimmed_mean import CoordinateTrimmedMean

#: Every aggregator over deltas a spec can choose, by its ``aggregator.name``.
AGGREGATORS: dict[str, type[Aggregator]] = {
    cls.name: cls for cls in (Mean, CoordinateMedian, CoordinateTrimmedMean, MultiKrum)
}


def from_config(section: Mapping[str, Any] | Aggregator) -> Aggregator:
    """The aggregator a spec's ``aggregator`` section describes (an Aggregator is returned as is)."""
    if isinstance(section, Aggregator):
        return section
    if not isinstance(section, Mapping):
        raise AggregatorError(f"expected a mapping with a name, found {type(section).__name__}")
    name = section.get("name")
    cls = AGGREGATORS.get(name)
    if cls is None:
        raise AggregatorError(f"name {name!r}: expected one of {', '.join(AGGREGATORS)}", param="name")
    return cls(**params.kwargs_from(cls, section, where=name, skip=("name",)))


__all__ = ["AGGREGATORS", "from_config"]
