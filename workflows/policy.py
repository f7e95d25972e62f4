"""Who may do what on which bucket and prefix: one policy model, two renderings.

:func:`policy_model` is the single source of every store identity's rights (plain data: identity ->
:class:`Grant` list). Two renderings derive from it, so they cannot drift apart:

* :func:`seaweedfs_actions`: SeaweedFS's legacy ``actions`` (``Read:bucket``, ``Write:bucket/prefix*``)
  of the embedded store's ``-s3.config``;
* :func:`iam_policy`: an AWS/MinIO IAM policy document (``Version`` 2012-10-17, ``s3:*`` actions,
  ``arn:aws:s3:::bucket/prefix*`` resources) per identity: ``edgefed generate`` writes them for a
  cluster's MinIO (``mc admin policy create``), and the embedded store attaches the very same
  documents to its identities (SeaweedFS then evaluates them instead of the legacy actions, which
  cannot tell PutObject from DeleteObject).

Rights: ``admin`` everything; ``cloud`` reads and lists updates and held-out sets, reads, lists, writes
and tags models (no delete: a committed model version is never removed, and a PUT in the versioned
bucket adds a version, it cannot replace one); each edge holds two identities, one per store it talks
to: ``edge-<e>`` in the cloud store writes under ``edgefed-updates/<e>/`` only (it cannot read updates
back) and reads and lists models; ``site-<e>`` in the edge's own store reads, lists and writes its
own bucket (the dataset, the cached contract verdicts) and nothing else. Secure aggregation's bucket
``edgefed-secagg`` holds only what every participant may see (public keys, ciphertexts, masked inputs):
edges and cloud read and list it, edge ``e`` writes under ``e/``, the cloud under ``_server/``. On a cluster the two live in
different MinIOs; the embedded store holds every bucket and both, with the same separation. An incremental
learning job's EventSource holds a third identity per edge, ``notify-<e>`` (:func:`notification_model`):
bucket notifications of that edge's bucket only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edgefed.steps import layout
from edgefed.workflows.errors import EdgefedError

__all__ = [
    "ACCESS",
    "Grant",
    "PolicyError",
    "iam_policy",
    "mc_alias",
    "mc_commands",
    "notification_model",
    "policy_model",
    "policy_name",
    "seaweedfs_actions",
]

IAM_VERSION = "2012-10-17"

#: Access kinds of a grant, and what each means in IAM terms: (bucket-level, object-level) actions.
ACCESS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "read": (
        (),
        ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    ),
    "list": (
        ("s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation", "s3:GetBucketVersioning"),
        (),
    ),
    "write": ((), ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")),
    "tagging": ((), ("s3:PutObjectTagging", "s3:PutObjectVersionTagging")),
    # MinIO's bucket-notification stream (Argo Events' minio EventSource); no read of any object
    "listen": (("s3:ListenBucketNotification", "s3:GetBucketLocation"), ()),
    "admin": ((), ()),  # rendered as s3:* on every bucket
}
_SEAWEED_KIND = {"read": "Read", "list": "List", "write": "Write", "tagging": "Tagging"}
_SEAWEED_ADMIN = ["Admin", "Read", "Write", "List", "Tagging"]


class PolicyError(EdgefedError):
    """A grant the model or a rendering cannot express."""


@dataclass(frozen=True, kw_only=True)
class Grant:
    """``effect`` of ``access`` kinds (keys of :data:`ACCESS`) on ``bucket`` (``*``: all), under ``prefix``."""

    access: tuple[str, ...]
    bucket: str
    prefix: str = ""
    effect: str = "Allow"

    def __post_init__(self) -> None:
        unknown = [a for a in self.access if a not in ACCESS]
        if unknown or not self.access:
            raise PolicyError(
                f"grant on {self.bucket!r}: expected access among {sorted(ACCESS)}, found {unknown}"
            )
        if self.effect != "Allow":
            raise PolicyError(
                f"grant on {self.bucket!r}: expected effect 'Allow' (absent means denied), found {self.effect!r}"
            )
        if self.prefix and {"list", "listen", "admin"} & set(self.access):
            raise PolicyError(
                f"grant on {self.bucket}/{self.prefix}: list, listen and admin apply to whole buckets only"
            )


def policy_model(edges: Iterable[str]) -> dict[str, tuple[Grant, ...]]:
    """Every store identity's grants for ``edges`` (names already validated by the caller)."""
    model: dict[str, tuple[Grant, ...]] = {
        layout.ADMIN_IDENTITY: (Grant(access=("admin",), bucket="*"),),
        layout.CLOUD_IDENTITY: (
            Grant(access=("read", "list"), bucket=layout.UPDATES_BUCKET),
            Grant(access=("read", "write", "list", "tagging"), bucket=layout.MODELS_BUCKET),
            Grant(access=("read", "list"), bucket=layout.EVAL_BUCKET),
            # secure aggregation: it relays the edges' messages and publishes rosters (never their secrets)
            Grant(access=("read", "list"), bucket=layout.SECAGG_BUCKET),
            Grant(access=("write",), bucket=layout.SECAGG_BUCKET, prefix=layout.SECAGG_SERVER_PREFIX),
        ),
    }
    for edge in edges:
        model[layout.edge_identity(edge)] = (
            Grant(access=("write",), bucket=layout.UPDATES_BUCKET, prefix=layout.update_prefix(edge)),
            Grant(access=("read", "list"), bucket=layout.MODELS_BUCKET),
            # secure aggregation: every message there is public keys, ciphertexts or masked (noise)
            Grant(access=("write",), bucket=layout.SECAGG_BUCKET, prefix=layout.update_prefix(edge)),
            Grant(access=("read", "list"), bucket=layout.SECAGG_BUCKET),
        )
        model[layout.site_identity(edge)] = (
            Grant(access=("read", "list", "write"), bucket=layout.edge_bucket(edge)),
        )
    return model


