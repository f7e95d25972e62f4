"""The strategies by name, and building one from the spec's ``aggregation`` section.

``from_config({"algorithm": "krum", "f": 2, "m": 3})`` -> ``Krum(f=2, m=3)``. Keys are the
dataclass fields, in the spec's camelCase (``serverLearningRate``, ``beta1``; pydantic's
``to_camel``) or snake_case; an unknown key or a broken rule raises :class:`StrategyError`
naming it. ``maxUpdateNorm`` is accepted and left to the aggregate step's screening.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic.alias_generators import to_camel

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
STEP_KEYS = ("algorithm", "maxUpdateNorm")


def parameters(cls: type[Strategy]) -> dict[str, Any]:
    """``{camelCase name: default}`` of a strategy's parameters, in declaration order."""
    return {to_camel(f.name): f.default for f in dataclasses.fields(cls) if f.init}


def from_config(config: Mapping[str, Any]) -> Strategy:
    """The strategy the ``aggregation`` section describes (default: FedAvg)."""
    algorithm = config.get("algorithm", "fedavg")
    cls = STRATEGIES.get(algorithm)
    if cls is None:
        raise StrategyError(f"aggregation.algorithm {algorithm!r}: expected one of {sorted(STRATEGIES)}")
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    aliases = {to_camel(n): n for n in names} | {n: n for n in names}
    kwargs: dict[str, Any] = {}
    for key, value in config.items():
        if key in STEP_KEYS:
            continue
        if key not in aliases:
            known = ", ".join(parameters(cls)) or "none"
            raise StrategyError(f"{algorithm}: unknown parameter {key!r} (parameters: {known})")
        kwargs[aliases[key]] = value
    return cls(**kwargs)


__all__ = ["STEP_KEYS", "STRATEGIES", "from_config", "parameters"]
