"""A pool of warm Python worker processes (``multiprocessing`` spawn context).

Why: a step that imports TensorFlow pays seconds of import and graph tracing every time it starts as a
fresh process. A warm worker runs an optional initializer (``"module:function"``, e.g. one that imports
TensorFlow) once, then executes many steps, keeping module-level caches between calls.

Each call runs ``fn(argv) -> int`` with the node's environment overlaid on ``os.environ`` (restored
afterwards), the node's working directory, and file descriptors 1/2 plus ``sys.stdout``/``sys.stderr``
redirected into the node log (stdout also into the node's stdout file). Every worker is the leader of its
own session, so killing it takes any processes it started along.

* deadline passed -> the worker is killed and replaced, :class:`NodeDeadlineExceededError` (node Failed);
* the worker died -> it is replaced, :class:`RunnerError` (node Error).

:meth:`WorkerPool.close` (or leaving the ``with`` block) stops every worker and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

from .errors import NodeDeadlineExceededError, RunnerError
from .logio import pump_lines

__all__ = ["WorkerPool", "resolve_callable", "start_fork_server"]


def resolve_callable(spec: str) -> Callable[..., Any]:
    """Import ``"package.module:function"``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'module:function', got {spec!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is not callable")
    return obj


# --------------------------------------------------------------------------------------------- the worker


def _exit_code(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


def _capture_call(
    fn: Callable[[list[str]], Any],
    argv: list[str],
    env: Mapping[str, str],
    cwd: str,
    log_path: str,
    stdout_path: str,
    redact: Sequence[str],
) -> int:
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = (os.dup(1), os.dup(2))
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    lock = threading.Lock()
    secrets = [s.encode() for s in redact if s]
    with open(log_path, "ab") as log, open(stdout_path, "ab") as out:
        src_out = os.fdopen(r_out, "rb")
        src_err = os.fdopen(r_err, "rb")
        pumps = [
            threading.Thread(target=pump_lines, args=(src_out, [log, out], lock, secrets), daemon=True),
            threading.Thread(target=pump_lines, args=(src_err, [log], lock, secrets), daemon=True),
        ]
        for t in pumps:
            t.start()
        os.dup2(w_out, 1)
        os.dup2(w_err, 2)
        os.close(w_out)
        os.close(w_err)
        old_streams = (sys.stdout, sys.stderr)
        sys.stdout = io.TextIOWrapper(
            io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="replace", line_buffering=True
        )
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="replace", line_buffering=True
        )
        try:
            os.environ.update(env)
            os.chdir(cwd)
            rc = _exit_code(fn(list(argv)))
        except SystemExit as exc:
            rc = _exit_code(exc.code)
        except BaseException:
            traceback.print_exc()
            rc = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            sys.stdout, sys.stderr = old_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            os.close(saved_fds[0])
            os.close(saved_fds[1])
            for t in pumps:
                t.join(timeout=5)
            src_out.close()
            src_err.close()
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
    return rc


def _worker_main(
    conn: multiprocessing.connection.Connection,
    initializer: str | None,
    environ: dict[str, str],
    cwd: str,
    path: list[str],
) -> None:
    """Entry point of a warm worker process. ``environ``, ``cwd`` and ``path`` are the pool owner's when it
    started the worker: a worker forked from the fork server would otherwise have the server's, from when
    the server started."""
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    sys.path[:] = path
    os.setsid()  # own process group: a kill takes everything the step started along
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if initializer:
            resolve_callable(initializer)()
    except BaseException:
        conn.send(("init-error", traceback.format_exc(limit=5)))
        return
    conn.send(("ready", os.getpid()))
    functions: dict[str, Callable[..., Any]] = {}
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        _, target, argv, env, cwd, log_path, stdout_path, redact = msg
        try:
            fn = functions.get(target) or resolve_callable(target)
            functions[target] = fn
        except Exception as exc:
            conn.send(("error", f"cannot load {target}: {exc.__class__.__name__}: {exc}"))
            continue
        rc = _capture_call(fn, argv, env, cwd, log_path, stdout_path, redact)
        conn.send(("done", rc))


# ----------------------------------------------------------------------------------------------- the pool


class _Worker:
    def __init__(self, process: Any, conn: multiprocessing.connection.Connection) -> None:
        self.process = process
        self.conn = conn

    @property
    def pid(self) -> int:
        return int(self.process.pid)


_preloaded: list[str] = []


def _preload_fork_server(ctx: Any, modules: Sequence[str]) -> None:
    """Ask the process-wide fork server to import ``modules`` (once, before it starts)."""
    with _open_lock:
        missing = [m for m in modules if m not in _preloaded]
        if missing:
            _preloaded.extend(missing)
            ctx.set_forkserver_preload(list(_preloaded))


def start_fork_server(modules: Sequence[str]) -> None:
    """Start the fork server now, in the background, preloading ``modules``: a command that will run
    steps calls it first, so the heavy imports overlap with its own start-up (store, spec, documents)."""
    ctx = multiprocessing.get_context("forkserver")
    _preload_fork_server(ctx, modules)
    from multiprocessing import forkserver

    threading.Thread(target=forkserver.ensure_running, name="edgefed-forkserver", daemon=True).start()


_open_pools = 0
_open_lock = threading.Lock()
_tracker_ours = False


class WorkerPool:
    """``size`` warm worker processes, each initialised once with ``initializer`` (``"module:function"``)."""

    def __init__(
        self,
        *,
        size: int = 2,
        initializer: str | None = None,
        start_timeout: float = 300.0,
        preload: Sequence[str] = (),
    ) -> None:
        """``preload``: modules a fork server imports once; the workers are forked from it (multiprocessing's
        ``forkserver``), so heavy imports (TensorFlow) are paid once per process that owns pools, not once
        per worker, and their pages are shared copy-on-write. Without it, each worker is spawned afresh.
        The fork server is process-wide: the first pool that starts it decides what it preloads."""
        global _open_pools, _tracker_ours
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self.initializer = initializer
        self.start_timeout = start_timeout
        if preload:
            self._ctx = multiprocessing.get_context("forkserver")
            _preload_fork_server(self._ctx, preload)
        else:
            self._ctx = multiprocessing.get_context("spawn")
        self._cond = threading.Condition()
        self._idle: deque[_Worker] = deque()
        self._live: list[_Worker] = []
        self._closed = False
        with _open_lock:
            if _open_pools == 0 and getattr(resource_tracker._resource_tracker, "_pid", None) is None:
                _tracker_ours = True
            _open_pools += 1
        starting: list[_Worker] = []
        try:
            for _ in range(size):
                starting.append(self._start())
            for w in starting:
                self._await_ready(w)
                with self._cond:
                    self._live.append(w)
                    self._idle.append(w)
        except BaseException:
            for w in starting:
                self._kill(w)
            self.close()
            raise

    # -- lifecycle
    def _start(self) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child_conn, self.initializer, dict(os.environ), os.getcwd(), list(sys.path)),
            daemon=True,
            name="edgefed-warm-worker",
        )
        proc.start()
        child_conn.close()
        return _Worker(proc, parent_conn)

    def _await_ready(self, w: _Worker) -> None:
        ready = multiprocessing.connection.wait([w.conn, w.process.sentinel], timeout=self.start_timeout)
        if w.conn in ready:
            try:
                kind, payload = w.conn.recv()
            except (EOFError, OSError):
                kind, payload = "died", None
            if kind == "ready":
                return
            self._kill(w)
            if kind == "init-error":
                raise RunnerError(f"warm worker initializer {self.initializer} failed:\n{payload}")
        else:
            self._kill(w)
        raise RunnerError(f"warm worker (pid {w.pid}) did not start (exit code {w.process.exitcode})")

    def _kill(self, w: _Worker) -> None:
        if w.process.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(w.pid, signal.SIGKILL)
            w.process.kill()
            w.process.join(timeout=10)
        w.conn.close()
        with self._cond:
            if w in self._live:
                self._live.remove(w)
            if w in self._idle:
                self._idle.remove(w)
            self._cond.notify_all()

    def _replace(self, w: _Worker) -> None:
        self._kill(w)
        with self._cond:
            if self._closed:
                return
        try:
            fresh = self._start()
            self._await_ready(fresh)
        except RunnerError:
            return  # the pool shrinks; calls fail with RunnerError once it is empty
        with self._cond:
            if self._closed:
                closed = True
            else:
                closed = False
                self._live.append(fresh)
                self._idle.append(fresh)
                self._cond.notify_all()
        if closed:
            self._kill(fresh)

    @property
    def pids(self) -> list[int]:
        """PIDs of the live workers."""
        with self._cond:
            return [w.pid for w in self._live]

    def close(self) -> None:
        """Stop every worker (killing busy ones) and wait for them to exit."""
        global _open_pools, _tracker_ours
        with self._cond:
            if self._closed:
                return
            self._closed = True
            workers = list(self._live)
            idle = list(self._idle)
            self._idle.clear()
            self._cond.notify_all()
        for w in idle:
            with contextlib.suppress(OSError):
                w.conn.send(None)
        deadline = time.monotonic() + 5
        for w in workers:
            w.process.join(timeout=max(0.0, deadline - time.monotonic()) if w in idle else 0)
            self._kill(w)
        with _open_lock:
            _open_pools -= 1
            if _open_pools == 0 and _tracker_ours:
                _tracker_ours = False
                stop = getattr(resource_tracker._resource_tracker, "_stop", None)
                if stop is not None:
                    # the spawn context started multiprocessing's tracker process for us; a private API,
                    # so a tracker that never came up (a failed start) must not turn close() into a crash
                    with contextlib.suppress(TypeError, OSError, ChildProcessError):
                        stop()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls
    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RunnerError("the warm worker pool is closed")
                if self._idle:
                    return self._idle.popleft()
                if not self._live:
                    raise RunnerError("the warm worker pool has no live workers left")
                self._cond.wait()

    def _release(self, w: _Worker) -> None:
        with self._cond:
            if self._closed:
                pass
            else:
                self._idle.append(w)
                self._cond.notify_all()
                return
        self._kill(w)

    def call(
        self,
        target: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        stdout_path: Path,
        deadline: float | None = None,
        redact: Sequence[str] = (),
    ) -> int:
        """Run ``target(argv)`` in a warm worker; return its exit code."""
        w = self._acquire()
        try:
            w.conn.send(
                (
                    "call",
                    target,
                    list(argv),
                    dict(env),
                    str(cwd),
                    str(log_path),
                    str(stdout_path),
                    list(redact),
                )
            )
        except OSError as exc:
            self._replace(w)
            raise RunnerError(f"warm worker (pid {w.pid}) is gone: {exc}") from exc
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready = multiprocessing.connection.wait([w.conn, w.process.sentinel], timeout=timeout)
        if w.conn in ready:
            try:
                kind, payload = w.conn.recv()
            except (EOFError, OSError):
                kind, payload = "died", None
            if kind == "done":
                self._release(w)
                return int(payload)
            if kind == "error":
                self._release(w)
                raise RunnerError(str(payload))
        if not ready:
            self._replace(w)
            raise NodeDeadlineExceededError("Pod was active on the node longer than the specified deadline")
        w.process.join(timeout=5)
        code = w.process.exitcode
        self._replace(w)
        raise RunnerError(f"warm worker (pid {w.pid}) died while running {target} (exit code {code})")
