"""The ``aggregation`` section of a FederatedTask: one member per algorithm, discriminated by ``algorithm``.

One union member per algorithm of ``edgefed.steps.strategies``: its fields are the strategy's
parameters (camelCase, same defaults: tests/steps/test_aggregation.py checks it), with pydantic ranges
for the per-field rules; cross-field rules come from the strategy itself (``from_config``), so every
rule lives in one place. Imports of the strategies are lazy: pure NumPy, never TensorFlow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import Discriminator, Field, Tag, model_validator
from pydantic.alias_generators import to_camel

from edgefed.steps.documents import FieldErrors
from edgefed.workflows.spec.base import SpecModel

_UnitInterval = Annotated[float, Field(ge=0, lt=1)]


def _camel_message(message: str, names: list[str]) -> str:
    """A kernel message with its snake_case parameter names in the spec's camelCase."""
    for name in sorted(names, key=len, reverse=True):
        if "_" in name:
            message = re.sub(rf"\b{re.escape(name)}\b", to_camel(name), message)
    return message


class _AggregationSpec(SpecModel):
    """Fields every algorithm has: the update screening before any strategy sees an update."""

    max_update_norm: float | None = Field(
        default=None,
        gt=0,
        description="reject an update whose L2 distance to the global model exceeds this (screening)",
    )

    def strategy_config(self) -> dict[str, Any]:
        """The section as the steps receive it (``step_config``): camelCase, defaults included."""
        return self.model_dump(mode="json", by_alias=True)

    def strategy(self) -> Any:
        """The :class:`edgefed.steps.strategies.Strategy` this section describes."""
        from edgefed.steps.strategies import from_config

        return from_config(self.strategy_config())

    @model_validator(mode="after")
    def _strategy_rules(self) -> _AggregationSpec:
        from edgefed.steps.strategies import StrategyError

        try:
            self.strategy()
        except StrategyError as err:
            names = list(type(self).model_fields)
            path: tuple[str | int, ...] = (to_camel(err.param),) if err.param in names else ()
            raise FieldErrors([(path, _camel_message(str(err), names))]) from None
        return self


class FedAvgSpec(_AggregationSpec):
    """Example-weighted federated averaging (McMahan et al. 2017, arXiv:1602.05629)."""

    algorithm: Literal["fedavg"] = "fedavg"


class FedAvgMSpec(_AggregationSpec):
    """FedAvg with server momentum (Hsu et al. 2019, arXiv:1909.06335): ``u = μu + Δ; x += ηu``."""

    algorithm: Literal["fedavgm"] = "fedavgm"
    server_learning_rate: float = Field(default=1.0, gt=0)
    weighted: bool = Field(default=True, description="weight edges by example count (False: 1/|S|)")
    momentum: _UnitInterval = 0.9


class _AdaptiveSpec(_AggregationSpec):
    """Reddi et al. 2021 (arXiv:2003.00295), Algorithm 2."""

    weighted: bool = Field(default=True, description="weight edges by example count (False: 1/|S|)")
    beta_1: _UnitInterval = 0.9
    tau: float = Field(default=1e-3, ge=0, description="degree of adaptivity (TFF's epsilon)")
    initial_accumulator: float | None = Field(default=None, ge=0, description="v0; default tau**2")


class FedAdagradSpec(_AdaptiveSpec):
    """Adagrad on the FedAvg pseudo-gradient (Reddi et al. 2021)."""

    algorithm: Literal["fedadagrad"] = "fedadagrad"
    server_learning_rate: float = Field(default=0.1, gt=0)
    beta_1: _UnitInterval = 0.0


class FedYogiSpec(_AdaptiveSpec):
    """Yogi on the FedAvg pseudo-gradient (Reddi et al. 2021)."""

    algorithm: Literal["fedyogi"] = "fedyogi"
    server_learning_rate: float = Field(default=0.01, gt=0)
    beta_2: _UnitInterval = 0.99
    bias_correction: bool = False


class FedAdamSpec(_AdaptiveSpec):
    """Adam on the FedAvg pseudo-gradient (Reddi et al. 2021)."""

    algorithm: Literal["fedadam"] = "fedadam"
    server_learning_rate: float = Field(default=0.01, gt=0)
    beta_2: _UnitInterval = 0.99
    bias_correction: bool = False


class FedProxSpec(_AggregationSpec):
    """FedAvg on the server, ``mu/2 ||w - w_global||²`` in each edge's loss (Li et al. 2020, arXiv:1812.06127)."""

    algorithm: Literal["fedprox"] = "fedprox"
    mu: float = Field(default=0.01, ge=0)


