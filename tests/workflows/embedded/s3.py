"""Raw S3 calls for the store tests: S3 errors surface as ``S3Error`` (its ``code`` is what is tested)."""

from __future__ import annotations

import io

from minio import Minio

__all__ = ["get", "put"]


def put(client: Minio, bucket: str, key: str, data: bytes = b"payload") -> str | None:
    """Write ``data`` at ``key``; its version id (None in an unversioned bucket)."""
    return client.put_object(bucket, key, io.BytesIO(data), len(data)).version_id


def get(client: Minio, bucket: str, key: str, version_id: str | None = None) -> bytes:
    """The bytes of ``key`` (of ``version_id`` if given)."""
    response = client.get_object(bucket, key, version_id=version_id)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()
