"""A termination a blocked thread can wait on: ``argo terminate`` reaching steps that are running.

A running step is waited for in a thread (its worker's pipe, its process): an ``asyncio`` event of the
engine's loop cannot wake that wait. :class:`Cancel` is a socket pair: :meth:`fire` makes its read end
readable, so ``multiprocessing.connection.wait`` or ``select`` on it (beside the step's own pipe) returns
at once, and the step is killed like a pod of a terminated Workflow.
"""

from __future__ import annotations

import contextlib
import select
import socket

__all__ = ["Cancel"]


class Cancel:
    """Fired once (from any thread); waitable through :meth:`fileno` until :meth:`close`."""

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._fired = False

    def fileno(self) -> int:
        return self._read.fileno()

    @property
    def fired(self) -> bool:
        return self._fired

    def fire(self) -> None:
        self._fired = True
        with contextlib.suppress(OSError):  # closed: its run ended, nothing waits on it any more
            self._write.send(b"x")

    def wait(self, timeout: float | None) -> bool:
        """Block up to ``timeout`` seconds (None: until fired); True once fired."""
        if self._fired:
            return True
        with contextlib.suppress(OSError, ValueError):
            select.select([self._read], [], [], timeout)
        return self._fired

    def close(self) -> None:
        for end in (self._read, self._write):
            with contextlib.suppress(OSError):
                end.close()
