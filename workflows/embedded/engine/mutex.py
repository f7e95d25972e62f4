"""``synchronization.mutexes``: at most one holder of a named mutex at a time, across threads and processes.

Argo (``workflow/sync``): a mutex is keyed ``<namespace>/Mutex/<name>`` (``lock_name.go``; the namespace
defaults to the workflow's). A workflow-level mutex (``spec.synchronization.mutexes``) is taken before
anything runs and held until the workflow completes; while it waits the workflow is ``Pending`` with
the message ``Waiting for <key> lock. Lock status: 0/1`` (``semaphore.go`` ``checkAcquire``). A
template-level mutex (``templates[].synchronization.mutexes``) is taken for that template's node,
which stays ``Pending`` with the same message (``operator.go`` ``markNodeWaitingForLock``) and is
released when the node is fulfilled. A second holder *waits*; it does not fail.

On one machine a mutex is an exclusive ``fcntl.flock`` on ``<lock dir>/<namespace>/Mutex/<name>`` (the
name percent-encoded); the lock dir is ``<run_dir>/.locks`` when the engine has a ``run_dir``, else one
per user under the system temp dir, so runs that share it exclude each other whatever process or thread
they run in, and a crashed process's locks go with it. ``flock`` locks belong to an open file
description, so two acquisitions in one process conflict as well. Waiting polls without blocking the
event loop (every 10 ms, backing off to 200 ms): unlike Argo's queue, waiters are not served in order.
Mutexes are taken in sorted key order, so two holders of the same set cannot deadlock. Only a
template's ``pendingTimeout`` or the workflow deadline bound a template-level wait (node Failed); a
workflow-level wait is unbounded, as in Argo.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .errors import NodeDeadlineExceededError

__all__ = ["Mutexes", "lock_dir", "mutex_keys", "waiting_message"]

_FIRST_POLL = 0.01
_MAX_POLL = 0.2


def lock_dir(run_dir: Path | None) -> Path:
    """Where the lock files live for an engine with this ``run_dir`` option."""
    if run_dir is not None:
        return Path(run_dir) / ".locks"
    return Path(tempfile.gettempdir()) / f"edgefed-engine-locks-{os.getuid()}"


def mutex_keys(synchronization: Mapping[str, Any] | None, namespace: str) -> list[str]:
    """Argo's lock keys ``<namespace>/Mutex/<name>`` of ``synchronization.mutexes``, sorted."""
    keys = {
        f"{m.get('namespace') or namespace}/Mutex/{m['name']}"
        for m in (synchronization or {}).get("mutexes") or []
    }
    return sorted(keys)


def waiting_message(key: str) -> str:
    """Argo's message while a mutex is held by someone else."""
    return f"Waiting for {key} lock. Lock status: 0/1"


class Mutexes:
    """The mutexes one workflow run holds."""

    def __init__(self, *, root: Path) -> None:
        self.root = root
        self._held: dict[str, list[int]] = {}  # holder -> open file descriptors

    def _path(self, key: str) -> Path:
        namespace, _kind, name = key.split("/", 2)
        return self.root / quote(namespace, safe="") / "Mutex" / quote(name, safe="")

    async def acquire(
        self,
        holder: str,
        keys: Sequence[str],
        *,
        waiting: Callable[[str], None],
        until: float | None = None,
        stop: Callable[[], bool] = lambda: False,
        timeout_message: str = "",
        stop_message: str = "",
    ) -> None:
        """Take every mutex of ``keys`` for ``holder``; ``waiting(message)`` when one is held elsewhere.

        Past ``until`` (``time.monotonic()``) or once ``stop()`` is true, give up: the mutexes taken so
        far are released and :class:`NodeDeadlineExceededError` carries ``timeout_message``/``stop_message``.
        """
        fds = self._held.setdefault(holder, [])
        for key in keys:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            delay, told = _FIRST_POLL, False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                if not told:
                    waiting(waiting_message(key))
                    told = True
                now = time.monotonic()
                if stop() or (until is not None and now >= until):
                    os.close(fd)
                    self.release(holder)
                    raise NodeDeadlineExceededError(stop_message if stop() else timeout_message)
                wait = delay if until is None else max(0.0, min(delay, until - now))
                await asyncio.sleep(wait)
                delay = min(delay * 2, _MAX_POLL)
            fds.append(fd)

    def release(self, holder: str) -> None:
        """Release what ``holder`` holds (nothing: no-op)."""
        for fd in self._held.pop(holder, []):
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def release_all(self) -> None:
        for holder in list(self._held):
            self.release(holder)
