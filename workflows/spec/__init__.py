"""The FederatedTask spec: ``task`` (the document, its parsing and every problem with its field path)
and ``aggregation`` (the aggregation section, one member per algorithm, derived from the strategies'
declarations; an ``aggregator`` section composes a strategy with another aggregator over deltas)."""

# The package's surface is its modules' surfaces (each module's __all__), written once there.
from edgefed.workflows.spec import aggregation, task
from edgefed.workflows.spec.aggregation import *  # noqa: F403
from edgefed.workflows.spec.task import *  # noqa: F403

__all__ = [*aggregation.__all__, *task.__all__]
