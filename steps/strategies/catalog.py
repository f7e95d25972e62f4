"""The strategies by name, and building one from the spec's ``aggregation`` section.

``from_config({"algorithm": "krum", "f": 2, "m": 3})`` -> ``Krum(f=2, m=3)``. Keys are the
strategy's declared parameters, in the spec's camelCase (``serverLearningRate``, ``beta1``; pydantic's
``to_camel``) or snake_case; an unknown key or a broken rule raises :class:`StrategyError`
naming it. ``maxUpdateNorm`` is the aggregate step's screening: ``from_config(..., screening=True)``
puts the screen around the strategy's aggregator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgefed.steps.aggregators import params
from edgefed.steps.strategies.base import Strategy, StrategyError
from edgefed.steps.strategies.dp import DPFedAvg
from edgefed.steps.strategies.fedavg import FedAvg
from edgefed.steps.strategies.fedopt import FedAdagrad, FedAdam, FedAvgM, FedYogi
from edgefed.steps.strategies.fedprox import FedProx
from edgefed.steps.strategies.krum import Krum
from edgefed.steps.strategies.median import Median
from edgefed.steps.strategies.trimmed_mean import TrimmedMean

#: Every strategy, by its ``aggregation.algorithm`` name.
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (FedAvg, FedAvgM, FedAdagrad, FedYogi, FedAdam, FedProx, Median, TrimmedMean, Krum, DPFedAvg)
}
#: Keys of the ``aggregation`` section that are not strategy parameters.
STEP_KEYS = ("algorithm", "maxUpdateNorm", "secure", "secureThreshold")

for _cls in STRATEGIES.values():  # a parameter without its declaration would be missing from the spec
    if params.undeclared(_cls):
        raise TypeError(
            f"{_cls.__name__}: fields {params.undeclared(_cls)} lack an Annotated[..., Field(...)]"
        )


def parameters(cls: type[Strategy]) -> dict[str, Any]:
    """``{camelCase name: default}`` of a strategy's parameters, in declaration order."""
    return {p.camel: p.default for p in params.declared(cls)}


def from_config(config: Mapping[str, Any], *, screening: bool = False) -> Strategy:
    """The strategy the ``aggregation`` section describes (default: FedAvg); with ``screening``, every
    update is screened first (finite values, dtypes, ``maxUpdateNorm``)."""
    algorithm = config.get("algorithm", "fedavg")
    cls = STRATEGIES.get(algorithm)
    if cls is None:
        raise StrategyError(f"aggregation.algorithm {algorithm!r}: expected one of {sorted(STRATEGIES)}")
    strategy = cls(**params.kwargs_from(cls, config, where=algorithm, skip=STEP_KEYS))
    if screening:
        strategy.with_screening(config.get("maxUpdateNorm"))
    return strategy


def edge_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the ``aggregation`` section asks of the edges' training (FedProx's ``proximalMu``); a
    strategy that asks nothing is not built (no DP calibration is paid for at the edge)."""
    cls = STRATEGIES.get(config.get("algorithm", "fedavg"))
    if cls is not None and cls.edge_settings is Strategy.edge_settings:
        return {}
    return from_config(config).edge_settings()


__all__ = ["STEP_KEYS", "STRATEGIES", "edge_settings", "from_config", "parameters"]
