"""``train``: one edge's local training for one round.

Loads the global model of the previous round, reads the edge's dataset from the edge's own store,
trains for the configured local epochs, and writes only the update (weights, example count,
training metrics) under the edge's prefix of the updates bucket. When it cannot train (dataset
missing or unreadable), it records why beside where the update would have been, so the round's
manifest can name the reason, and exits non-zero.

When the cloud store does not answer (for the spec's ``autonomy.cloudWaitSeconds``), the edge trains from
its own copy of the last global model and keeps the update at its site, exit status 6
(:mod:`edgefed.steps.autonomy`); the next round it reaches the cloud it delivers it as a late update.
"""

from __future__ import annotations

import argparse
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from minio import Minio

from edgefed.steps import autonomy, codec, layout, secure
from edgefed.steps.context import StepContext
from edgefed.steps.datasets import LABEL
from edgefed.steps.interface import Flag, Outputs, Step, StepExit
from edgefed.steps.store import (
    Endpoint,
    StepError,
    client_from_env,
    put_bytes,
    read_table_object,
    unreachable_store,
)


def frame_to_arrays(
    frame,
    input_shape: list[int],
    *,
    where: str,
    columns: dict | None = None,
    classes: int | None = None,
    regression: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of a dataset (a DataFrame, or a ``pyarrow.Table`` as read from the store):
    ``columns`` (the spec's: ``features`` in order, ``label``) or, for a packaged dataset, every column but
    ``label``. ``classes``: labels must be 0..classes-1."""
    label = (columns or {}).get("label", LABEL)
    names = list(frame.column_names if _is_table(frame) else frame.columns)
    if label not in names:
        raise StepError(f"{where}: no {label!r} column (columns: {', '.join(map(str, names[:8]))}...)")
    if columns:
        present = set(names)
        missing = [c for c in columns["features"] if c not in present]
        if missing:
            raise StepError(
                f"{where}: no feature column {missing[0]!r} ({len(missing)} of the spec's columns missing)"
            )
        features = list(columns["features"])
    else:
        features = [c for c in names if c != LABEL]
    expected = int(np.prod(input_shape))
    if len(features) != expected:
        raise StepError(
            f"{where}: {len(features)} feature columns, the model's inputShape {input_shape} needs {expected}"
        )
    if len(frame) == 0:
        raise StepError(f"{where}: the dataset has no rows")
    arrays = _numeric_table_arrays(frame, features, label) if _is_table(frame) else None
    if arrays is None:
        if _is_table(frame):
            frame = frame.to_pandas(use_threads=False)
        try:
            x = frame[features].to_numpy(np.float32)
            y = frame[label].to_numpy()
        except (TypeError, ValueError) as err:
            raise StepError(
                f"{where}: the feature columns and the label {label!r} must be numbers: {err}"
            ) from None
    else:
        x, y = arrays
    try:
        y = y.astype(np.float32 if regression else np.int64, copy=False)
    except (TypeError, ValueError) as err:
        raise StepError(f"{where}: the label {label!r} must be numbers: {err}") from None
    if regression and not np.isfinite(y).all():
        raise StepError(f"{where}: label {label!r} has values that are not finite numbers")
    if not regression and classes is not None and (y.min() < 0 or y.max() >= classes):
        raise StepError(
            f"{where}: label {label!r} has values outside 0..{classes - 1} (found {y.min()}..{y.max()})"
        )
    return x, y


def _is_table(frame) -> bool:
    return hasattr(frame, "column_names")  # a pyarrow.Table (pyarrow imported only where it is read)


def _numeric_table_arrays(table, features: list[str], label: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Features and labels straight from an Arrow table whose columns are all numbers without nulls, else
    None (the DataFrame path then says what is wrong). Not through pandas: a 785-column shard costs
    pandas ~10 ms in ``to_pandas`` and its block handling; here each column is a zero-copy view, stacked
    once."""
    import pyarrow as pa

    def plain(name: str) -> bool:
        column = table.column(name)
        kind = column.type
        return column.null_count == 0 and (pa.types.is_integer(kind) or pa.types.is_floating(kind))

    if not all(plain(c) for c in [*features, label]):
        return None
    # one row per feature, then its transpose (a view): the row-per-example matrix in column-major order,
    # as pandas gives it; a row-major copy costs more (12 ms for 10,000 x 784) than TensorFlow saves on it
    x = np.vstack([table.column(c).to_numpy() for c in features]).T
    return x.astype(np.float32, copy=False), table.column(label).to_numpy()


def run_user_step(
    name: str,
    weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    model: dict,
    training: dict,
    seed: int,
) -> tuple[list[np.ndarray], dict[str, float]]:
    """A user's training step ``module:function``, called as
    ``step(weights, x, y, *, model=..., training=..., seed=...) -> (weights, metrics)``: the round's global
    weights (NumPy arrays, in the model's order), the edge's features and labels, the spec's ``model`` and
    ``training`` sections; it returns new weights of the same shapes and a ``{name: float}`` of metrics. What it
    returns is checked here, so a wrong step fails this edge with a message, never the aggregate."""
    import importlib

    module, _, function = name.partition(":")
    try:
        step = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as err:
        raise StepError(f"training step {name!r} cannot be loaded: {err}") from None
    result = step([w.copy() for w in weights], x, y, model=model, training=training, seed=seed)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise StepError(
            f"training step {name!r} returned {type(result).__name__}, expected (weights, metrics)"
        )
    new, metrics = result
    new = [np.asarray(w) for w in new]
    shapes = [w.shape for w in weights]
    if [w.shape for w in new] != shapes:
        raise StepError(
            f"training step {name!r} returned weights of shapes {[w.shape for w in new]}, expected {shapes}"
        )
    if not all(np.isfinite(w).all() for w in new):
        raise StepError(f"training step {name!r} returned weights that are not all finite")
    try:
        metrics = {str(k): float(v) for k, v in dict(metrics).items()}
    except (TypeError, ValueError) as err:
        raise StepError(
            f"training step {name!r}: metrics must be a mapping of names to numbers ({err})"
        ) from None
    return [w.astype(weights[i].dtype, copy=False) for i, w in enumerate(new)], metrics


def parse(argv: list[str]) -> argparse.Namespace:
    parser = StepContext.parser(Step.TRAIN, at_edge=True)
    parser.add_argument(
        Flag.PARENT,
        default="",
        help="the round's parent model, as the plan found it (JSON: round, key, versionId, sha256); "
        "empty: read from its manifest",
    )
    return parser.parse_args(argv)


def run(argv: list[str]) -> int:
    args = parse(argv)
    ctx = StepContext.from_args(args)
    cloud = autonomy.cloud_client(ctx)
    with ctx.reporting_failures(cloud, args.edge):
        return _train(ctx, cloud, args)


def training_settings(config: dict) -> dict:
    """The spec's ``training`` section plus what the aggregation strategy needs of the edges
    (FedProx: ``proximalMu``)."""
    from edgefed.steps.strategies import StrategyError, edge_settings

    try:
        extra = edge_settings(config.get("aggregation") or {})
    except StrategyError as err:
        raise StepError(f"aggregation: {err}") from None
    return {**config["training"], **extra}


def _train(ctx: StepContext, cloud: Minio, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    edge_store = client_from_env(Endpoint.parse(args.dataset_store), site=True)
    # The site's requests (the dataset, the outbox listing) do not wait for the cloud's (the parent model):
    # they run beside them, and the edge's copy of the parent is written while it trains. Threads, because
    # the requests wait on sockets (the GIL is released) and TensorFlow's fit releases it too.
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="edgefed-train") as pool:
        dataset = pool.submit(_read_dataset, ctx, args, edge_store, started)
        if secure.enabled(ctx.config):
            # a secure round: only an edge that shared its keys masks and sends (else it sits out, untrained)
            roster = secure.sharers_of(ctx, cloud, args.edge)
            loaded = ctx.registry().load(ctx.task, ctx.round - 1)
            fit = _fit(ctx, args, dataset.result(), loaded.weights)
            meta = fit.meta(ctx, args, loaded.round, loaded.manifest["model"]["sha256"])
            data = secure.masked_input(
                ctx,
                edge_store,
                args.edge,
                loaded.weights,
                fit.weights,
                meta,
                roster=roster[0],
                sharers=roster[1],
            )
            secure.send_masked_input(ctx, cloud, args.edge, data)
            return fit.report(ctx, args)
        outbox = (
            autonomy.Outbox(edge_store, args.edge, ctx.task) if autonomy.works_offline(ctx.config) else None
        )
        pending = pool.submit(outbox.pending) if outbox else None
        try:
            parent, parent_bytes = autonomy.load_parent(
                ctx, cloud, autonomy.parent_ref(args.parent, ctx.round - 1)
            )
            late = outbox.deliver(ctx, cloud, pending.result()) if outbox and pending is not None else []
        except autonomy.Unreachable as err:
            if outbox is None:
                raise
            return _train_offline(ctx, args, edge_store, outbox, err, dataset)
        kept = (
            pool.submit(autonomy.keep_parent, edge_store, args.edge, ctx.task, parent, parent_bytes)
            if outbox
            else None
        )
        fit = _fit(ctx, args, dataset.result(), parent.weights)
        status = _send(ctx, args, cloud, outbox, fit, parent, late)
        if kept is not None:
            _check_copy(kept, args, ctx.round, parent.round)
        return fit.report(ctx, args) if status is None else status


def _check_copy(kept: Future[None], args: argparse.Namespace, round_: int, parent_round: int) -> None:
    """The edge's copy of the parent is a spare for a round without the cloud: failing to write it costs this
    round nothing, so it is said, not raised."""
    try:
        kept.result()
    except (StepError, autonomy.Unreachable) as err:
        print(
            f"edge {args.edge} round {round_}: could not keep its copy of round {parent_round}'s model at its "
            f"site ({err}); a round it cannot reach the cloud trains from an older copy, or sits out"
        )


def _send(
    ctx: StepContext,
    args: argparse.Namespace,
    cloud: Minio,
    outbox: autonomy.Outbox | None,
    fit: _Fit,
    parent: autonomy.Parent,
    late: list[int],
) -> int | None:
    """Send the update (None); or, the cloud gone since the edge read the parent, keep it (the exit status)."""
    meta = fit.meta(ctx, args, parent.round, parent.sha256)
    if late:
        meta["late"] = late  # the aggregate reads exactly these late updates beside this one
    data = codec.encode(fit.weights, meta)
    try:
        put_bytes(
            cloud,
            layout.UPDATES_BUCKET,
            layout.update_key(args.edge, ctx.task, ctx.round, ctx.workflow),
            data,
        )
    except autonomy.Unreachable as err:
        if outbox is None:
            raise
        # the cloud went away after the edge read the parent: the update waits at the edge; what it
        # delivered as late updates this round is sent again next time (this round's manifest will not
        # name them). Had the PUT in fact arrived (an answer lost, not the request), the aggregate that
        # receives this entry finds the edge among that round's contributors and drops it.
        outbox.keep(ctx.round, data)
        return _kept(ctx, args, outbox, err)
    return None


def _train_offline(
    ctx: StepContext,
    args: argparse.Namespace,
    edge_store: Minio,
    outbox: autonomy.Outbox,
    err: Exception,
    dataset: Future[_Dataset],
) -> int:
    """The cloud is out of reach: train from the edge's copy of the last global model it received and keep
    the update in its outbox (delivered the next round the cloud answers)."""
    parent = autonomy.site_parent(edge_store, args.edge, ctx.task)
    if parent is None:
        raise StepError(
            f"edge {args.edge} cannot reach the cloud store ({unreachable_store(err)}) and holds no copy of a "
            "global model to train from"
        )
    fit = _fit(ctx, args, dataset.result(), parent.weights)
    meta = fit.meta(ctx, args, parent.round, parent.sha256)
    meta["offline"] = True
    verdict = outbox.verdict(ctx.round)
    if verdict is not None:
        meta["verdict"] = verdict
    outbox.keep(ctx.round, codec.encode(fit.weights, meta))
    fit.report(ctx, args)
    return _kept(ctx, args, outbox, err, parent_round=parent.round)


def _kept(
    ctx: StepContext,
    args: argparse.Namespace,
    outbox: autonomy.Outbox,
    err: Exception,
    *,
    parent_round: int | None = None,
) -> int:
    source = f" from its copy of round {parent_round}'s model" if parent_round is not None else ""
    print(
        f"edge {args.edge} round {ctx.round}: the cloud store is out of reach ({type(err).__name__}); it "
        f"trained{source} and keeps the update at its site ({outbox.url(ctx.round)}) until it can deliver it"
    )
    return StepExit.OFFLINE


@dataclass
class _Fit:
    """One edge's local training: the new weights and what its update's metadata says of them."""

    weights: list[np.ndarray]
    metrics: dict[str, float]
    examples: int
    dataset: dict[str, object]
    train_seconds: float
    load_seconds: float

    def meta(self, ctx: StepContext, args: argparse.Namespace, parent_round: int, parent_sha: str) -> dict:
        return {
            "edge": args.edge,
            "task": ctx.task,
            "round": ctx.round,
            "workflow": ctx.workflow,
            "examples": self.examples,
            # which bytes it learned from: the manifest names each edge's dataset by these
            "dataset": self.dataset,
            "parentRound": parent_round,
            "parentSha256": parent_sha,
            "metrics": self.metrics,
            "trainSeconds": self.train_seconds,
            "loadSeconds": self.load_seconds,
        }

    def report(self, ctx: StepContext, args: argparse.Namespace) -> int:
        ctx.output(Outputs.EXAMPLES, str(self.examples))
        ctx.output(Outputs.LOSS, f"{self.metrics.get('loss', float('nan')):.6f}")
        ctx.output(Outputs.TRAIN_SECONDS, f"{self.train_seconds:.4f}")
        print(
            f"edge {args.edge} round {ctx.round}: {self.examples} examples, "
            + ", ".join(f"{k} {v:.4f}" for k, v in self.metrics.items())
            + f", trained in {self.train_seconds:.3f}s"
        )
        return 0


@dataclass
class _Dataset:
    """The edge's dataset as read from its own store: features, labels, which bytes, when it was ready."""

    x: np.ndarray
    y: np.ndarray
    described: dict[str, object]
    load_seconds: float  # from the step's start


def _read_dataset(ctx: StepContext, args: argparse.Namespace, edge_store: Minio, started: float) -> _Dataset:
    bucket, _, key = args.dataset.removeprefix("s3://").partition("/")
    frame, read = read_table_object(edge_store, bucket, key)
    x, y = frame_to_arrays(
        frame,
        ctx.config["model"]["inputShape"],
        where=args.dataset,
        columns=ctx.config.get("columns"),
        classes=ctx.config["model"].get("classes"),
        regression=ctx.config["model"].get("task") == "regression",
    )
    described = {"url": args.dataset, "etag": read.etag, "versionId": read.version_id, "rows": len(frame)}
    return _Dataset(x, y, described, time.perf_counter() - started)


def _fit(ctx: StepContext, args: argparse.Namespace, dataset: _Dataset, start: list[np.ndarray]) -> _Fit:
    """Train from ``start`` on the edge's dataset."""
    from edgefed.steps.models import trainer_for  # TensorFlow: imported once per (warm) process

    x, y = dataset.x, dataset.y
    settings = training_settings(ctx.config)
    fit_started = time.perf_counter()
    # The local shuffle depends on the model's seed, the round and the edge (not on the task's name),
    # so the same task trains the same way under any name; crc32 is stable across processes.
    seed = zlib.crc32(f"{ctx.config['model'].get('seed', 0)}/{ctx.round}/{args.edge}".encode())
    order_seed = settings.get("orderSeed")
    if order_seed is not None and not settings.get("step"):  # a reproducible order (the spec says how)
        order: int | list[int] = [int(order_seed), ctx.round, int(ctx.config["edgeIndex"][args.edge])]
    else:
        order = seed
    if settings.get("step"):
        weights, metrics = run_user_step(settings["step"], start, x, y, ctx.config["model"], settings, seed)
    else:
        trainer = trainer_for(ctx.config["model"], settings)
        weights, metrics = trainer.fit(start, x, y, epochs=int(settings["localEpochs"]), seed=order)
    return _Fit(
        weights=weights,
        metrics=metrics,
        examples=len(y),
        dataset=dataset.described,
        train_seconds=time.perf_counter() - fit_started,
        load_seconds=dataset.load_seconds,
    )


__all__ = ["frame_to_arrays", "run", "run_user_step", "training_settings"]
