"""Exceptions raised by the embedded Argo Workflow engine.

Two families: problems with the *document* (raised before any node runs, so the caller can reject the
workflow up front) and problems while a *node* runs (turned into a node phase by the executor).
"""

from __future__ import annotations

__all__ = [
    "EngineError",
    "NodeDeadlineExceededError",
    "NodeError",
    "RunnerError",
    "UnresolvedVariableError",
    "UnsupportedFeatureError",
    "WorkflowInvalidError",
]


class EngineError(Exception):
    """Base class of every error the engine raises."""


class WorkflowInvalidError(EngineError):
    """The document is not a valid Argo Workflow (or references something that does not exist).

    ``problems`` lists every problem found, each naming its location in the document.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(self._text())

    def _text(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0]
        return f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)


class UnsupportedFeatureError(WorkflowInvalidError):
    """The document uses an Argo feature that the embedded engine does not execute.

    Raised up front, before any node runs; each problem names the feature and its location, e.g.
    ``spec.templates[3] (name: foo).resource: not supported by the embedded engine``.
    """


class UnresolvedVariableError(EngineError):
    """A ``{{...}}`` reference could not be resolved; the node that needed it errors."""

    def __init__(self, names: list[str], where: str = "") -> None:
        self.names = list(names)
        refs = ", ".join("{{" + n + "}}" for n in self.names)
        super().__init__(f"failed to resolve {refs}" + (f" in {where}" if where else ""))


class NodeError(EngineError):
    """Something the node needs is wrong (a missing input, an unreadable output...): node ``Error``."""


class RunnerError(EngineError):
    """The engine could not run a node's process (command not found, worker crashed...): node ``Error``."""


class NodeDeadlineExceededError(EngineError):
    """The node's process ran past its deadline and was killed: node ``Failed`` (as in Argo)."""
