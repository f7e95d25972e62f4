"""Composable aggregation, in the manner of TFF's aggregation factories: pure NumPy, no I/O.

Three layers, each a small class with one job::

    server optimizer      SGD (η = 1: FedAvg's application) | Momentum | Adagrad | Yogi | Adam
      over wrappers       Screen (shapes, finite values, norm bound) > GaussianNoise (DP) > NormClip
        over an aggregator  Mean (weighted or not) | CoordinateMedian | CoordinateTrimmedMean | MultiKrum

A wrapper holds an ``inner`` aggregator and passes every call on (:class:`Wrapper`), so DP over a
median is ``GaussianNoise(inner=NormClip(inner=CoordinateMedian()))`` under ``SGD``, and FedAdam over a
trimmed mean is ``CoordinateTrimmedMean()`` under ``Adam``. The named algorithms of
``edgefed.steps.strategies`` are presets of these compositions, and the spec's ``aggregation.aggregator``
section swaps a preset's inner aggregator (:func:`from_config`).

Memory: a composition streams (one update at a time) when its aggregator does (the mean); the median,
trimmed mean and Krum spool updates to a temporary file and work in coordinate blocks. Every kernel
(the shape check, the delta norm, the weighted mean, the spool) is in :mod:`.kernels`; parameters are
declared once per class (:mod:`.params`); state between rounds is a :class:`ServerState`.
"""

from edgefed.steps.aggregators.base import (
    Aggregator,
    Contribution,
    Form,
    SpooledAggregator,
    SpooledParams,
    Wrapper,
)
from edgefed.steps.aggregators.catalog import AGGREGATORS, from_config
from edgefed.steps.aggregators.clipping import NormClip
from edgefed.steps.aggregators.errors import AggregatorError, ShapeMismatchError, UpdateRejectedError
from edgefed.steps.aggregators.kernels import RoundRandom, WeightedMean, delta_norm, shape_problem
from edgefed.steps.aggregators.krum import KrumParams, MultiKrum
from edgefed.steps.aggregators.mean import Mean, MeanParams
from edgefed.steps.aggregators.median import CoordinateMedian
from edgefed.steps.aggregators.noise import GaussianNoise
from edgefed.steps.aggregators.optimizers import SGD, Adagrad, Adam, Momentum, ServerOptimizer, Yogi
from edgefed.steps.aggregators.screening import Screen, screen
from edgefed.steps.aggregators.state import ServerState
from edgefed.steps.aggregators.trimmed_mean import CoordinateTrimmedMean, TrimmedMeanParams

__all__ = [
    "AGGREGATORS",
    "SGD",
    "Adagrad",
    "Adam",
    "Aggregator",
    "AggregatorError",
    "Contribution",
    "CoordinateMedian",
    "CoordinateTrimmedMean",
    "Form",
    "GaussianNoise",
    "KrumParams",
    "Mean",
    "MeanParams",
    "Momentum",
    "MultiKrum",
    "NormClip",
    "RoundRandom",
    "Screen",
    "ServerOptimizer",
    "ServerState",
    "ShapeMismatchError",
    "SpooledAggregator",
    "SpooledParams",
    "TrimmedMeanParams",
    "UpdateRejectedError",
    "WeightedMean",
    "Wrapper",
    "Yogi",
    "delta_norm",
    "from_config",
    "screen",
    "shape_problem",
]