class _SpooledSpec(_AggregationSpec):
    chunk: int | None = Field(default=None, ge=1, description="coordinates per block (memory O(n x chunk))")


class MedianSpec(_SpooledSpec):
    """Coordinate-wise median (Yin et al. 2018, arXiv:1803.01498)."""

    algorithm: Literal["median"] = "median"


class TrimmedMeanSpec(_SpooledSpec):
    """Coordinate-wise trimmed mean: floor(beta n) values cut at each end (Yin et al. 2018)."""

    algorithm: Literal["trimmed-mean"] = "trimmed-mean"
    beta: float = Field(default=0.1, ge=0, lt=0.5)


class KrumSpec(_SpooledSpec):
    """Krum (m = 1) and Multi-Krum (Blanchard et al. 2017, arXiv:1703.02757); needs n > 2f + 2."""

    algorithm: Literal["krum"] = "krum"
    f: int = Field(default=1, ge=0, description="faulty (Byzantine) updates tolerated")
    m: int = Field(default=1, ge=1, description="updates selected and averaged (1: Krum)")
    weighted: bool = False


class DPFedAvgSpec(_AggregationSpec):
    """Central differential privacy: clipped, Gaussian-noised mean of the deltas (McMahan et al. 2018,
    arXiv:1710.06963; adaptive clipping: Andrew et al. 2021, arXiv:1905.03871), as TFF's
    ``DifferentiallyPrivateFactory.gaussian_fixed`` / ``gaussian_adaptive``.

    Set ``noiseMultiplier`` or ``targetEpsilon`` (then the noise is the smallest that spends at most
    that ε at ``delta`` over ``plannedRounds``, by default the task's last round). ``clientsPerRound``
    defaults to the number of edges (the fixed denominator of the mean).
    """

    algorithm: Literal["dp-fedavg"] = "dp-fedavg"
    noise_multiplier: float | None = Field(
        default=None, ge=0, description="z; default 1.0 unless targetEpsilon"
    )
    clip: float = Field(default=0.1, gt=0, description="L2 clip of each delta (initial clip when adaptive)")
    adaptive: bool = False
    target_unclipped_quantile: float = Field(default=0.5, ge=0, le=1)
    clip_learning_rate: float = Field(default=0.2, ge=0)
    clipped_count_stddev: float | None = Field(default=None, ge=0)
    clients_per_round: float | None = Field(default=None, gt=0)
    server_learning_rate: float = Field(default=1.0, gt=0)
    seed: int | None = None
    target_epsilon: float | None = Field(default=None, gt=0)
    delta: float = Field(default=1e-5, gt=0, lt=1)
    planned_rounds: int | None = Field(default=None, gt=0)
    accountant: Literal["rdp", "pld"] = "rdp"


def _algorithm_tag(value: Any) -> str | None:
    """The member a section selects: its ``algorithm``, FedAvg when it names none."""
    if isinstance(value, Mapping):
        return value.get("algorithm", "fedavg")
    return getattr(value, "algorithm", None)


#: Every algorithm's member, discriminated by ``algorithm`` (default ``fedavg``).
AggregationSpec = Annotated[
    Annotated[FedAvgSpec, Tag("fedavg")]
    | Annotated[FedAvgMSpec, Tag("fedavgm")]
    | Annotated[FedAdagradSpec, Tag("fedadagrad")]
    | Annotated[FedYogiSpec, Tag("fedyogi")]
    | Annotated[FedAdamSpec, Tag("fedadam")]
    | Annotated[FedProxSpec, Tag("fedprox")]
    | Annotated[MedianSpec, Tag("median")]
    | Annotated[TrimmedMeanSpec, Tag("trimmed-mean")]
    | Annotated[KrumSpec, Tag("krum")]
    | Annotated[DPFedAvgSpec, Tag("dp-fedavg")],
    Discriminator(_algorithm_tag),
]
AGGREGATION_SPECS: tuple[type[_AggregationSpec], ...] = (
    FedAvgSpec,
    FedAvgMSpec,
    FedAdagradSpec,
    FedYogiSpec,
    FedAdamSpec,
    FedProxSpec,
    MedianSpec,
    TrimmedMeanSpec,
    KrumSpec,
    DPFedAvgSpec,
)


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
    from edgefed.steps.strategies import StrategyError

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


#: Every algorithm's name, as ``aggregation.algorithm`` spells it.
ALGORITHMS: tuple[str, ...] = tuple(
    get_args(spec.model_fields["algorithm"].annotation)[0] for spec in AGGREGATION_SPECS
)

__all__ = [
    "AGGREGATION_SPECS",
    "ALGORITHMS",
    "AggregationSpec",
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
