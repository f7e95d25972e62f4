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

Why this module is long: a worker's whole life is here and each part depends on the others: the fork
server that preloads TensorFlow once and may be released while its workers run (they are then adopted and
reaped here), start-up and readiness, calls with their log redirection, deadlines and cancellation, and
killing and replacing workers safely from two threads (an interrupt and a busy call).
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

__all__ = ["WorkerPool", "abandon_fork_server", "resolve_callable", "start_fork_server"]


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


def _drop_fork_server_handle() -> None:
    """A child of the fork server is handed the server's "alive" pipe (so it could fork through the server
    too), and the server runs while any holder lives. A worker never forks through it: it lets go, so the
    pool's owner can stop the server (:func:`start_fork_server` ``release``) while the workers run."""
    from multiprocessing import forkserver

    server = forkserver._forkserver
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None
        server._forkserver_pid = None


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
    _drop_fork_server_handle()
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
        #: held while the worker is killed; ``killed`` once it is (see WorkerPool._kill)
        self.lock = threading.Lock()
        self.killed = False
        #: Readable once the worker has exited. A pidfd where the OS has them: a worker forked by the fork
        #: server is the server's child, and the process sentinel multiprocessing gives is a pipe from the
        #: server, which reads as "exited" for every worker once the server is gone (released, below).
        self._pidfd: int | None = None
        #: which fork server forked it (None: spawned, our own child)
        self.server_generation = (
            _server_generation if process.__class__.__name__ == "ForkServerProcess" else None
        )
        with contextlib.suppress(AttributeError, OSError):
            self._pidfd = os.pidfd_open(self.pid)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    @property
    def alive(self) -> Any:
        """What ``multiprocessing.connection.wait`` waits on for the worker's exit."""
        return self._pidfd if self._pidfd is not None else self.process.sentinel

    def exit_code(self) -> int | str:
        """The worker's exit code, when it can be known: not for a fork-server child after the server that
        forked it was released (its status pipe went with the server)."""
        if self.server_generation is not None and self.server_generation != _server_generation:
            return "unknown"
        return self.process.exitcode

    def close_handle(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = None


_preloaded: list[str] = []


def _preload_fork_server(ctx: Any, modules: Sequence[str]) -> None:
    """Ask the process-wide fork server to import ``modules`` (once, before it starts)."""
    with _open_lock:
        missing = [m for m in modules if m not in _preloaded]
        if missing:
            _preloaded.extend(missing)
            ctx.set_forkserver_preload(list(_preloaded))


def start_fork_server(modules: Sequence[str], *, release: bool = False) -> None:
    """Start the fork server now, in the background, preloading ``modules``: a command that will run
    steps calls it first, so the heavy imports overlap with its own start-up (store, spec, documents).

    ``release``: stop the server whenever no pool is starting workers (a command that runs one long job).
    The server holds the pages its imports touched that no worker uses (most of TensorFlow's libraries:
    ~300 MB) and its copies of the pages the workers have since written: stopping it leaves the workers
    running and the process tree ~40% smaller. A worker that must be replaced later starts the server
    again (its imports once more)."""
    global _release_when_started
    ctx = multiprocessing.get_context("forkserver")
    _preload_fork_server(ctx, modules)
    from multiprocessing import forkserver

    if release and not _release_when_started:
        _adopt_orphans()
    _release_when_started = _release_when_started or release
    threading.Thread(target=forkserver.ensure_running, name="edgefed-forkserver", daemon=True).start()


_open_pools = 0
_open_lock = threading.Lock()
_tracker_ours = False
#: start_fork_server(release=True) was called: stop the server once no pool is starting workers
_release_when_started = False
#: pools starting workers now (under _open_lock), and how many times the server was released
_starting = 0
_server_generation = 0


@contextlib.contextmanager
def _starting_workers(ctx: Any) -> Any:
    """Around forking workers from the fork server: when the last start ends, release the server if asked."""
    global _starting
    if ctx.get_start_method() != "forkserver":
        yield
        return
    with _open_lock:
        _starting += 1
    try:
        yield
    finally:
        with _open_lock:
            _starting -= 1
            if _starting == 0 and _release_when_started:
                _stop_fork_server()


def abandon_fork_server() -> None:
    """Kill the fork server now, even mid-preload: the command that started it is exiting early (its input
    refused, an interrupt). A server still importing would otherwise go on for seconds after the command,
    holding its output pipes open. Reaches into multiprocessing's ForkServer (private, hence guarded)."""
    from multiprocessing import forkserver

    server = forkserver._forkserver
    lock = getattr(server, "_lock", None)
    if lock is None:
        return
    with lock:
        pid = getattr(server, "_forkserver_pid", None)
        if pid is None:
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        # then what stopping it does: close its alive pipe, reap it, remove its socket
        with contextlib.suppress(OSError, ChildProcessError, AttributeError):
            server._stop_unlocked()


def _adopt_orphans() -> None:
    """Make this process the parent of the workers once their parent, the fork server, is gone (Linux's
    child subreaper): they stay in this process's tree, where a meter of the tree counts them and ``ps``
    shows them, and this process reaps them. Nothing in the standard library sets it; prctl through ctypes."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap(pid: int, *, timeout: float) -> None:
    """Reap an adopted child that was sent SIGKILL. Its pipes close before it becomes a zombie, so a single
    ``waitpid(WNOHANG)`` right after can miss it (and leave a zombie): poll until it is reaped or gone."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except (ChildProcessError, OSError):
            return  # not our child (any more): reaped elsewhere
        if time.monotonic() >= deadline:
            return
        time.sleep(0.005)


def _stop_fork_server() -> None:
    """Stop multiprocessing's fork server; its children (the workers) keep running. Its ``_stop`` is the
    one multiprocessing's own tests use: a private API, so its absence only keeps the server."""
    global _server_generation
    from multiprocessing import forkserver

    server = forkserver._forkserver
    stop = getattr(server, "_stop", None)
    if stop is None or getattr(server, "_forkserver_pid", None) is None:
        return
    with contextlib.suppress(OSError, ChildProcessError):
        stop()
    _server_generation += 1


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
            # the server is needed for the forks only, not while the workers initialise
            with _starting_workers(self._ctx):
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
        ready = multiprocessing.connection.wait([w.conn, w.alive], timeout=self.start_timeout)
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
        raise RunnerError(f"warm worker (pid {w.pid}) did not start (exit code {w.exit_code()})")

    def _kill(self, w: _Worker) -> None:
        """Kill ``w`` and release its handles, once: a Ctrl-C can have ``close()`` and a busy call's
        ``_replace`` kill the same worker from two threads, and closing its pipe twice raised EBADF (or,
        worse, could close a descriptor reused meanwhile). A second caller waits for the first."""
        with w.lock:
            if w.killed:
                return
            if w.process.pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(w.pid, signal.SIGKILL)
                w.process.kill()
                multiprocessing.connection.wait([w.alive], timeout=10)
                if w.server_generation is not None:  # adopted after its server left: reap it here
                    _reap(w.pid, timeout=5)
                w.process.join(timeout=10)
            w.close_handle()
            w.conn.close()
            w.killed = True
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
            with _starting_workers(self._ctx):
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
            multiprocessing.connection.wait(
                [w.alive], timeout=max(0.0, deadline - time.monotonic()) if w in idle else 0
            )
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
        cancel: Any = None,
    ) -> int:
        """Run ``target(argv)`` in a warm worker; return its exit code. Past ``deadline``, or once
        ``cancel`` (a waitable with ``fileno``, see :class:`~.cancel.Cancel`) is ready, the worker is
        killed (and replaced) and :class:`NodeDeadlineExceededError` raised."""
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
        waits = [w.conn, w.alive] + ([cancel] if cancel is not None else [])
        ready = multiprocessing.connection.wait(waits, timeout=timeout)
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
        if w.conn not in ready and w.alive not in ready:  # cancelled: the Workflow was terminated
            self._replace(w)
            raise NodeDeadlineExceededError("Pod was terminated with the Workflow (argo terminate)")
        w.process.join(timeout=5)
        code = w.exit_code()
        self._replace(w)
        raise RunnerError(f"warm worker (pid {w.pid}) died while running {target} (exit code {code})")
