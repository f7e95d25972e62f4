"""Aggregation strategies: one algorithm per module, paper cited; pure NumPy kernels, no I/O.

Every strategy implements :class:`Strategy` (``begin`` / ``add`` per update / ``finish``);
:func:`from_config` builds one from the spec's ``aggregation`` section; :func:`screen` vets an
update before it is added. FedProx's edge-side term lives in ``fedprox_tf`` (TensorFlow), which
is not imported here.
"""

from edgefed.steps.strategies.base import ServerState, Strategy, StrategyError, UpdateRejectedError
from edgefed.steps.strategies.catalog import STEP_KEYS, STRATEGIES, from_config, parameters
from edgefed.steps.strategies.dp import DPFedAvg, epsilon_spent, noise_for_target
from edgefed.steps.strategies.fedavg import FedAvg
from edgefed.steps.strategies.fedopt import FedAdagrad, FedAdam, FedAvgM, FedYogi
from edgefed.steps.strategies.fedprox import FedProx, proximal_term
from edgefed.steps.strategies.krum import Krum
from edgefed.steps.strategies.median import Median
from edgefed.steps.strategies.screening import screen
from edgefed.steps.strategies.trimmed_mean import TrimmedMean

__all__ = [
    "STEP_KEYS",
    "STRATEGIES",
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
    "Strategy",
    "StrategyError",
    "TrimmedMean",
    "UpdateRejectedError",
    "epsilon_spent",
    "from_config",
    "noise_for_target",
    "parameters",
    "proximal_term",
    "screen",
]
