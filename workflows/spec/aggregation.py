"""The ``aggregation`` section of a FederatedTask, derived from the strategies' own declarations.

One union member per algorithm of ``edgefed.steps.strategies``, discriminated by ``algorithm``
(default ``fedavg``). A member's fields are not written here: they are the strategy's declared
parameters (:func:`edgefed.steps.aggregators.params.declared`), camelCase, with the very annotations,
ranges and defaults the steps use, so pydantic reports ``spec.aggregation.beta1: Input should be less
than 1`` from the same declaration the strategy checks. Cross-field rules come from the strategy itself
(building it: ``from_config``), reported at the field they name. ``maxUpdateNorm`` (the aggregate
step's screening) belongs to every member. The strategies are pure NumPy; TensorFlow is never imported.

Composition. A strategy with an ``aggregator`` parameter (fedavg, the FedOpt family, dp-fedavg) takes an
aggregator over deltas in place of its own mean; the section is one of the aggregators of
``edgefed.steps.aggregators`` by ``name``, with that aggregator's declared parameters::

    aggregation:                       # FedAdam over a coordinate-wise trimmed mean
      algorithm: fedadam
      serverLearningRate: 0.01
      aggregator: {name: trimmed-mean, beta: 0.1}

    aggregation:                       # central DP (clip + Gaussian noise) over the median
      algorithm: dp-fedavg
      noiseMultiplier: 1.0
      clip: 0.5
      aggregator: {name: median}

Names: ``mean`` (``weighted``), ``median`` (``chunk``), ``trimmed-mean`` (``beta``, ``chunk``), ``krum``
(``f``, ``m``, ``weighted``, ``chunk``). Without ``aggregator`` every algorithm is exactly its preset, and
the section the steps receive has no ``aggregator`` key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, ValidationError, WrapValidator, create_model, model_validator
from pydantic.alias_generators import to_camel

from edgefed.steps.aggregators import AGGREGATORS, Mean
from edgefed.steps.aggregators.params import declared
from edgefed.steps.documents import FieldErrors
from edgefed.steps.strategies import STRATEGIES, Strategy, StrategyError, from_config
from edgefed.workflows.spec.base import SpecModel


def _camel_message(message: str, names: list[str]) -> str:
    """A kernel message with its snake_case parameter names in the spec's camelCase."""
    for name in sorted(names, key=len, reverse=True):
        if "_" in name:
            message = re.sub(rf"\b{re.escape(name)}\b", to_camel(name), message)
    return message


# -- the aggregator section -----------------------------------------------------------------------

#: Every aggregator over deltas, as ``aggregation.aggregator.name`` spells it.
AGGREGATOR_NAMES: tuple[str, ...] = tuple(AGGREGATORS)


def _aggregator_member(name: str) -> type[SpecModel]:
    cls = AGGREGATORS[name]
    fields: dict[str, Any] = {p.name: (p.annotation, p.default) for p in declared(cls)}
    return create_model(
        f"{cls.__name__}Spec",
        __base__=SpecModel,
        __doc__=cls.__doc__,
        __module__=__name__,
        name=(Literal[name], ...),
        **fields,
    )


