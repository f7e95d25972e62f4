"""Store access for steps: a ``minio`` client built from the step's environment, and small helpers.

A step is given its store identity only through environment variables (:class:`~edgefed.steps.interface.Env`),
which the workflow fills from a Kubernetes Secret; endpoints are ordinary arguments. Nothing here
knows about Argo.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import certifi
import urllib3
from minio import Minio
from minio.error import S3Error
from minio.helpers import ObjectWriteResult, genheaders

from edgefed.steps.interface import Env, StepExit
from edgefed.steps.layout import REGION

_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchVersion"})
#: a conditional write refused because the object exists (412; MinIO also answers 409 to a concurrent one)
_EXISTS_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


class StepError(Exception):
    """A step cannot do its work; the message says what was expected and what was found.

    ``exit_code`` distinguishes data problems at an edge (nothing to retry) from the rest.
    """

    exit_code: int = StepExit.FAILED
    #: Whether an edge step records it as the edge's reason for sitting the round out.
    report: bool = True


class DataUnavailableError(StepError):
    """The edge's dataset (or another required object) is not in the store."""

    exit_code = StepExit.DATA_UNAVAILABLE


@dataclass(frozen=True)
class Endpoint:
    """An S3 endpoint as ``host:port`` plus TLS flag."""

    address: str
    secure: bool = False

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``http://host:port``, ``https://host:port`` or bare ``host:port`` (plain HTTP)."""
        if text.startswith("https://"):
            return cls(text.removeprefix("https://").rstrip("/"), True)
        return cls(text.removeprefix("http://").rstrip("/"), False)


#: Retries of a request the store did not answer (refused, reset, 500/502/503/504): backoff 0.25 s doubling
#: to at most 4 s, ~30 s in all, long enough for a store that restarts (a killed SeaweedFS is back in a
#: few seconds; a MinIO pod in well under a minute with its readiness probe). minio's own default gives up
#: after ~6 s.
STORE_RETRY = urllib3.Retry(
    total=10, connect=10, read=3, backoff_factor=0.25, backoff_max=4, status_forcelist=[500, 502, 503, 504]
)


def bounded_retry(seconds: float) -> urllib3.Retry:
    """:data:`STORE_RETRY`'s backoff, cut to about ``seconds`` of waiting in all."""
    waited, attempts = 0.0, 0
    while attempts < STORE_RETRY.total and waited < seconds:
        attempts += 1
        waited += min(STORE_RETRY.backoff_max, STORE_RETRY.backoff_factor * 2**attempts)
    return STORE_RETRY.new(total=attempts, connect=attempts, read=min(attempts, 3))


def _http_client(endpoint: Endpoint, wait_seconds: float | None = None) -> urllib3.PoolManager:
    """minio's pool with :data:`STORE_RETRY` (or, with ``wait_seconds``, :func:`bounded_retry` and a connect
    and read timeout of its share of the wait); for HTTPS with :data:`Env.CA_FILE` set, trusting those CAs (else the system's)."""
    ca_file = os.environ.get(Env.CA_FILE)
    tls: dict[str, Any] = {}
    if endpoint.secure:
        if ca_file and not os.path.isfile(ca_file):
            raise StepError(
                f"{Env.CA_FILE}={ca_file}: no such file (the workflow mounts the stores' CA ConfigMap there)"
            )
        tls = {
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": ca_file or os.environ.get("SSL_CERT_FILE") or certifi.where(),
        }
    retries = STORE_RETRY if wait_seconds is None else bounded_retry(wait_seconds)
    if wait_seconds is None:
        timeout = urllib3.Timeout(connect=60, read=300)
    else:
        # each attempt gets its share of the wait: a store whose packets are dropped (silence, not a
        # refusal) is given up after a few times the wait, not after attempts x 60 s (or x 300 s unanswered)
        share = max(2.0, wait_seconds / max(1, retries.total))
        timeout = urllib3.Timeout(connect=min(60.0, share), read=min(300.0, max(2.0, wait_seconds)))
    return urllib3.PoolManager(timeout=timeout, maxsize=10, retries=retries, **tls)


def unreachable_store(err: urllib3.exceptions.HTTPError) -> str:
    """What to tell a person when the store did not answer even after the retries."""
    reason = getattr(err, "reason", None) or err
    where = ""
    pool = getattr(err, "pool", None)
    if pool is not None:
        where = f" at {pool.scheme}://{pool.host}:{pool.port}"
    url = getattr(err, "url", None)
    what = f" ({url.split('?', 1)[0]})" if url else ""
    seconds = sum(
        min(STORE_RETRY.backoff_max, STORE_RETRY.backoff_factor * 2**n) for n in range(1, STORE_RETRY.total)
    )
    return (
        f"the store{where} cannot be reached{what}: {type(reason).__name__}: {reason} "
        f"(retried {STORE_RETRY.total} times over ~{seconds:.0f} s); is it running?"
    )


_CLIENTS: dict[tuple[str, bool, str, str, str | None, float | None], Minio] = {}


