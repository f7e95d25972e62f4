"""Who may do what in the embedded store: the identity model, and the files that hold the keys.

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

    The model itself lives in :mod:`edgefed.workflows.policy` (one model, rendered here as these
    actions and as the IAM policy documents attached to every identity but ``admin``: SeaweedFS then
    evaluates the documents, which, unlike ``Write``, leave out DeleteObject; MinIO gets the same
    documents from ``edgefed generate``).

    :class:`CredentialFiles` renders ``<state>/s3-identities.json`` (weed's ``-s3.config``, mode 0600:
    secrets never appear on a command line) from the credentials and the model; SeaweedFS re-reads it
    on SIGHUP (see :class:`~edgefed.workflows.embedded.store.server.EmbeddedStore`).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefed.steps import layout
from edgefed.workflows.embedded.store.errors import StoreError
from edgefed.workflows.policy import iam_policy, policy_model, policy_name, seaweedfs_actions

__all__ = [
    "CREDENTIALS_FILE",
    "PROBE_IDENTITY",
    "S3_CONFIG_FILE",
    "CredentialFiles",
    "Credentials",
    "identity_actions",
    "identity_policies",
    "validate_edge",
    "write_private",
]

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "credentials.json"
S3_CONFIG_FILE = "s3-identities.json"

_EDGE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_MAX_EDGE_LEN = 63 - len(layout.EDGE_BUCKET_PREFIX)


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
    """SeaweedFS actions of every identity for ``edges``, rendered from :func:`~edgefed.workflows.policy.policy_model`."""
    model = policy_model(validate_edge(e) for e in edges)
    return {identity: seaweedfs_actions(grants) for identity, grants in model.items()}


def identity_policies(edges: Iterable[str]) -> dict[str, dict[str, Any]]:
    """IAM policy document of every identity but ``admin`` for ``edges`` (attached in the store)."""
    model = policy_model(validate_edge(e) for e in edges)
    return {i: iam_policy(g) for i, g in model.items() if i != layout.ADMIN_IDENTITY}


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
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


def _json_bytes(document: Any) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode()


#: The identity that tells a reload happened: no rights at all, and keys derived from the rest of the
#: config, so they change with it. Waiting for a reload means trying *its* key until the store knows it:
#: SeaweedFS logs every access key it does not know ("attempted key '...' not found"), and it must never
#: log a real identity's (as it did when the new edge's own key was tried before the reload).
PROBE_IDENTITY = "reload-probe"


def _probe_identity(identities: list[dict[str, Any]], documents: list[dict[str, Any]]) -> dict[str, Any]:
    digest = hashlib.sha256(_json_bytes({"identities": identities, "policies": documents})).hexdigest()
    return {
        "name": PROBE_IDENTITY,
        "credentials": [{"accessKey": f"edgefed-probe-{digest[:16]}", "secretKey": digest[16:56]}],
        "actions": [],
    }


class CredentialFiles:
    """``credentials.json`` (every identity's keys, generated once) and the ``s3-identities.json``
    rendered from it, in a store's state directory. The caller serialises changes (the store's lock)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / CREDENTIALS_FILE
        self.s3_config = state_dir / S3_CONFIG_FILE
        self._read: tuple[tuple[int, int, int], dict[str, Any]] | None = None

    @staticmethod
    def _new_key_pair() -> dict[str, str]:
        return {"access_key": secrets.token_urlsafe(15), "secret_key": secrets.token_urlsafe(30)}

    def load(self) -> dict[str, Any]:
        """The installation's credentials, created (admin and cloud) on first use."""
        if not self.path.exists():
            creds = {
                "version": 1,
                "edges": [],
                "identities": {
                    layout.ADMIN_IDENTITY: self._new_key_pair(),
                    layout.CLOUD_IDENTITY: self._new_key_pair(),
                },
            }
            # First writer wins (another process may be doing the same without holding the lock).
            write_private(self.path, _json_bytes(creds), exclusive=True)
        return copy.deepcopy(self._current())

    def _current(self) -> dict[str, Any]:
        """The file's content, read again only when it changed (the engine resolves a Secret for every
        pod: re-reading and parsing the file each time cost ~1 ms a pod). Not to be modified."""
        info = self.path.stat()
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        if self._read is not None and self._read[0] == stamp:
            return self._read[1]
        creds = _read_private_json(self.path)
        if not (isinstance(creds, dict) and {"edges", "identities"} <= creds.keys()):
            found = sorted(creds) if isinstance(creds, dict) else type(creds).__name__
            raise StoreError(f"{self.path}: expected keys 'edges' and 'identities', found {found!r}")
        self._read = (stamp, creds)
        return creds

    def edges(self) -> list[str]:
        """Edges that have an identity, in the order they were added."""
        return list(self.load()["edges"])

    def add_edges(self, edges: Iterable[str]) -> list[str]:
        """Give each of ``edges`` (and every edge known already) its two identities, the cloud
        store's ``edge-<e>`` and its site store's ``site-<e>``, with fresh keys where one is missing
        (credentials of an older installation gain their site identities); returns the new identities."""
        creds = self.load()
        for edge in dict.fromkeys(validate_edge(e) for e in edges):
            if edge not in creds["edges"]:
                creds["edges"].append(edge)
        new = [
            identity
            for edge in creds["edges"]
            for identity in (layout.edge_identity(edge), layout.site_identity(edge))
            if identity not in creds["identities"]
        ]
        for identity in new:
            creds["identities"][identity] = self._new_key_pair()
        if new:
            write_private(self.path, _json_bytes(creds))
        return new

    def get(self, identity: str) -> Credentials:
        """Key pair of ``identity`` (``admin``, ``cloud``, ``edge-<edge>`` or ``site-<edge>``)."""
        if not self.path.exists():
            self.load()  # created on first use
        identities = self._current()["identities"]
        if identity not in identities:
            raise StoreError(
                f"unknown store identity {identity!r}: expected one of {', '.join(sorted(identities))} "
                "(edges get an identity through ensure_edges/provision)"
            )
        pair = identities[identity]
        return Credentials(pair["access_key"], pair["secret_key"])

    def probe_credentials(self) -> Credentials:
        """The keys of :data:`PROBE_IDENTITY` in the rendered config: known to the store once it loaded it."""
        config = _read_private_json(self.s3_config)
        for identity in config["identities"]:
            if identity["name"] == PROBE_IDENTITY:
                pair = identity["credentials"][0]
                return Credentials(pair["accessKey"], pair["secretKey"])
        raise StoreError(f"{self.s3_config}: no identity {PROBE_IDENTITY!r}; render it again")

    def render_s3_config(self) -> bool:
        """Write ``s3-identities.json`` (weed's ``-s3.config``) from the credentials; True if it changed.

        Credentials of an older installation (no site identities) gain them first."""
        self.add_edges([])
        creds = self.load()
        identities = []
        policies = identity_policies(creds["edges"])
        for name, granted in identity_actions(creds["edges"]).items():
            pair = creds["identities"].get(name)
            if pair is None:
                raise StoreError(f"{self.path}: identity {name!r} has no keys")
            identities.append(
                {
                    "name": name,
                    "credentials": [{"accessKey": pair["access_key"], "secretKey": pair["secret_key"]}],
                    "actions": granted,
                    **({"policyNames": [policy_name(name)]} if name in policies else {}),
                }
            )
        documents = [{"name": policy_name(i), "content": json.dumps(doc)} for i, doc in policies.items()]
        identities.append(_probe_identity(identities, documents))
        data = _json_bytes({"identities": identities, "policies": documents})
        if self.s3_config.exists() and self.s3_config.read_bytes() == data:
            return False
        write_private(self.s3_config, data)
        return True