def _aggregator_tag(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return value.get("name")
    return getattr(value, "name", None)


def _aggregator_problems(value: Any, handler: Any) -> Any:
    """The section's problems with paths inside it (pydantic's union tags taken out of them)."""
    try:
        return handler(value)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            loc = tuple(p for p in e["loc"] if p not in AGGREGATOR_NAMES)
            if e["type"] == "union_tag_invalid":
                tag = (e.get("ctx") or {}).get("tag")
                problems.append(
                    (("name",), f"unknown aggregator {tag!r}: expected one of {', '.join(AGGREGATOR_NAMES)}")
                )
            elif e["type"] == "union_tag_not_found":
                problems.append(
                    (loc, f"expected a mapping with a name (one of {', '.join(AGGREGATOR_NAMES)})")
                )
            elif e["type"] == "extra_forbidden":
                problems.append((loc, "unknown field"))
            elif e["type"] == "missing":
                problems.append((loc, "required field is missing"))
            else:
                problems.append((loc, e["msg"].removeprefix("Value error, ")))
        raise FieldErrors(problems) from None


AGGREGATOR_SPECS: tuple[type[SpecModel], ...] = tuple(_aggregator_member(name) for name in AGGREGATOR_NAMES)
#: An ``aggregator`` section: one member per aggregator, discriminated by ``name``.
AggregatorSpec = Annotated[
    Union[tuple(Annotated[m, Tag(n)] for n, m in zip(AGGREGATOR_NAMES, AGGREGATOR_SPECS, strict=True))],  # noqa: UP007
    Discriminator(_aggregator_tag),
    WrapValidator(_aggregator_problems),
]


# -- the aggregation section ----------------------------------------------------------------------


class _AggregationSpec(SpecModel):
    """Fields every algorithm has: the update screening before any strategy sees an update."""

    max_update_norm: float | None = Field(
        default=None,
        gt=0,
        description="reject an update whose L2 distance to the global model exceeds this (screening)",
    )
    # (absent from the steps' config when off, so a plain task's documents do not change)
    secure: bool = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="secure aggregation (Bonawitz et al. 2017): the cloud learns only the sum of the "
        "edges' updates, never one edge's; each edge screens its own update",
    )
    secure_threshold: float | None = Field(
        default=None,
        gt=0.5,
        le=1,
        exclude_if=lambda v: v is None,
        description="share of a round's edges whose answers unmask the sum (default 2/3): up to the rest "
        "may drop after sharing their keys",
    )

    def strategy_config(self) -> dict[str, Any]:
        """The section as the steps receive it (``step_config``): camelCase, defaults included."""
        return self.model_dump(mode="json", by_alias=True)

    def strategy(self) -> Strategy:
        """The :class:`edgefed.steps.strategies.Strategy` this section describes."""
        return from_config(self.strategy_config())

    @model_validator(mode="after")
    def _strategy_rules(self) -> _AggregationSpec:
        try:
            strategy = self.strategy()
        except StrategyError as err:
            names = list(type(self).model_fields)
            path: tuple[str | int, ...] = (to_camel(err.param),) if err.param in names else ()
            raise FieldErrors([(path, _camel_message(str(err), names))]) from None
        if self.secure_threshold is not None and not self.secure:
            raise FieldErrors([(("secureThreshold",), "applies only with secure: true")])
        if self.secure and not isinstance(strategy.composition.aggregator, Mean):
            raise FieldErrors(
                [
                    (
                        ("secure",),
                        f"secure aggregation computes the (weighted) mean of the updates and nothing else; "
                        f"{self.algorithm}{' with an aggregator section' if getattr(self, 'aggregator', None) else ''} "
                        f"needs every update in the clear. Use one of {', '.join(SECURE_ALGORITHMS)} "
                        "without an aggregator section",
                    )
                ]
            )
        return self


def _member(cls: type[Strategy]) -> type[_AggregationSpec]:
    """The union member of one strategy: its declared parameters as fields, same annotations and defaults."""
    fields: dict[str, Any] = {}
    for p in declared(cls):
        if p.nested:  # the aggregator section: absent from the dump when not given
            fields[p.name] = (
                AggregatorSpec | None,
                Field(default=None, exclude_if=lambda v: v is None, description=p.description),
            )
        else:
            fields[p.name] = (p.annotation, p.default)
    return create_model(
        f"{cls.__name__}Spec",
        __base__=_AggregationSpec,
        __doc__=cls.__doc__,
        __module__=__name__,
        algorithm=(Literal[cls.name], cls.name),
        **fields,
    )


