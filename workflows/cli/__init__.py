"""The ``edgefed`` command line (``app``), one command per module; ``python -m edgefed.workflows.cli``."""

from edgefed.workflows.cli.app import app, main

__all__ = ["app", "main"]