def notification_model(edges: Iterable[str]) -> dict[str, tuple[Grant, ...]]:
    """The identities an Argo Events EventSource holds (``notify-<e>``, in each edge's own MinIO): listen to
    the edge bucket's notifications and nothing else, so the cloud-side EventSource pod never holds a key
    that reads or writes a hospital's data. MinIO only (the embedded store runs no Argo Events)."""
    return {
        layout.notify_identity(edge): (Grant(access=("listen",), bucket=layout.edge_bucket(edge)),)
        for edge in edges
    }


def seaweedfs_actions(grants: Iterable[Grant]) -> list[str]:
    """SeaweedFS legacy actions of one identity's ``grants`` (``Write`` there also allows DeleteObject:
    the embedded store therefore attaches :func:`iam_policy` too)."""
    actions: list[str] = []
    for grant in grants:
        if "admin" in grant.access:
            actions += _SEAWEED_ADMIN
            continue
        if "listen" in grant.access:
            raise PolicyError(
                f"grant on {grant.bucket!r}: SeaweedFS has no bucket-notification stream to grant"
            )
        scope = grant.bucket + (f"/{grant.prefix}*" if grant.prefix else "")
        actions += [f"{_SEAWEED_KIND[a]}:{scope}" for a in grant.access]
    return actions


def policy_name(identity: str) -> str:
    """Name of ``identity``'s IAM policy (MinIO ``mc admin policy create`` name, SeaweedFS policy name)."""
    return f"edgefed-{identity}"


def iam_policy(grants: Iterable[Grant]) -> dict[str, Any]:
    """The AWS/MinIO IAM policy document of one identity's ``grants``."""
    statements: list[dict[str, Any]] = []
    for grant in grants:
        if "admin" in grant.access:
            statements.append({"Effect": grant.effect, "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]})
            continue
        bucket_actions = [act for a in grant.access for act in ACCESS[a][0]]
        object_actions = [act for a in grant.access for act in ACCESS[a][1]]
        if bucket_actions:
            statements.append(
                {
                    "Effect": grant.effect,
                    "Action": bucket_actions,
                    "Resource": [f"arn:aws:s3:::{grant.bucket}"],
                }
            )
        if object_actions:
            statements.append(
                {
                    "Effect": grant.effect,
                    "Action": object_actions,
                    "Resource": [f"arn:aws:s3:::{grant.bucket}/{grant.prefix}*"],
                }
            )
    return {"Version": IAM_VERSION, "Statement": statements}


def mc_commands(model: Mapping[str, Iterable[Grant]], *, file_prefix: str = "") -> str:
    """The ``mc`` commands that install ``model``'s policies (files ``<file_prefix><identity>.json``)
    and attach each to the user of that identity: ``site-<e>`` in edge ``e``'s own MinIO (alias
    ``SITE_<E>``), every other identity in the cloud MinIO (alias ``CLOUD``)."""
    lines = [
        "# Install the edgefed store policies: the cloud identities in the cloud MinIO, each edge's site",
        "# identity in that edge's own MinIO, after",
        "#   mc alias set CLOUD https://minio.example:9000 ROOT_USER ROOT_PASSWORD   (and SITE_<EDGE> likewise)",
        "# then attach each policy to the user whose keys that identity's Kubernetes Secret holds",
        "# (`edgefed cluster setup --new-credentials FILE` makes both the keys and the Secrets).",
    ]
    if layout.CLOUD_IDENTITY in model:
        lines += [
            "# The models bucket: versioned, every version retained (object lock, GOVERNANCE): no identity",
            "# the steps hold can delete a committed model; an admin only by bypassing governance.",
            f"mc mb --ignore-existing --with-lock CLOUD/{layout.MODELS_BUCKET}",
            f"mc retention set --default GOVERNANCE {layout.MODEL_RETENTION_DAYS}d CLOUD/{layout.MODELS_BUCKET}",
            "# The updates, the held-out sets and secure aggregation's messages.",
            *(
                f"mc mb --ignore-existing CLOUD/{bucket}"
                for bucket in (layout.UPDATES_BUCKET, layout.EVAL_BUCKET, layout.SECAGG_BUCKET)
            ),
        ]
    for identity in model:
        alias = mc_alias(identity)
        name = policy_name(identity)
        lines.append(f"mc admin policy create {alias} {name} {file_prefix}{identity}.json")
        lines.append(
            f"mc admin policy attach {alias} {name} --user ACCESS_KEY_OF_{identity.upper().replace('-', '_')}"
        )
    return "\n".join(lines) + "\n"


def mc_alias(identity: str) -> str:
    """The ``mc`` alias of the MinIO that holds ``identity``."""
    for prefix in (layout.site_identity(""), layout.notify_identity("")):
        if identity.startswith(prefix):
            return "SITE_" + identity.removeprefix(prefix).upper().replace("-", "_")
    return "CLOUD"
