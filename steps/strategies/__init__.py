"""Aggregation strategies: the named algorithms, one paper per module; each a preset composition of
:mod:`edgefed.steps.aggregators` (a server optimizer over an aggregator chain). Pure NumPy, no I/O.

Every strategy implements :class:`Strategy` (``begin`` / ``add`` per update / ``finish``);
:func:`from_config` builds one from the spec's ``aggregation`` section; :func:`screen` vets an
update before it is added. FedProx's edge-side term lives in ``fedprox_tf`` (TensorFlow), which
is not imported here.
"""

from edgefed.steps.aggregators import ShapeMismatchError, screen
from edgefed.steps.strategies.base import (
    Composition,
    ServerState,
    Strategy,
    StrategyError,
    UpdateRejectedError,
)
from edgefed.steps.strategies.catalog import STEP_KEYS, STRATEGIES, edge_settings, from_config, parameters
from edgefed.steps.strategies.dp import DPFedAvg, epsilon_spent, noise_for_target
from edgefed.steps.strategies.fedavg import FedAvg
from edgefed.steps.strategies.fedopt import FedAdagrad, FedAdam, FedAvgM, FedYogi
from edgefed.steps.strategies.fedprox import FedProx, proximal_term
from edgefed.steps.strategies.krum import Krum
from edgefed.steps.strategies.median import Median
from edgefed.steps.strategies.trimmed_mean import TrimmedMean

__all__ = [
    "STEP_KEYS",
    "STRATEGIES",
    "Composition",
    "DPFedAvg",
    "FedAdagrad",
    "FedAdam",
    "FedAvg",
    "FedAvgM",
    "FedProx",
    "FedYogi",
    "Krum",
    "Median",
    "ServerState",
    "ShapeMismatchError",
    "Strategy",
    "StrategyError",
    "TrimmedMean",
    "UpdateRejectedError",
    "edge_settings",
    "epsilon_spent",
    "from_config",
    "noise_for_target",
    "parameters",
    "proximal_term",
    "screen",
]
