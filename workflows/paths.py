"""Where edgefed keeps its state on this machine."""

from __future__ import annotations

import os
from pathlib import Path


def default_home() -> Path:
    """``$EDGEFED_HOME``, else ``$XDG_STATE_HOME/edgefed``, else ``~/.local/state/edgefed``."""
    if os.environ.get("EDGEFED_HOME"):
        return Path(os.environ["EDGEFED_HOME"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "edgefed"


__all__ = ["default_home"]
