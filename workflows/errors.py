"""Exceptions of the control plane and the CLI's exit codes, in one table."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit statuses of the ``edgefed`` CLI. Each member's docstring is its help text."""

    OK = 0
    FAILED = 1
    INVALID = 2
    STORE = 3
    INTERRUPTED = 130

    @property
    def help(self) -> str:
        return _HELP[self]


_HELP = {
    ExitCode.OK: "the command did what it was asked",
    ExitCode.FAILED: "a workflow, round or check failed; the message names the failing node or edge",
    ExitCode.INVALID: "the input (task spec, workflow document, option) is invalid; nothing was created",
    ExitCode.STORE: "the store could not be started or reached",
    ExitCode.INTERRUPTED: "interrupted; committed rounds are kept and a rerun resumes after them",
}


class EdgefedError(Exception):
    """Base of every error the control plane raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILED


class SpecError(EdgefedError):
    """A FederatedTask (or another ``kind``'s) spec is invalid. Lists every problem with its field path."""

    exit_code = ExitCode.INVALID

    def __init__(self, source: str, problems: list[str], *, kind: str = "FederatedTask") -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"invalid {kind} {source}: {len(problems)} problem(s)\n{lines}")


class RoundFailedError(EdgefedError):
    """A round's workflow did not succeed; no model version was committed for it."""

    def __init__(self, round_: int, workflow: str, message: str) -> None:
        self.round = round_
        self.workflow = workflow
        super().__init__(f"round {round_} failed (workflow {workflow}): {message}")


class StoreUnavailableError(EdgefedError):
    exit_code = ExitCode.STORE


__all__ = ["EdgefedError", "ExitCode", "RoundFailedError", "SpecError", "StoreUnavailableError"]
