"""Importing this module warms a process up for steps: TensorFlow, the trainer and Great Expectations.

The embedded engine's fork server preloads it (:class:`~edgefed.workflows.embedded.engine.pool.WorkerPool`
``preload``): the heavy imports are paid once, in the server, and every warm worker forked from it starts
with them done, sharing their memory pages copy-on-write.
"""

import gc

from edgefed.steps.cli import warm_up

warm_up()
# What the imports made is never collected: kept out of the collector's reach, a forked worker's garbage
# collections do not write to (and so copy) the pages it shares with the server.
gc.freeze()
