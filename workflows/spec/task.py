"""The FederatedTask spec: a Kubernetes-custom-resource-shaped YAML document, parsed with pydantic.

Example::

    apiVersion: edgefed.io/v1alpha1
    kind: FederatedTask
    metadata: {name: heart-demo}
    spec:
      model: {name: mlp, inputShape: [30], classes: 2}
      dataset: heart
      edges:
        - {name: cleveland, node: edge-node-1, dataset: {bucket: edge-cleveland, key: heart/train.parquet}}
      training: {batchSize: 32, learningRate: 0.1, localEpochs: 2}
      aggregation: {algorithm: fedavg}
      rounds: 20
      quorum: 1

Fields are camelCase in YAML (as in every Kubernetes resource) and snake_case in Python. Unknown
fields are errors, as with a strict API server. Every problem is reported at once with its field
path (``spec.edges[2].name``), and nothing is created anywhere when the spec is bad.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from edgefed.workflows.errors import SpecError

API_VERSION = "edgefed.io/v1alpha1"
KIND = "FederatedTask"
#: Built-in model architectures (``steps/models.py`` implements them).
BUILTIN_MODELS = ("logistic", "mlp", "cnn")
DEFAULT_IMAGE = "ghcr.io/edgefed/edgefed-step:0.1.0"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _dns_label(value: str, *, max_len: int = 63) -> str:
    if len(value) > max_len or not _DNS1123_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
            f"starting and ending alphanumeric, at most {max_len} characters)"
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class ModelSpec(_Model):
    """The model every edge trains: a built-in architecture or a ``module:function`` factory.

    A factory is called as ``factory(input_shape, classes, **params)`` and returns an uncompiled
    ``tf.keras.Model``.
    """

    name: str = Field(description="built-in name (logistic, mlp, cnn) or 'module:function'")
    input_shape: Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=1)]
    classes: int = Field(ge=2)
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the factory")
    seed: int = 0

    @field_validator("name")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value in BUILTIN_MODELS:
            return value
        if not _FACTORY.match(value):
            raise ValueError(
                f"unknown model {value!r}: expected one of {', '.join(BUILTIN_MODELS)} or a "
                "'module:function' factory"
            )
        module = value.split(":", 1)[0]
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise ValueError(f"model factory {value!r}: module {module!r} cannot be found")
        return value

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_MODELS


class DatasetRef(_Model):
    """Where an edge's dataset lives in that edge's own store."""

    bucket: str
    key: str = Field(min_length=1)

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _BUCKET.match(value):
            raise ValueError(f"{value!r} is not a valid S3 bucket name")
        return value

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class StoreSpec(_Model):
    """An S3 endpoint (MinIO in production). Ignored by the embedded engine, which uses its own."""

    endpoint: str = "minio.edgefed.svc.cluster.local:9000"
    secure: bool = False


class Toleration(_Model):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class EdgeSpec(_Model):
    """One edge site: where its steps run and where its data is."""

    name: str
    node: str = Field(description="Kubernetes node name the edge's steps are pinned to")
    dataset: DatasetRef
    credentials_secret: str | None = Field(
        default=None, description="Kubernetes Secret with accessKey/secretKey; default edgefed-edge-<name>"
    )
    store: StoreSpec | None = Field(default=None, description="the edge's own store; default spec.store")
    tolerations: list[Toleration] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # edge names become bucket names (edge-<name>) and workflow node names
        return _dns_label(value, max_len=40)

    @field_validator("node")
    @classmethod
    def _node(cls, value: str) -> str:
        if not value or len(value) > 253:
            raise ValueError("a node name is 1 to 253 characters")
        return value

    @field_validator("credentials_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else _dns_label(value, max_len=253)

    @property
    def secret_name(self) -> str:
        return self.credentials_secret or f"edgefed-edge-{self.name}"


class TrainingSpec(_Model):
    batch_size: int = Field(default=32, gt=0)
    learning_rate: float = Field(default=0.05, gt=0)
    local_epochs: int = Field(default=1, gt=0)
    optimizer: Literal["sgd", "adam"] = "sgd"
    shuffle: bool = Field(default=True, description="shuffle each epoch (False: the dataset's row order)")


# -- aggregation -------------------------------------------------------------------------------
# One union member per algorithm of ``edgefed.steps.strategies``: its fields are the strategy's
# parameters (camelCase, same defaults: tests/test_aggregation.py checks it), with pydantic ranges for
# the per-field rules; cross-field rules come from the strategy itself (``from_config``), so every
# rule lives in one place. Imports of the strategies are lazy: pure NumPy, never TensorFlow.

_UnitInterval = Annotated[float, Field(ge=0, lt=1)]


def _camel_message(message: str, names: list[str]) -> str:
    """A kernel message with its snake_case parameter names in the spec's camelCase."""
    for name in sorted(names, key=len, reverse=True):
        if "_" in name:
            message = re.sub(rf"\b{re.escape(name)}\b", to_camel(name), message)
    return message