#: Every algorithm's name, as ``aggregation.algorithm`` spells it.
ALGORITHMS: tuple[str, ...] = tuple(STRATEGIES)
AGGREGATION_SPECS: tuple[type[_AggregationSpec], ...] = tuple(_member(cls) for cls in STRATEGIES.values())
_BY_NAME = dict(zip(ALGORITHMS, AGGREGATION_SPECS, strict=True))
FedAvgSpec = _BY_NAME["fedavg"]
FedAvgMSpec = _BY_NAME["fedavgm"]
FedAdagradSpec = _BY_NAME["fedadagrad"]
FedYogiSpec = _BY_NAME["fedyogi"]
FedAdamSpec = _BY_NAME["fedadam"]
FedProxSpec = _BY_NAME["fedprox"]
MedianSpec = _BY_NAME["median"]
TrimmedMeanSpec = _BY_NAME["trimmed-mean"]
KrumSpec = _BY_NAME["krum"]
DPFedAvgSpec = _BY_NAME["dp-fedavg"]


#: The algorithms secure aggregation can run: a server optimizer over the plain (weighted) mean.
SECURE_ALGORITHMS: tuple[str, ...] = ("fedavg", "fedavgm", "fedadagrad", "fedyogi", "fedadam", "fedprox")


def _algorithm_tag(value: Any) -> str | None:
    """The member a section selects: its ``algorithm``, FedAvg when it names none."""
    if isinstance(value, Mapping):
        return value.get("algorithm", "fedavg")
    return getattr(value, "algorithm", None)


#: Every algorithm's member, discriminated by ``algorithm`` (default ``fedavg``).
AggregationSpec = Annotated[
    Union[tuple(Annotated[m, Tag(n)] for n, m in _BY_NAME.items())],  # noqa: UP007
    Discriminator(_algorithm_tag),
]


def plan_privacy(data: Any) -> Any:
    """Fill a dp-fedavg section's ``clientsPerRound`` (the number of edges) and, with a
    ``targetEpsilon``, its ``plannedRounds`` (the task's last round), when the spec leaves them out."""
    if not isinstance(data, Mapping) or not isinstance(data.get("aggregation"), Mapping):
        return data
    agg = dict(data["aggregation"])
    if agg.get("algorithm") != "dp-fedavg":
        return data

    def given(camel: str, snake: str) -> bool:
        return agg.get(camel, agg.get(snake)) is not None

    edges = data.get("edges")
    if not given("clientsPerRound", "clients_per_round") and isinstance(edges, list) and edges:
        agg["clientsPerRound"] = len(edges)
    rounds = data.get("rounds")
    stop = data.get("stop") if isinstance(data.get("stop"), Mapping) else {}
    max_rounds = stop.get("maxRounds", stop.get("max_rounds"))
    if (
        given("targetEpsilon", "target_epsilon")
        and not given("plannedRounds", "planned_rounds")
        and isinstance(rounds, int)
        and not isinstance(rounds, bool)
        and rounds > 0
    ):
        planned = min(rounds, max_rounds) if isinstance(max_rounds, int) and max_rounds > 0 else rounds
        agg["plannedRounds"] = planned
    return {**data, "aggregation": agg}


def quorum_problems(aggregation: _AggregationSpec, quorum: int) -> list[tuple[tuple[str, ...], str]]:
    """The quorum must be enough for the strategy (Krum: n > 2f + 2 and m <= n - f)."""
    strategy = aggregation.strategy()
    try:
        strategy.check_count(quorum)
    except StrategyError as err:
        return [
            (
                ("quorum",),
                f"quorum {quorum} is too low for the aggregation: {err} "
                f"(a round must not commit with fewer than {strategy.min_updates} updates)",
            )
        ]
    return []


__all__ = [
    "AGGREGATION_SPECS",
    "AGGREGATOR_NAMES",
    "AGGREGATOR_SPECS",
    "ALGORITHMS",
    "SECURE_ALGORITHMS",
    "AggregationSpec",
    "AggregatorSpec",
    "DPFedAvgSpec",
    "FedAdagradSpec",
    "FedAdamSpec",
    "FedAvgMSpec",
    "FedAvgSpec",
    "FedProxSpec",
    "FedYogiSpec",
    "KrumSpec",
    "MedianSpec",
    "TrimmedMeanSpec",
    "plan_privacy",
    "quorum_problems",
]
