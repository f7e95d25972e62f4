"""``edgefed-step``: the one command every step template runs (the image's entry point).

``edgefed-step init|validate|train|aggregate|evaluate|plan|deploy|record-deployment ...``. :func:`run` is also what the embedded engine's
warm workers call in-process, so TensorFlow is imported once per worker, not once per step.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import urllib3

from edgefed.steps.interface import STEP_COMMAND, Step, StepExit
from edgefed.steps.store import StepError, unreachable_store

#: The module that runs each step (its ``run(argv) -> int``).
STEPS = {
    Step.INIT: "edgefed.steps.init_model",
    Step.VALIDATE: "edgefed.steps.validate",
    Step.TRAIN: "edgefed.steps.train",
    Step.AGGREGATE: "edgefed.steps.aggregate",
    Step.EVALUATE: "edgefed.steps.evaluate",
    Step.PLAN: "edgefed.steps.plan",
    Step.DEPLOY: "edgefed.steps.deploy",
    Step.RECORD_DEPLOYMENT: "edgefed.steps.deploy",
    Step.PROBE: "edgefed.steps.incremental",
    Step.DECIDE: "edgefed.steps.incremental",
    Step.PROMOTE_IF_BETTER: "edgefed.steps.incremental",
    Step.SECAGG_KEYS: "edgefed.steps.secure",
    Step.SECAGG_SHARE: "edgefed.steps.secure",
    Step.SECAGG_ROSTER: "edgefed.steps.secure",
    Step.SECAGG_UNMASK: "edgefed.steps.secure",
}


def run(argv: list[str]) -> int:
    """Run step ``argv[0]`` with the remaining arguments; returns the exit status."""
    if not argv or argv[0] not in STEPS:
        print(f"usage: {STEP_COMMAND} {{{'|'.join(STEPS)}}} [options]", file=sys.stderr)
        return StepExit.USAGE
    module = importlib.import_module(STEPS[argv[0]])
    try:
        # a module holding several steps names each ``run_<step>``; a module of one step has ``run``
        run_step = getattr(module, f"run_{argv[0].replace('-', '_')}", None) or module.run
        return int(run_step(argv[1:]) or 0)
    except StepError as err:
        print(f"{STEP_COMMAND} {argv[0]}: error: {err}", file=sys.stderr)
        return err.exit_code
    except urllib3.exceptions.HTTPError as err:  # the store never answered, after STORE_RETRY's backoff
        print(f"{STEP_COMMAND} {argv[0]}: error: {unreachable_store(err)}", file=sys.stderr)
        return StepExit.FAILED  # retried by the template's retryStrategy
    except SystemExit as exit_:  # argparse
        return exit_.code if isinstance(exit_.code, int) else StepExit.USAGE


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null: TensorFlow's C++ start-up writes "Unable to register cuDNN / cuFFT /
    cuBLAS factory" error lines on every machine without a GPU, below what ``TF_CPP_MIN_LOG_LEVEL`` 2
    hides (3 would hide real errors later). Python's own errors are raised, not written, and still show."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def warm_up() -> None:
    """Initializer of an embedded-engine warm worker: pay the heavy imports once."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules:
        with _native_stderr_silenced():
            import tensorflow  # noqa: F401

    import edgefed.steps.models  # noqa: F401
    from edgefed.steps.contracts import warm_up as contracts_warm_up

    contracts_warm_up()  # Great Expectations: also once per worker


def main() -> None:
    sys.exit(run(sys.argv[1:]))


__all__ = ["STEPS", "main", "run", "warm_up"]
