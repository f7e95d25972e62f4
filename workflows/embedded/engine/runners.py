"""How a resolved container/script node actually runs.

A :class:`Runner` gets a fully resolved :class:`NodeExecution` (argv, env overlay, working directory,
deadline, log sinks) and returns the process's exit code. It raises :class:`RunnerError` when it cannot
run the node at all (node ``Error``) and :class:`NodeDeadlineExceededError` when the deadline killed it
(node ``Failed``, as Argo does).

* :class:`LocalProcessRunner` - a ``subprocess.Popen`` in its own session/process group; stdout and
  stderr are streamed line by line into the node log (stdout also into the stdout file that becomes
  ``outputs.result``). When the main process exits or the deadline passes, the whole group is killed,
  like a pod's containers.
* :class:`WarmPythonRunner` - containers whose ``command[0]`` is mapped to a Python function
  (``{"edgefed-step": "edgefed.steps.cli:run"}``) run inside a :class:`~.pool.WorkerPool` of pre-spawned
  warm processes; everything else falls back to :class:`LocalProcessRunner`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from .cancel import Cancel
from .errors import NodeDeadlineExceededError, RunnerError
from .logio import pump_lines
from .pool import WorkerPool

__all__ = ["LocalProcessRunner", "NodeExecution", "Runner", "WarmPythonRunner", "kill_process_group"]


@dataclass(frozen=True, kw_only=True)
class NodeExecution:
    """One resolved container/script node, ready to run."""

    node_id: str
    node_name: str
    argv: list[str]
    #: Variables set on top of the engine's own environment (template env, secrets, TMPDIR).
    env: Mapping[str, str] = field(repr=False)
    cwd: Path
    #: Absolute ``time.monotonic()`` deadline, or None.
    deadline: float | None
    #: Combined stdout+stderr log of the node.
    log_path: Path
    #: stdout only (becomes ``outputs.result``).
    stdout_path: Path
    #: Values to mask in the logs (secrets).
    redact: tuple[str, ...] = field(default=(), repr=False)
    #: Fired when the Workflow is terminated: the node is killed then, as a terminated Workflow's pods are.
    cancel: Cancel | None = field(default=None, repr=False)


@runtime_checkable
class Runner(Protocol):
    """Executes one resolved container/script node and returns its exit code."""

    def run(self, execution: NodeExecution) -> int: ...


def kill_process_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the process group ``pid`` (ignoring a group that is already gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class LocalProcessRunner:
    """Run the node's argv as a local process in its own process group."""

    def __init__(self, *, kill_grace: float = 1.0) -> None:
        self.kill_grace = kill_grace

    def run(self, execution: NodeExecution) -> int:
        env = {**os.environ, **execution.env}
        try:
            proc = subprocess.Popen(
                execution.argv,
                cwd=execution.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise RunnerError(
                f"cannot start {execution.argv[0]!r}: {exc.strerror or exc.__class__.__name__}"
            ) from exc
        redact = [s.encode() for s in execution.redact if s]
        lock = threading.Lock()
        with open(execution.log_path, "ab") as log, open(execution.stdout_path, "ab") as out:
            assert proc.stdout is not None and proc.stderr is not None
            pumps = [
                threading.Thread(
                    target=pump_lines, args=(proc.stdout, [log, out], lock, redact), daemon=True
                ),
                threading.Thread(target=pump_lines, args=(proc.stderr, [log], lock, redact), daemon=True),
            ]
            for t in pumps:
                t.start()
            timed_out = False
            try:
                rc = _wait(proc, execution.deadline, execution.cancel)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_process_group(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=self.kill_grace)
            finally:
                # The pod is gone when its main process is: take any leftover children with it.
                kill_process_group(proc.pid, signal.SIGKILL)
                rc = proc.wait()
                for t in pumps:
                    t.join(timeout=5)
                proc.stdout.close()
                proc.stderr.close()
        if timed_out:
            raise NodeDeadlineExceededError("Pod was active on the node longer than the specified deadline")
        return rc


def _wait(proc: subprocess.Popen[bytes], deadline: float | None, cancel: Cancel | None) -> int:
    """``proc``'s exit code; :class:`subprocess.TimeoutExpired` past ``deadline`` or once ``cancel`` fires."""
    while True:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if cancel is None:
            return proc.wait(timeout=timeout)
        try:
            return proc.wait(timeout=0.1 if timeout is None else min(timeout, 0.1))
        except subprocess.TimeoutExpired:
            if cancel.fired or (deadline is not None and time.monotonic() >= deadline):
                raise


class WarmPythonRunner:
    """Run mapped commands as Python functions in warm worker processes.

    ``commands`` maps ``command[0]`` (e.g. ``"edgefed-step"``) to ``"module:function"``; the function is
    called as ``fn(argv) -> int`` with ``argv = command[1:] + args``. Unmapped commands run through
    ``fallback`` (a :class:`LocalProcessRunner` by default). The pool is not owned: close it yourself.
    """

    def __init__(
        self,
        *,
        pool: WorkerPool,
        commands: Mapping[str, str],
        fallback: Runner | None = None,
    ) -> None:
        self.pool = pool
        self.commands = dict(commands)
        self.fallback = fallback or LocalProcessRunner()

    def run(self, execution: NodeExecution) -> int:
        target = self.commands.get(execution.argv[0]) if execution.argv else None
        if target is None:
            return self.fallback.run(execution)
        return self.pool.call(
            target,
            list(execution.argv[1:]),
            env=dict(execution.env),
            cwd=execution.cwd,
            log_path=execution.log_path,
            stdout_path=execution.stdout_path,
            deadline=execution.deadline,
            redact=execution.redact,
            cancel=execution.cancel,
        )