def client_from_env(endpoint: Endpoint, *, site: bool = False, wait_seconds: float | None = None) -> Minio:
    """A client for ``endpoint`` with the identity in the step's environment: the cloud store's, or
    (``site``) the edge's identity in its own site's store. ``wait_seconds``: give up on a store that does
    not answer after about that long (default: :data:`STORE_RETRY`'s ~30 s).

    One client per (endpoint, identity, CA) per process: in a warm worker that runs many steps, later steps
    reuse its pooled keep-alive connections instead of opening new ones (every request is still made)."""
    names = (Env.SITE_ACCESS_KEY, Env.SITE_SECRET_KEY) if site else (Env.ACCESS_KEY, Env.SECRET_KEY)
    try:
        access, secret = os.environ[names[0]], os.environ[names[1]]
    except KeyError as missing:
        which = "site store Secret" if site else "cloud store Secret"
        raise StepError(
            f"store credentials missing: environment variable {missing.args[0]} is not set "
            f"(the workflow sets it from the edge's {which})"
        ) from None
    key = (endpoint.address, endpoint.secure, access, secret, os.environ.get(Env.CA_FILE), wait_seconds)
    client = _CLIENTS.get(key)
    if client is None:
        client = _CLIENTS[key] = Minio(
            endpoint.address,
            access_key=access,
            secret_key=secret,
            secure=endpoint.secure,
            region=REGION,
            http_client=_http_client(endpoint, wait_seconds),
        )
    return client


def is_missing(err: S3Error) -> bool:
    return err.code in _MISSING_CODES


@dataclass(frozen=True)
class ObjectRead:
    """An object's bytes and which bytes they are: the ETag and version id of the response itself
    (not of a separate stat, which a concurrent writer could make name other bytes)."""

    data: bytes
    etag: str | None
    version_id: str | None


def get_object(client: Minio, bucket: str, key: str, *, version_id: str | None = None) -> ObjectRead:
    """The whole object with its ETag and version id; :class:`DataUnavailableError` when it does not exist."""
    try:
        response = client.get_object(bucket, key, version_id=version_id)
    except S3Error as err:
        if is_missing(err):
            raise DataUnavailableError(f"s3://{bucket}/{key} does not exist ({err.code})") from None
        raise StepError(f"cannot read s3://{bucket}/{key}: {err.code}: {err.message}") from None
    try:
        data = response.read()
        etag = (response.headers.get("ETag") or "").strip('"') or None
        return ObjectRead(data, etag, response.headers.get("x-amz-version-id"))
    finally:
        response.close()
        response.release_conn()


def get_bytes(client: Minio, bucket: str, key: str, *, version_id: str | None = None) -> bytes:
    """The whole object; :class:`DataUnavailableError` when it does not exist."""
    return get_object(client, bucket, key, version_id=version_id).data


class ObjectExistsError(StepError):
    """A write-once object (``put_bytes(..., if_absent=True)``) already exists: the store refused the write."""


def put_bytes(
    client: Minio,
    bucket: str,
    key: str,
    data: bytes,
    *,
    content_type: str = "application/octet-stream",
    metadata: dict[str, str] | None = None,
    if_absent: bool = False,
) -> str | None:
    """Write an object; returns its version id (None in an unversioned bucket).

    ``if_absent``: write only if no object (no current version) is at ``key``, decided by the store in
    the same request (``If-None-Match: *``, honoured by S3, MinIO and SeaweedFS), so of concurrent
    writers exactly one succeeds; the others get :class:`ObjectExistsError`.
    """
    return write_object(
        client, bucket, key, data, content_type=content_type, metadata=metadata, if_absent=if_absent
    ).version_id


def write_object(
    client: Minio,
    bucket: str,
    key: str,
    data: bytes,
    *,
    content_type: str = "application/octet-stream",
    metadata: dict[str, str] | None = None,
    if_absent: bool = False,
) -> ObjectWriteResult:
    """:func:`put_bytes`, returning the store's whole answer (version id and ETag)."""
    try:
        if if_absent:
            # Written by hand: minio 7.2's put_object turns any header it does not know into user
            # metadata (x-amz-meta-if-none-match), so the conditional PUT goes through its request
            # method with minio's own header rendering. Small objects only (one request, no multipart).
            headers = genheaders(metadata, None, None, None, False)
            headers["Content-Type"] = content_type
            headers["If-None-Match"] = "*"
            result = client._put_object(bucket, key, data, headers)
        else:
            result = client.put_object(
                bucket, key, io.BytesIO(data), len(data), content_type=content_type, metadata=metadata
            )
    except S3Error as err:
        if if_absent and err.code in _EXISTS_CODES:
            raise ObjectExistsError(f"s3://{bucket}/{key} already exists") from None
        raise StepError(f"cannot write s3://{bucket}/{key}: {err.code}: {err.message}") from None
    return result


def put_json(client: Minio, bucket: str, key: str, document: Any) -> str | None:
    """Write a JSON record (indented, keys sorted: records are read by people too); returns its version id."""
    import json

    data = json.dumps(document, indent=2, sort_keys=True).encode()
    return put_bytes(client, bucket, key, data, content_type="application/json")