class _AggregationSpec(_Model):
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
            raise _FieldErrors([(path, _camel_message(str(err), names))]) from None
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


def _plan_privacy(data: Any) -> Any:
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


class EvaluationSpec(_Model):
    every_rounds: int = Field(default=1, gt=0, description="central evaluation every N rounds")


class MinImprovement(_Model):
    delta: float = Field(gt=0, description="smallest accuracy gain that counts as progress")
    patience: int = Field(default=3, gt=0, description="evaluations without progress before stopping")


class StopSpec(_Model):
    max_rounds: int | None = Field(default=None, gt=0, description="cap on rounds; default spec.rounds")
    target_accuracy: float | None = Field(default=None, gt=0, le=1)
    min_improvement: MinImprovement | None = None


class FederatedTaskSpec(_Model):
    model: ModelSpec
    dataset: str = Field(description="dataset schema name (heart, digits, mnist, ...): selects the test set")
    contract: str | None = Field(
        default=None,
        description="data contract every edge's dataset is checked against (data_contracts/<name>.yaml); "
        "default: the dataset's",
    )
    edges: Annotated[list[EdgeSpec], Field(min_length=1)]
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    aggregation: AggregationSpec = Field(default_factory=FedAvgSpec)
    rounds: int = Field(gt=0)
    quorum: int = Field(default=1, gt=0, description="minimum edges whose updates a round needs")
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    stop: StopSpec = Field(default_factory=StopSpec)
    store: StoreSpec = Field(default_factory=StoreSpec, description="the cloud store: updates and models")
    cloud_credentials_secret: str = "edgefed-cloud"
    image: str = DEFAULT_IMAGE
    parallelism: int | None = Field(default=None, gt=0, description="edges trained at once")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        return _dns_label(value)

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_the_task(cls, data: Any) -> Any:
        return _plan_privacy(data)

    @model_validator(mode="after")
    def _consistent(self) -> FederatedTaskSpec:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        seen: dict[str, int] = {}
        for i, edge in enumerate(self.edges):
            if edge.name in seen:
                first = f"spec.edges[{seen[edge.name]}]"
                problems.append((("edges", i, "name"), f"duplicate edge name {edge.name!r} (also {first})"))
            seen.setdefault(edge.name, i)
        if self.quorum > len(self.edges):
            n = len(self.edges)
            problems.append((("quorum",), f"quorum {self.quorum} is above the number of edges ({n})"))
        problems.extend(_quorum_for_strategy(self.aggregation, self.quorum))
        if self.stop.max_rounds is not None and self.stop.max_rounds > self.rounds:
            message = f"maxRounds {self.stop.max_rounds} exceeds rounds ({self.rounds})"
            problems.append((("stop", "maxRounds"), message))
        if problems:
            raise _FieldErrors(problems)
        return self

    @property
    def last_round(self) -> int:
        """The last round the task may run."""
        return min(self.rounds, self.stop.max_rounds or self.rounds)


