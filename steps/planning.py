"""What comes after a round: stop conditions and client sampling, as pure functions of the plan config.

The ``plan`` step (:mod:`edgefed.steps.plan`) applies them to what the model registry holds; the
plan config is the ``plan`` section of the task config (``workflows/build`` writes it from the spec)::

    {"lastRound": 40, "everyRounds": 1,
     "stop": {"targetAccuracy": 0.9, "minImprovement": {"delta": 0.001, "patience": 3}},
     "sampling": {"fraction": 0.5, "count": null, "minEdges": 2, "seed": 7}}

Standard library only, no I/O.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["StopState", "evaluate_due", "min_delta", "sample_edges", "sample_size", "score", "stop_reason"]


def score(plan: Mapping[str, Any], evaluation: Mapping[str, Any]) -> float:
    """The evaluation's value of the plan's metric (default accuracy) as a score where higher is better
    (a metric where lower is better, as mse, is negated): what the stop conditions compare."""
    value = float(evaluation[plan.get("metric", "accuracy")])
    return value if plan.get("higherIsBetter", True) else -value


def _value(plan: Mapping[str, Any], score_: float) -> float:
    return score_ if plan.get("higherIsBetter", True) else -score_


@dataclass
class StopState:
    """Stop-condition bookkeeping after some round, rebuilt from the registry's evaluations.

    As Keras's ``EarlyStopping`` does, ``best`` moves only on an improvement of at least
    ``min_delta``; any other evaluation counts towards the patience (``stale``).
    """

    best: float | None = None
    stale: int = 0
    #: The last evaluation seen: (round, accuracy).
    last: tuple[int, float] | None = None

    def observe(self, round_: int, accuracy: float, min_delta: float | None) -> None:
        self.last = (round_, accuracy)
        if self.best is None or accuracy >= self.best + (min_delta or 0.0):
            self.best = accuracy
            self.stale = 0
        else:
            self.stale += 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StopState:
        last = data.get("last")
        return cls(best=data.get("best"), stale=int(data.get("stale", 0)), last=tuple(last) if last else None)


def min_delta(plan: Mapping[str, Any]) -> float | None:
    improvement = (plan.get("stop") or {}).get("minImprovement")
    return float(improvement["delta"]) if improvement else None


def stop_reason(plan: Mapping[str, Any], round_: int, state: StopState) -> str | None:
    """Why the task stops after ``round_`` (the last committed round), or None to go on."""
    stop = plan.get("stop") or {}
    metric = plan.get("metric", "accuracy")
    if state.last is not None and state.last[0] == round_:
        value = _value(plan, state.last[1])
        target = stop.get("targetAccuracy")
        if target is not None and metric == "accuracy" and value >= target:
            return f"target accuracy {target} reached ({value:.4f})"
        target = stop.get("targetMetric")
        if target is not None and (value >= target if plan.get("higherIsBetter", True) else value <= target):
            return f"target {metric} {target} reached ({value:.4f})"
        improvement = stop.get("minImprovement")
        if improvement and state.stale >= improvement["patience"]:
            return (
                f"{metric} improved by less than {improvement['delta']} for "
                f"{improvement['patience']} evaluations (best {_value(plan, state.best):.4f})"
            )
    if round_ >= plan["lastRound"]:
        return f"all {plan['lastRound']} rounds done"
    return None


def evaluate_due(plan: Mapping[str, Any], round_: int) -> bool:
    """Whether round ``round_``'s model is scored centrally (every N rounds, and the last one)."""
    return round_ % int(plan.get("everyRounds", 1)) == 0 or round_ == plan["lastRound"]


def sample_size(sampling: Mapping[str, Any], edges: int) -> int:
    """How many of ``edges`` edges a sampled round asks: ``count`` or ``ceil(fraction × edges)``,
    at least ``minEdges``, at most all of them."""
    if sampling.get("count") is not None:
        wanted = int(sampling["count"])
    else:
        wanted = math.ceil(float(sampling["fraction"]) * edges)
    return max(1, min(edges, max(wanted, int(sampling.get("minEdges", 1)))))


def sample_edges(names: Sequence[str], sampling: Mapping[str, Any] | None, round_: int) -> list[str]:
    """The edges round ``round_`` asks, in the spec's order: a deterministic function of the seed and
    the round (as Flower's and TFF's samplers are of theirs), so a resumed round asks the same edges.

    ``random.Random`` seeded with a string is stable across processes and Python versions (it hashes
    the string with SHA-512), unlike ``hash()``.
    """
    if not sampling:
        return list(names)
    k = sample_size(sampling, len(names))
    rng = random.Random(f"edgefed-sampling/{sampling.get('seed', 0)}/{round_}")
    chosen = set(rng.sample(sorted(names), k))
    return [name for name in names if name in chosen]
