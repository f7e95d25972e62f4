"""The FederatedTask document: a Kubernetes-custom-resource-shaped YAML document, parsed with pydantic.
Why this module is long: it is the whole schema, each section next to the cross-field rules that use it.

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

import ast
import importlib.util
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from edgefed.steps import documents
from edgefed.steps.documents import FieldErrors
from edgefed.steps.interface import CLOUD_SECRET, edge_secret, site_secret
from edgefed.workflows.errors import SpecError
from edgefed.workflows.inputs import read_task_document
from edgefed.workflows.spec.aggregation import (
    ALGORITHMS,
    AggregationSpec,
    FedAvgSpec,
    plan_privacy,
    quorum_problems,
)
from edgefed.workflows.spec.autonomy import AutonomySpec
from edgefed.workflows.spec.base import SpecModel

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


def _findable(value: str, what: str) -> str:
    """``module:function`` whose module can be found on this Python's path (not imported: that is the step's)."""
    module = value.split(":", 1)[0]
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ValueError(f"{what} {value!r}: module {module!r} cannot be found")
    return value


def _checked_signature(value: str, what: str, positional: tuple[str, ...], keywords: tuple[str, ...]) -> None:
    """``module:function`` is a function defined in Python source that can be called with ``positional``
    arguments and the ``keywords``: read from its source with :mod:`ast`, never imported or run here (a
    spec naming ``os:system`` must be refused before anything starts, not called by a step).

    Hand-written because :func:`inspect.signature` needs the function, that is, importing the user's module
    (and what it imports: TensorFlow) in the control plane."""
    module, _, function = value.partition(":")
    spec = importlib.util.find_spec(module)  # _findable ran first: it is found
    origin = getattr(spec, "origin", None) or ""
    if not origin.endswith(".py"):
        raise ValueError(
            f"{what} {value!r}: module {module!r} is not Python source ({origin or 'built in'}): a {what} is a "
            "Python function in a .py module"
        )
    try:
        tree = ast.parse(Path(origin).read_bytes(), origin)
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{what} {value!r}: {origin} cannot be read as Python: {err}") from None
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    if not defs:
        raise ValueError(f"{what} {value!r}: {origin} defines no function {function!r} at its top level")
    args = defs[-1].args
    ordered = [a.arg for a in (*args.posonlyargs, *args.args)]
    if args.vararg is None and len(ordered) < len(positional):
        raise ValueError(
            f"{what} {value!r} takes {len(ordered)} positional argument(s); it is called with "
            f"{len(positional)} ({', '.join(positional)})"
        )
    by_keyword = set(ordered[len(positional) :]) - {a.arg for a in args.posonlyargs} | {
        a.arg for a in args.kwonlyargs
    }
    if args.kwarg is None:
        unknown = [k for k in keywords if k not in by_keyword]
        if unknown:
            raise ValueError(f"{what} {value!r} takes no keyword argument {unknown[0]!r}")
    required = [
        a.arg for a, default in zip(args.kwonlyargs, args.kw_defaults, strict=True) if default is None
    ]
    required += ordered[len(positional) : len(ordered) - len(args.defaults)]
    missing = [k for k in required if k not in keywords]
    if missing:
        raise ValueError(f"{what} {value!r} requires argument {missing[0]!r}, which it is never given")


class ModelSpec(SpecModel):
    """The model every edge trains: a built-in architecture or a ``module:function`` factory.

    A factory is called as ``factory(input_shape, classes, **params)`` and returns an uncompiled
    ``tf.keras.Model``.
    """

    name: str = Field(description="built-in name (logistic, mlp, cnn) or 'module:function'")
    input_shape: Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=1)]
    task: Literal["classification", "regression"] = Field(
        default="classification",
        description="classification: integer labels 0..classes-1, softmax cross-entropy; regression: a numeric "
        "label, one output, mean squared error",
    )
    classes: int | None = Field(default=None, ge=2, description="classification: the number of classes")
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the factory")
    seed: int = 0
    initial_weights: str | None = Field(  # read by the init step (on a cluster: a path in its image)
        default=None,
        alias="initialWeights",
        pattern=r"\.npz$",
        description="an .npz whose arrays (key "
        "order: w0, w1, ...) are the initial global model instead of the seeded initialisation",
    )

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
        return _findable(value, "model factory")

    @model_validator(mode="after")
    def _factory_signature(self) -> ModelSpec:
        if not self.builtin:
            keywords = tuple(self.params)
            _checked_signature(self.name, "model factory", ("input_shape", "classes"), keywords)
        return self

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_MODELS

    @model_validator(mode="after")
    def _outputs(self) -> ModelSpec:
        if self.task == "classification" and self.classes is None:
            raise FieldErrors([(("classes",), "a classification model needs classes (>= 2)")])
        if self.task == "regression" and self.classes is not None:
            raise FieldErrors([(("classes",), "a regression model has one output: leave classes out")])
        return self


class DatasetRef(SpecModel):
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


class StoreSpec(SpecModel):
    """An S3 endpoint (MinIO in production). Ignored by the embedded engine, which uses its own.

    HTTPS by default: updates cross the WAN between the sites and the cloud.
    """

    endpoint: str = "minio.edgefed.svc.cluster.local:9000"
    secure: bool = True


class CloudStoreSpec(StoreSpec):
    """The cloud store, and the trust every step puts in the stores' certificates."""

    ca_config_map: str | None = Field(
        default=None,
        description="ConfigMap (key ca.crt) with the CAs the stores' certificates chain to, cloud's and "
        "sites'; default: the image's system CAs",
    )

    @field_validator("ca_config_map")
    @classmethod
    def _ca(cls, value: str | None) -> str | None:
        return None if value is None else _dns_label(value, max_len=253)