def _quorum_for_strategy(aggregation: _AggregationSpec, quorum: int) -> list[tuple[tuple[str, ...], str]]:
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


class Metadata(_Model):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # task names prefix workflow names (<task>-r00001-xxxxx) and object keys
        return _dns_label(value, max_len=40)


class FederatedTask(_Model):
    """The whole custom-resource-shaped document."""

    api_version: Literal["edgefed.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["FederatedTask"]
    metadata: Metadata
    spec: FederatedTaskSpec

    @property
    def name(self) -> str:
        return self.metadata.name


class _FieldErrors(ValueError):
    """Cross-field problems, each belonging to one field path (raised inside model validators)."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


#: pydantic puts the chosen union member in error paths; users never wrote it.
_UNION_TAGS: tuple[str, ...] = tuple(
    get_args(spec.model_fields["algorithm"].annotation)[0] for spec in AGGREGATION_SPECS
)


def _path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def _problems(err: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[str]:
    problems = []
    for e in err.errors():
        loc: tuple[str | int, ...] = tuple(
            p for p in e["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)
        )
        ctx_err = (e.get("ctx") or {}).get("error")
        message = e["msg"].removeprefix("Value error, ")
        if isinstance(ctx_err, _FieldErrors):
            problems.extend(f"{_path(prefix + loc + sub)}: {msg}" for sub, msg in ctx_err.problems)
            continue
        if e["type"] == "extra_forbidden":
            message = "unknown field"
        elif e["type"] == "union_tag_invalid":  # the aggregation section names no known algorithm
            loc = (*loc, "algorithm")
            tag = (e.get("ctx") or {}).get("tag")
            message = f"unknown algorithm {tag!r}: expected one of {', '.join(_UNION_TAGS)}"
        elif e["type"] == "union_tag_not_found":
            message = f"expected a mapping with an algorithm (one of {', '.join(_UNION_TAGS)})"
        elif e["type"] == "missing":
            message = "required field is missing"
        problems.append(f"{_path(prefix + loc)}: {message}")
    return problems


def parse_task(document: Mapping[str, Any], *, source: str = "<task>") -> FederatedTask:
    """Validate a FederatedTask document; raise :class:`SpecError` listing every problem."""
    if not isinstance(document, Mapping):
        raise SpecError(source, [f"(document): expected a mapping, found {type(document).__name__}"])
    try:
        return FederatedTask.model_validate(dict(document))
    except ValidationError as err:
        raise SpecError(source, _problems(err)) from None


def load_task(path: str | Path) -> FederatedTask:
    """Read and validate a FederatedTask YAML file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecError(str(path), [f"(file): cannot be read: {err.strerror}"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecError(str(path), [f"(file): not valid YAML: {err}"]) from None
    return parse_task(document, source=str(path))


def dump_task(task: FederatedTask) -> dict[str, Any]:
    """The task as a YAML-ready dict with camelCase keys (defaults included)."""
    return task.model_dump(mode="json", by_alias=True, exclude_none=True)


__all__ = [
    "AGGREGATION_SPECS",
    "API_VERSION",
    "BUILTIN_MODELS",
    "DEFAULT_IMAGE",
    "KIND",
    "AggregationSpec",
    "DPFedAvgSpec",
    "DatasetRef",
    "EdgeSpec",
    "EvaluationSpec",
    "FedAdagradSpec",
    "FedAdamSpec",
    "FedAvgMSpec",
    "FedAvgSpec",
    "FedProxSpec",
    "FedYogiSpec",
    "FederatedTask",
    "FederatedTaskSpec",
    "KrumSpec",
    "MedianSpec",
    "Metadata",
    "MinImprovement",
    "ModelSpec",
    "StopSpec",
    "StoreSpec",
    "Toleration",
    "TrainingSpec",
    "TrimmedMeanSpec",
    "dump_task",
    "load_task",
    "parse_task",
]