def utc_now() -> str:
    """The time a record is written, ISO 8601 in UTC."""
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def stat(client: Minio, bucket: str, key: str) -> Any:
    """The object's current version as the store describes it (``minio``'s ``Object``), None if absent."""
    try:
        return client.stat_object(bucket, key)
    except S3Error as err:
        if is_missing(err):
            return None
        raise StepError(f"cannot stat s3://{bucket}/{key}: {err.code}: {err.message}") from None


def exists(client: Minio, bucket: str, key: str) -> bool:
    return stat(client, bucket, key) is not None


def user_metadata(described: Any) -> dict[str, str]:
    """An object's user metadata (``x-amz-meta-*``), keys lower-cased (stores differ in their case)."""
    return {k.lower(): v for k, v in (described.metadata or {}).items()}


#: The first bytes of each dataset format a step reads: Parquet, and the Arrow IPC file format (Feather V2).
#: Told apart by content, not by key: a task may name any key, and a site may rewrite one in either format.
_MAGIC = {b"PAR1": "parquet", b"ARROW1": "feather"}
#: A frame smaller than this (in memory) is written as Feather without compression.
_UNCOMPRESSED_BELOW = 1 << 20
#: What ``edgefed data seed --format`` writes, and the key suffix of each.
FORMATS = {"parquet": ".parquet", "feather": ".feather"}


def dataset_format(data: bytes) -> str | None:
    """``parquet`` or ``feather`` by the object's first bytes; None for anything else."""
    return next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)


def read_table_object(client: Minio, bucket: str, key: str) -> tuple[Any, ObjectRead]:
    """A dataset object (Parquet, or Arrow IPC / Feather V2) as a ``pyarrow.Table``, with the read that
    produced it (ETag, version id). Arrow IPC is for wide data: a 785-column shard decodes in a few
    milliseconds where Parquet spends ~15 us a column whatever the rows."""
    import pyarrow as pa

    read = get_object(client, bucket, key)
    kind = dataset_format(read.data)
    if kind is None:
        raise DataUnavailableError(
            f"s3://{bucket}/{key} is neither Parquet nor Arrow IPC (Feather V2): it starts {read.data[:8]!r}"
        )
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            # one thread: an edge's dataset is read by one step in one process; pyarrow's thread pool costs
            # more than it saves on files of this size. ParquetFile, not read_table: the dataset machinery
            # of read_table costs ~1 ms a call more on one in-memory file.
            table = pq.ParquetFile(pa.BufferReader(read.data)).read(use_threads=False)
        else:
            import pyarrow.ipc as ipc

            table = ipc.open_file(pa.BufferReader(read.data)).read_all()
        return table, read
    except Exception as err:  # pyarrow raises several unrelated types for a corrupt file
        raise DataUnavailableError(f"s3://{bucket}/{key} is not a readable {kind} file: {err}") from None


def read_frame(client: Minio, bucket: str, key: str):  # -> pandas.DataFrame (pandas imported lazily)
    """Read a dataset object (Parquet or Feather) into a DataFrame."""
    return read_frame_object(client, bucket, key)[0]


def read_frame_object(client: Minio, bucket: str, key: str) -> tuple[Any, ObjectRead]:
    """A dataset object (Parquet or Feather) as a DataFrame, with the read that produced it."""
    table, read = read_table_object(client, bucket, key)
    return table.to_pandas(use_threads=False), read


def frame_bytes(frame, fmt: str = "parquet") -> bytes:
    """Serialise a DataFrame as Parquet or as Feather V2 (Arrow IPC, LZ4-compressed)."""
    buffer = io.BytesIO()
    if fmt == "parquet":
        frame.to_parquet(buffer, index=False)
    elif fmt == "feather":
        # Feather V2 (pandas' to_feather; the index must be the default one). LZ4 costs its reader ~4 us a
        # column to undo whatever the rows: worth it for a large frame (6,000 mnist rows: 19 -> 4 MB), not
        # for a small one (60 rows: 0.48 -> 0.36 MB, 0.6 -> 3 ms to read)
        small = frame.memory_usage(index=False).sum() < _UNCOMPRESSED_BELOW
        frame.reset_index(drop=True).to_feather(buffer, compression="uncompressed" if small else "lz4")
    else:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    return buffer.getvalue()


def parquet_bytes(frame) -> bytes:
    """Serialise a DataFrame as Parquet."""
    return frame_bytes(frame, "parquet")


__all__ = [
    "FORMATS",
    "STORE_RETRY",
    "DataUnavailableError",
    "Endpoint",
    "ObjectExistsError",
    "ObjectRead",
    "StepError",
    "bounded_retry",
    "client_from_env",
    "dataset_format",
    "exists",
    "frame_bytes",
    "get_bytes",
    "get_object",
    "is_missing",
    "parquet_bytes",
    "put_bytes",
    "put_json",
    "read_frame",
    "read_frame_object",
    "read_table_object",
    "stat",
    "unreachable_store",
    "user_metadata",
    "utc_now",
    "write_object",
]
