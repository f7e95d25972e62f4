"""What the embedded runtime's warm workers run, import and preload: names only, so ``edgefed run`` can
start the fork server (seconds of TensorFlow imports) before it imports the runtime itself."""

from __future__ import annotations

#: The ``"module:function"`` a warm worker calls for ``edgefed-step``.
WARM_TARGET = "edgefed.steps.cli:run"
#: Run once in each warm worker.
WARM_INITIALIZER = "edgefed.steps.cli:warm_up"
#: What the fork server of the warm workers imports once (TensorFlow, Great Expectations): see WorkerPool.
WARM_PRELOAD = ("edgefed.steps.warm",)

__all__ = ["WARM_INITIALIZER", "WARM_PRELOAD", "WARM_TARGET"]