class SiteStoreSpec(SpecModel):
    """Each edge's own store, on its node: reached at the node's own address (downward API
    ``status.hostIP``), so an edge's data is read where it lives, never through the cloud."""

    port: int = Field(default=9000, gt=0, lt=65536)
    secure: bool = True


class RoleResourcesSpec(SpecModel):
    """Kubernetes requests and limits (quantities such as ``500m``, ``2Gi``)."""

    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class ResourcesSpec(SpecModel):
    """Requests and limits per role; unset: the cluster settings' defaults."""

    edge: RoleResourcesSpec | None = Field(default=None, description="validate and train")
    cloud: RoleResourcesSpec | None = Field(default=None, description="init, plan, aggregate, evaluate")


class Toleration(SpecModel):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class EdgeSpec(SpecModel):
    """One edge site: where its steps run and where its data is."""

    name: str
    node: str = Field(description="Kubernetes node name the edge's steps are pinned to")
    dataset: DatasetRef
    credentials_secret: str | None = Field(
        default=None,
        description="Kubernetes Secret (accessKey/secretKey) of the edge's identity in the cloud store; "
        "default edgefed-edge-<name>",
    )
    site_credentials_secret: str | None = Field(
        default=None,
        description="Kubernetes Secret (accessKey/secretKey) of the edge's identity in its own store; "
        "default edgefed-site-<name>",
    )
    store: StoreSpec | None = Field(
        default=None,
        description="the edge's own store, where its dataset is; default: the store on the edge's node "
        "(spec.siteStore)",
    )
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

    @field_validator("credentials_secret", "site_credentials_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else _dns_label(value, max_len=253)

    @property
    def secret_name(self) -> str:
        """The Secret of the edge's cloud store identity."""
        return self.credentials_secret or edge_secret(self.name)

    @property
    def site_secret_name(self) -> str:
        """The Secret of the edge's identity in its own site's store."""
        return self.site_credentials_secret or site_secret(self.name)


class TrainingSpec(SpecModel):
    batch_size: int = Field(default=32, gt=0)
    learning_rate: float = Field(default=0.05, gt=0)
    local_epochs: int = Field(default=1, gt=0)
    optimizer: Literal["sgd", "adam"] = "sgd"
    shuffle: bool = Field(default=True, description="shuffle each epoch (False: the dataset's row order)")
    order_seed: int | None = Field(  # the reference experiment's client order (tests/bench/reference.py)
        default=None,
        alias="orderSeed",
        ge=0,
        description="round r, edge c of spec.edges: rows in numpy "
        "default_rng([orderSeed, r, c]).permutation(n) order (later epochs: its next permutations)",
    )
    step: str | None = Field(
        default=None,
        description="a user's training step 'module:function', called at each edge as "
        "step(weights, x, y, *, model, training, seed) -> (weights, metrics) instead of the built-in one",
    )

    @field_validator("step")
    @classmethod
    def _step(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _FACTORY.match(value):
            raise ValueError(f"training step {value!r}: expected 'module:function'")
        _findable(value, "training step")
        _checked_signature(value, "training step", ("weights", "x", "y"), ("model", "training", "seed"))
        return value


class ColumnsSpec(SpecModel):
    """A user's own dataset: which columns are the model's input (in order) and which is the label."""

    features: Annotated[list[str], Field(min_length=1)] = Field(
        description="feature columns, in model-input order"
    )
    label: str = Field(default="label", description="the label column: class indices 0..classes-1")

    @model_validator(mode="after")
    def _distinct(self) -> ColumnsSpec:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        seen: set[str] = set()
        for i, name in enumerate(self.features):
            if name in seen:
                problems.append((("features", i), f"duplicate column {name!r}"))
            seen.add(name)
        if self.label in seen:
            problems.append((("label",), f"{self.label!r} is also a feature column"))
        if problems:
            raise FieldErrors(problems)
        return self


#: Metrics the evaluation records per task type, and whether higher is better.
METRICS: dict[str, dict[str, bool]] = {
    "classification": {"accuracy": True, "loss": False},
    "regression": {"mse": False, "mae": False, "loss": False},
}


class EvaluationSpec(SpecModel):
    every_rounds: int = Field(default=1, gt=0, description="central evaluation every N rounds")
    metric: str | None = Field(
        default=None,
        description="the metric stop conditions and promotion compare (classification: accuracy, loss; "
        "regression: mse, mae, loss); default accuracy, or mse for regression",
    )


class MinImprovement(SpecModel):
    delta: float = Field(gt=0, description="smallest accuracy gain that counts as progress")
    patience: int = Field(default=3, gt=0, description="evaluations without progress before stopping")


class StopSpec(SpecModel):
    max_rounds: int | None = Field(default=None, gt=0, description="cap on rounds; default spec.rounds")
    target_accuracy: float | None = Field(default=None, gt=0, le=1)
    target_metric: float | None = Field(
        default=None, description="stop once evaluation.metric reaches this (>= if higher is better, else <=)"
    )
    min_improvement: MinImprovement | None = None


class SamplingSpec(SpecModel):
    """Client sampling: each round asks a subset of the edges, a deterministic function of seed and round
    (a resumed round asks the same edges)."""

    fraction: float | None = Field(default=None, gt=0, le=1, description="share of the edges each round asks")
    count: int | None = Field(default=None, gt=0, description="number of edges each round asks")
    min_edges: int = Field(default=1, gt=0, description="ask at least this many edges")
    seed: int = 0

    @model_validator(mode="after")
    def _one_size(self) -> SamplingSpec:
        if (self.fraction is None) == (self.count is None):
            raise ValueError("give exactly one of fraction and count")
        return self


class DeadlinesSpec(SpecModel):
    """How long a round waits for an edge: an edge not done by then sits the round out."""

    edge_seconds: int | None = Field(
        default=None, gt=0, description="an edge's validate and train steps each (activeDeadlineSeconds)"
    )
    pending_seconds: int | None = Field(
        default=None,
        gt=0,
        description="an edge step not started (scheduled) by then fails (pendingTimeout); "
        "Argo enforces it only on steps without retries, so the edge steps then do not retry",
    )


#: Rounds one task Workflow can run: Argo nests templates at most 100 deep, and the task Workflow
#: nests one level per round in a chain plus one per chain (see workflows/build/task.py).
MAX_ROUNDS = 2000


class FederatedTaskSpec(SpecModel):
    model: ModelSpec
    dataset: str = Field(description="dataset schema name (heart, digits, mnist, ...): selects the test set")
    contract: str | None = Field(
        default=None,
        description="data contract every edge's dataset is checked against (data_contracts/<name>.yaml); "
        "default: the dataset's",
    )
    columns: ColumnsSpec | None = Field(
        default=None,
        description="a user's own dataset: its feature columns and label column (default: the packaged "
        "dataset's, every column but 'label')",
    )
    edges: Annotated[list[EdgeSpec], Field(min_length=1)]
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    aggregation: AggregationSpec = Field(default_factory=FedAvgSpec)
    rounds: int = Field(gt=0, le=MAX_ROUNDS)
    sampling: SamplingSpec | None = Field(default=None, description="ask a subset of the edges each round")
    deadlines: DeadlinesSpec = Field(default_factory=DeadlinesSpec)
    autonomy: AutonomySpec = Field(
        default_factory=AutonomySpec,
        description="an edge that cannot reach the cloud: train offline, deliver later",
    )
    quorum: int = Field(default=1, gt=0, description="minimum edges whose updates a round needs")
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    stop: StopSpec = Field(default_factory=StopSpec)
    store: CloudStoreSpec = Field(
        default_factory=CloudStoreSpec, description="the cloud store: updates and models"
    )
    site_store: SiteStoreSpec = Field(
        default_factory=SiteStoreSpec, description="the store on every edge node (unless edges[].store)"
    )
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    cloud_credentials_secret: str = CLOUD_SECRET
    image: str = DEFAULT_IMAGE
    parallelism: int | None = Field(default=None, gt=0, description="edges trained at once")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        return _dns_label(value)

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_the_task(cls, data: Any) -> Any:
        return plan_privacy(data)

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
        problems.extend(quorum_problems(self.aggregation, self.quorum))
        if self.aggregation.secure:
            problems.extend(self._secure_problems())
        metrics = METRICS[self.model.task]
        if self.evaluation.metric is not None and self.evaluation.metric not in metrics:
            problems.append(
                (
                    ("evaluation", "metric"),
                    f"a {self.model.task} task records {', '.join(metrics)}, not {self.evaluation.metric!r}",
                )
            )
        if self.model.task == "regression" and self.stop.target_accuracy is not None:
            problems.append(
                (("stop", "targetAccuracy"), "a regression task has no accuracy: use targetMetric")
            )
        if self.columns is not None:
            inputs = math.prod(self.model.input_shape)
            if inputs != len(self.columns.features):
                problems.append(
                    (
                        ("columns", "features"),
                        f"{len(self.columns.features)} feature columns, but model.inputShape "
                        f"{self.model.input_shape} takes {inputs}",
                    )
                )
        problems.extend(self._sampling_problems())
        if self.stop.max_rounds is not None and self.stop.max_rounds > self.rounds:
            message = f"maxRounds {self.stop.max_rounds} exceeds rounds ({self.rounds})"
            problems.append((("stop", "maxRounds"), message))
        if problems:
            raise FieldErrors(problems)
        return self

    def _secure_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        # imported here: the protocol's cryptography is paid for only by tasks that use it
        from edgefed.steps.secagg import MIN_EDGES

        if len(self.edges) >= MIN_EDGES:
            return []
        return [
            (
                ("aggregation", "secure"),
                f"secure aggregation needs at least {MIN_EDGES} edges (with two, each would learn "
                f"the other's update from the sum); the task has {len(self.edges)}",
            )
        ]

    def _sampling_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        sampling, n = self.sampling, len(self.edges)
        if sampling is None:
            return []
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if sampling.count is not None and sampling.count > n:
            problems.append(
                (("sampling", "count"), f"count {sampling.count} is above the number of edges ({n})")
            )
        if sampling.min_edges > n:
            problems.append(
                (
                    ("sampling", "minEdges"),
                    f"minEdges {sampling.min_edges} is above the number of edges ({n})",
                )
            )
        if not problems:
            from edgefed.steps.planning import sample_size

            asked = sample_size(sampling.model_dump(by_alias=True), n)
            if asked < self.quorum:
                problems.append(
                    (("sampling",), f"each round asks {asked} of {n} edges, below the quorum ({self.quorum})")
                )
        return problems

    @property
    def metric(self) -> str:
        """The metric stop conditions and promotion compare."""
        return self.evaluation.metric or ("mse" if self.model.task == "regression" else "accuracy")

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.model.task][self.metric]

    @property
    def last_round(self) -> int:
        """The last round the task may run."""
        return min(self.rounds, self.stop.max_rounds or self.rounds)


class Metadata(SpecModel):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # task names prefix workflow names (<task>-r00001-xxxxx) and object keys
        return _dns_label(value, max_len=40)


class FederatedTask(SpecModel):
    """The whole custom-resource-shaped document."""

    api_version: Literal["edgefed.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["FederatedTask"]
    metadata: Metadata
    spec: FederatedTaskSpec

    @property
    def name(self) -> str:
        return self.metadata.name


def _union_message(e: dict[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    """The spec's wording for an aggregation section that names no known algorithm."""
    if e["type"] == "union_tag_invalid":
        tag = (e.get("ctx") or {}).get("tag")
        return ("algorithm",), f"unknown algorithm {tag!r}: expected one of {', '.join(ALGORITHMS)}"
    if e["type"] == "union_tag_not_found":
        return (), f"expected a mapping with an algorithm (one of {', '.join(ALGORITHMS)})"
    return None


def _problems(err: ValidationError) -> list[str]:
    # pydantic puts the chosen union member in error paths; users never wrote it.
    return documents.problems(err, hidden=ALGORITHMS, message=_union_message)


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
    return parse_task(read_task_document(path), source=str(path))


def dump_task(task: FederatedTask) -> dict[str, Any]:
    """The task as a YAML-ready dict with camelCase keys (defaults included)."""
    return task.model_dump(mode="json", by_alias=True, exclude_none=True)


__all__ = [
    "API_VERSION",
    "BUILTIN_MODELS",
    "DEFAULT_IMAGE",
    "KIND",
    "MAX_ROUNDS",
    "METRICS",
    "CloudStoreSpec",
    "ColumnsSpec",
    "DatasetRef",
    "DeadlinesSpec",
    "EdgeSpec",
    "EvaluationSpec",
    "FederatedTask",
    "FederatedTaskSpec",
    "Metadata",
    "MinImprovement",
    "ModelSpec",
    "ResourcesSpec",
    "RoleResourcesSpec",
    "SamplingSpec",
    "SiteStoreSpec",
    "StopSpec",
    "StoreSpec",
    "Toleration",
    "TrainingSpec",
    "dump_task",
    "load_task",
    "parse_task",
]
