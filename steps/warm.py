"""Importing this module warms a process up for steps: TensorFlow, the trainer and Great Expectations.

The embedded engine's fork server preloads it (:class:`~edgefed.workflows.embedded.engine.pool.WorkerPool`
``preload``): the heavy imports are paid once, in the server, and every warm worker forked from it starts
with them done, sharing their memory pages copy-on-write.
"""

from edgefed.steps.cli import warm_up

warm_up()
