"""One policy model, two renderings: the embedded store refuses everything the model does not grant.

The live tests try every forbidden operation of each identity against the real embedded SeaweedFS and
count the refusals (all of them must be refused), and check that what the model grants works. The
unit tests check that the MinIO documents ``edgefed generate`` writes have the IAM policy shape and
say exactly what the SeaweedFS actions say.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio import Minio
from minio.commonconfig import Tags
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.retention import GOVERNANCE, Retention
from minio.versioningconfig import VersioningConfig

from edgefed.steps import layout
from edgefed.workflows.build.generate import write_minio_policies
from edgefed.workflows.embedded.store import EmbeddedStore
from edgefed.workflows.embedded.store.identities import (
    PROBE_IDENTITY,
    CredentialFiles,
    identity_actions,
    identity_policies,
)
from edgefed.workflows.policy import ACCESS, Grant, PolicyError, iam_policy, policy_model, policy_name
from edgefed.workflows.spec import load_task
from tests.helpers import REPO
from tests.workflows.embedded.s3 import get as _get
from tests.workflows.embedded.s3 import put as _put

U, M, E = layout.UPDATES_BUCKET, layout.MODELS_BUCKET, layout.EVAL_BUCKET
S = layout.SECAGG_BUCKET
TASK = "policy-test"
MODEL_KEY = layout.model_key(TASK, 1)


def _batch_delete(client: Minio, bucket: str, key: str, version_id: str | None) -> None:
    """DeleteObjects (POST ?delete): its refusals come back per object, not as an exception."""
    for error in client.remove_objects(bucket, [DeleteObject(key, version_id)]):
        raise S3Error(None, error.code, error.message, error.name, None, None)  # type: ignore[arg-type]


def _refusals(operations: dict[str, Callable[[], object]]) -> tuple[int, dict[str, str]]:
    """How many of ``operations`` the store refused (AccessDenied), and what the others did."""
    refused, other = 0, {}
    for name, operation in operations.items():
        try:
            operation()
        except S3Error as err:
            if err.code == "AccessDenied":
                refused += 1
                continue
            other[name] = err.code
        else:
            other[name] = "allowed"
    return refused, other


def _id(edge: str) -> str:
    return layout.edge_identity(edge)


def _site(edge: str) -> str:
    return layout.site_identity(edge)


@pytest.fixture(scope="module")
def seeded(store: EmbeddedStore) -> dict[str, str | None]:
    """Each site's data, each edge's update, a held-out set and one committed model version."""
    admin, cloud = store.client(layout.ADMIN_IDENTITY), store.client(layout.CLOUD_IDENTITY)
    for edge in ("a", "b"):
        _put(
            store.client(_site(edge)),
            layout.edge_bucket(edge),
            f"{TASK}/train.parquet",
            f"rows of {edge}".encode(),
        )
        _put(store.client(_id(edge)), U, layout.update_key(edge, TASK, 1, "wf"), f"delta {edge}".encode())
        _put(store.client(_id(edge)), S, layout.secagg_edge_key(edge, TASK, 1, "wf", "keys.json"), b"{}")
    _put(admin, E, layout.test_set_key(TASK), b"held out")
    return {"model": _put(cloud, M, MODEL_KEY, b"w1")}


# ---------------------------------------------------------------------------------------- live store


def test_every_forbidden_operation_of_an_edge_is_refused(
    store: EmbeddedStore, seeded: dict[str, str | None]
) -> None:
    """The edge's identity in the cloud store: its own updates in, models out, nothing else."""
    edge_a = store.client(_id("a"))
    own_update = layout.update_key("a", TASK, 1, "wf")
    tags = Tags.new_object_tags()
    tags["forged"] = "yes"
    forbidden: dict[str, Callable[[], object]] = {
        "read its own site's data (the site identity's)": lambda: _get(
            edge_a, "edge-a", f"{TASK}/train.parquet"
        ),
        "write its own site's bucket": lambda: _put(edge_a, "edge-a", f"{TASK}/forged.parquet"),
        "read another edge's data": lambda: _get(edge_a, "edge-b", f"{TASK}/train.parquet"),
        "stat another edge's data": lambda: edge_a.stat_object("edge-b", f"{TASK}/train.parquet"),
        "list another edge's bucket": lambda: list(edge_a.list_objects("edge-b", recursive=True)),
        "write another edge's bucket": lambda: _put(edge_a, "edge-b", f"{TASK}/train.parquet"),
        "read another edge's update": lambda: _get(edge_a, U, layout.update_key("b", TASK, 1, "wf")),
        "read its own update back": lambda: _get(edge_a, U, own_update),
        "list the updates": lambda: list(edge_a.list_objects(U, recursive=True)),
        "write under another edge's prefix": lambda: _put(edge_a, U, layout.update_key("b", TASK, 2, "wf")),
        "write under a prefix it starts": lambda: _put(edge_a, U, "ab/sneaky"),
        "write at the updates' root": lambda: _put(edge_a, U, "sneaky"),
        "delete its own update": lambda: edge_a.remove_object(U, own_update),
        "tag its own update": lambda: edge_a.set_object_tags(U, own_update, tags),
        "write a model": lambda: _put(edge_a, M, layout.model_key(TASK, 2)),
        "write the latest model": lambda: _put(edge_a, M, layout.latest_key(TASK)),
        "delete a model version": lambda: edge_a.remove_object(M, MODEL_KEY, version_id=seeded["model"]),
        "read the held-out set": lambda: _get(edge_a, E, layout.test_set_key(TASK)),
        "list the held-out sets": lambda: list(edge_a.list_objects(E)),
        "suspend model versioning": lambda: edge_a.set_bucket_versioning(M, VersioningConfig("Suspended")),
        "delete a bucket": lambda: edge_a.remove_bucket(E),
        "create a bucket": lambda: edge_a.make_bucket("edge-a-extra"),
        # secure aggregation's messages: its own in, everyone's readable, nothing of another's or the cloud's
        "send a secagg message as another edge": lambda: _put(
            edge_a, S, layout.secagg_edge_key("b", TASK, 1, "wf", "masked.npz")
        ),
        "publish a secagg roster": lambda: _put(
            edge_a, S, layout.secagg_server_key(TASK, 1, "wf", "roster.json")
        ),
        "delete its own secagg message": lambda: edge_a.remove_object(
            S, layout.secagg_edge_key("a", TASK, 1, "wf", "keys.json")
        ),
    }
    refused, other = _refusals(forbidden)
    assert (refused, other) == (len(forbidden), {})
    assert {b.name for b in edge_a.list_buckets()} <= {U, M, S}  # foreign buckets are not listed
    assert _get(edge_a, S, layout.secagg_edge_key("b", TASK, 1, "wf", "keys.json")) == b"{}"
    assert len(list(edge_a.list_objects(S, recursive=True))) >= 2

    # what the model grants works
    _put(edge_a, U, layout.update_key("a", TASK, 2, "wf"))
    assert _get(edge_a, M, MODEL_KEY, version_id=seeded["model"]) == b"w1"
    assert [o.object_name for o in edge_a.list_objects(M, prefix=layout.round_prefix(TASK, 1))] == [MODEL_KEY]


def test_every_forbidden_operation_of_an_edge_site_identity_is_refused(
    store: EmbeddedStore, seeded: dict[str, str | None]
) -> None:
    """The edge's identity in its own site's store: its own bucket, nothing of the cloud's or another site's."""
    site_a = store.client(_site("a"))
    forbidden: dict[str, Callable[[], object]] = {
        "read another edge's data": lambda: _get(site_a, "edge-b", f"{TASK}/train.parquet"),
        "list another edge's bucket": lambda: list(site_a.list_objects("edge-b", recursive=True)),
        "write another edge's bucket": lambda: _put(site_a, "edge-b", f"{TASK}/train.parquet"),
        "write an update": lambda: _put(site_a, U, layout.update_key("a", TASK, 3, "wf")),
        "read an update": lambda: _get(site_a, U, layout.update_key("a", TASK, 1, "wf")),
        "list the updates": lambda: list(site_a.list_objects(U, recursive=True)),
        "read a model": lambda: _get(site_a, M, MODEL_KEY),
        "write a model": lambda: _put(site_a, M, layout.model_key(TASK, 2)),
        "read the held-out set": lambda: _get(site_a, E, layout.test_set_key(TASK)),
        "delete a bucket": lambda: site_a.remove_bucket("edge-b"),
        "create a bucket": lambda: site_a.make_bucket("edge-a-extra"),
    }
    refused, other = _refusals(forbidden)
    assert (refused, other) == (len(forbidden), {})
    assert {b.name for b in site_a.list_buckets()} <= {"edge-a"}

    # what the model grants works: the dataset, and the verdicts cached beside it
    assert _get(site_a, "edge-a", f"{TASK}/train.parquet") == b"rows of a"
    assert [o.object_name for o in site_a.list_objects("edge-a", prefix=f"{TASK}/")] == [
        f"{TASK}/train.parquet"
    ]
    _put(site_a, "edge-a", layout.validation_result_key(TASK, 1, "wf"), b"{}")


def test_every_forbidden_operation_of_the_cloud_is_refused(
    store: EmbeddedStore, seeded: dict[str, str | None]
) -> None:
    cloud = store.client(layout.CLOUD_IDENTITY)
    committed = seeded["model"]
    forbidden: dict[str, Callable[[], object]] = {
        "read an edge's data": lambda: _get(cloud, "edge-a", f"{TASK}/train.parquet"),
        "list an edge's bucket": lambda: list(cloud.list_objects("edge-b")),
        "write an edge's bucket": lambda: _put(cloud, "edge-a", "forged"),
        "forge an edge's update": lambda: _put(cloud, U, layout.update_key("b", TASK, 1, "wf2")),
        "delete an edge's update": lambda: cloud.remove_object(U, layout.update_key("b", TASK, 1, "wf")),
        "delete a committed model version": lambda: cloud.remove_object(M, MODEL_KEY, version_id=committed),
        "hide a model behind a delete marker": lambda: cloud.remove_object(M, MODEL_KEY),
        "batch-delete a model version": lambda: _batch_delete(cloud, M, MODEL_KEY, committed),
        "suspend versioning (then PUT overwrites)": lambda: cloud.set_bucket_versioning(
            M, VersioningConfig("Suspended")
        ),
        "shorten the models' retention": lambda: cloud.set_object_lock_config(
            M, ObjectLockConfig(GOVERNANCE, 1, DAYS)
        ),
        "lift a committed version's retention": lambda: cloud.set_object_retention(
            M,
            MODEL_KEY,
            Retention(GOVERNANCE, datetime.now(UTC) + timedelta(seconds=2)),
            version_id=committed,
        ),
        "write a held-out set": lambda: _put(cloud, E, layout.test_set_key(TASK)),
        "delete a bucket": lambda: cloud.remove_bucket(E),
        "set a bucket policy": lambda: cloud.set_bucket_policy(
            M, json.dumps(iam_policy(policy_model([])["admin"]))
        ),
        "forge an edge's secagg message": lambda: _put(
            cloud, S, layout.secagg_edge_key("a", TASK, 1, "wf", "masked.npz")
        ),
        "delete an edge's secagg message": lambda: cloud.remove_object(
            S, layout.secagg_edge_key("a", TASK, 1, "wf", "keys.json")
        ),
    }
    refused, other = _refusals(forbidden)
    assert (refused, other) == (len(forbidden), {})
    assert {b.name for b in cloud.list_buckets()} <= {U, M, E, S}
    _put(cloud, S, layout.secagg_server_key(TASK, 1, "wf", "roster.json"), b"{}")
    assert _get(cloud, S, layout.secagg_edge_key("a", TASK, 1, "wf", "keys.json")) == b"{}"

    # what the model grants works, and a PUT onto a committed key adds a version, never replaces one
    assert _get(cloud, U, layout.update_key("b", TASK, 1, "wf")) == b"delta b"
    assert any(o.object_name == "a/" for o in cloud.list_objects(U))
    assert _get(cloud, E, layout.test_set_key(TASK)) == b"held out"
    again = _put(cloud, M, MODEL_KEY, b"w1 again")
    tags = Tags.new_object_tags()
    tags["round"] = "1"
    cloud.set_object_tags(M, MODEL_KEY, tags, version_id=again)
    assert again != committed
    assert _get(cloud, M, MODEL_KEY, version_id=committed) == b"w1"
    versions = {o.version_id for o in cloud.list_objects(M, prefix=MODEL_KEY, include_version=True)}
    assert {committed, again} <= versions
    assert cloud.get_bucket_versioning(M).status == "Enabled"


def test_the_running_store_enforces_the_attached_documents(store: EmbeddedStore) -> None:
    config = json.loads((store.state_dir / "s3-identities.json").read_text())
    documents = {p["name"]: json.loads(p["content"]) for p in config["policies"]}
    for identity, document in identity_policies(store.edges).items():
        assert documents[policy_name(identity)] == document
    attached = {i["name"]: i.get("policyNames") for i in config["identities"]}
    assert attached[layout.ADMIN_IDENTITY] is None
    # the reload probe holds no right at all: no actions, no document
    probe = next(i for i in config["identities"] if i["name"] == PROBE_IDENTITY)
    assert probe["actions"] == [] and attached.pop(PROBE_IDENTITY) is None
    keys = store._files.probe_credentials()
    rightless = Minio(store.endpoint, keys.access_key, keys.secret_key, secure=False, region=store.region)
    for bucket in (M, U, E, "edge-a"):
        with pytest.raises(S3Error, match="AccessDenied"):
            list(rightless.list_objects(bucket))
    assert all(attached[i] == [policy_name(i)] for i in attached if i != layout.ADMIN_IDENTITY)


# ---------------------------------------------------------------------------------------- no server

_ARN = re.compile(r"^arn:aws:s3:::([a-z0-9*][a-z0-9.-]*)(?:/(.*))?$")


def _assert_iam_shape(document: dict) -> None:
    assert set(document) == {"Version", "Statement"} and document["Version"] == "2012-10-17"
    assert document["Statement"]
    for statement in document["Statement"]:
        assert set(statement) == {"Effect", "Action", "Resource"}
        assert statement["Effect"] == "Allow"
        assert statement["Action"] and all(re.fullmatch(r"s3:[A-Za-z*]+", a) for a in statement["Action"])
        assert statement["Resource"] and all(_ARN.match(r) for r in statement["Resource"])


def _as_seaweedfs(document: dict) -> set[str]:
    """The SeaweedFS actions an IAM document amounts to, read back through :data:`ACCESS`."""
    kinds = {"read": "Read", "list": "List", "write": "Write", "tagging": "Tagging"}
    actions: set[str] = set()
    for statement in document["Statement"]:
        if statement["Action"] == ["s3:*"]:
            actions |= {"Admin", "Read", "Write", "List", "Tagging"}
            continue
        for resource in statement["Resource"]:
            bucket, key = _ARN.match(resource).groups()
            scope = bucket if key in (None, "*") else f"{bucket}/{key}"
            for kind, (bucket_level, object_level) in ACCESS.items():
                if kind not in kinds:  # listen: MinIO's notifications, which no SeaweedFS identity holds
                    continue
                wanted = bucket_level if key is None else object_level
                present = [a for a in wanted if a in statement["Action"]]
                if wanted and present:
                    assert present == list(wanted), f"{kind} only partly granted on {resource}"
                    actions.add(f"{kinds[kind]}:{scope}")
    return actions


def test_generated_minio_documents_say_what_the_seaweedfs_actions_say(tmp_path: Path) -> None:
    task = load_task(REPO / "examples" / "heart-demo.yaml")
    edges = [e.name for e in task.spec.edges]
    written = {p.name: p for p in write_minio_policies(task, tmp_path)}
    seaweedfs = identity_actions(edges)
    assert set(seaweedfs) == {
        layout.ADMIN_IDENTITY,
        layout.CLOUD_IDENTITY,
        *map(_id, edges),
        *map(_site, edges),
    }
    for identity, actions in seaweedfs.items():
        document = iam_policy(policy_model(edges)[identity])
        _assert_iam_shape(document)
        assert _as_seaweedfs(document) == set(actions), identity
        if identity != layout.ADMIN_IDENTITY:
            path = written.pop(f"{task.name}-minio-policy-{identity}.json")
            assert json.loads(path.read_text()) == document
    commands = written.pop(f"{task.name}-minio-policies.txt").read_text()
    assert not written
    # cloud identities go to the cloud MinIO, each site identity to its own edge's MinIO
    aliases = {layout.CLOUD_IDENTITY: "CLOUD"}
    aliases |= {_id(e): "CLOUD" for e in edges}
    aliases |= {_site(e): "SITE_" + e.upper().replace("-", "_") for e in edges}
    for identity, alias in aliases.items():
        name = policy_name(identity)
        assert f"mc admin policy create {alias} {name} {task.name}-minio-policy-{identity}.json" in commands
        assert f"mc admin policy attach {alias} {name} --user " in commands


def test_no_document_grants_a_delete_and_edges_write_only_their_prefix() -> None:
    model = policy_model(["a", "b"])
    for identity, grants in model.items():
        if identity == layout.ADMIN_IDENTITY:
            continue
        granted = [a for s in iam_policy(grants)["Statement"] for a in s["Action"]]
        assert not [a for a in granted if "Delete" in a or a == "s3:*" or "Policy" in a], identity

    def writes(identity: str) -> set[str]:
        return {
            r
            for s in iam_policy(model[identity])["Statement"]
            if "s3:PutObject" in s["Action"]
            for r in s["Resource"]
        }

    assert writes(_id("a")) == {f"arn:aws:s3:::{U}/a/*", f"arn:aws:s3:::{S}/a/*"}
    assert writes(_site("a")) == {"arn:aws:s3:::edge-a/*"}
    assert writes(layout.CLOUD_IDENTITY) == {f"arn:aws:s3:::{M}/*", f"arn:aws:s3:::{S}/_server/*"}


def test_rendered_store_config_attaches_each_identity_its_document(tmp_path: Path) -> None:
    files = CredentialFiles(tmp_path)
    files.add_edges(["a"])
    assert files.render_s3_config()
    config = json.loads(files.s3_config.read_text())
    by_name = {i["name"]: i for i in config["identities"]}
    assert by_name[_id("a")]["actions"] == identity_actions(["a"])[_id("a")]
    policies = {p["name"]: json.loads(p["content"]) for p in config["policies"]}
    assert policies == {policy_name(i): d for i, d in identity_policies(["a"]).items()}
    assert not files.render_s3_config()  # unchanged: no reload


def test_the_model_refuses_grants_it_cannot_render() -> None:
    with pytest.raises(PolicyError, match="expected access among"):
        Grant(access=("delete",), bucket=M)
    with pytest.raises(PolicyError, match="expected effect 'Allow'"):
        Grant(access=("read",), bucket=M, effect="Deny")
    with pytest.raises(PolicyError, match="whole buckets only"):
        Grant(access=("list",), bucket=U, prefix="a/")


def test_a_notification_identity_only_listens_and_the_embedded_store_never_holds_one() -> None:
    from edgefed.workflows.policy import PolicyError, notification_model, seaweedfs_actions

    model = notification_model(["a", "b"])
    assert set(model) == {"notify-a", "notify-b"}
    document = iam_policy(model["notify-a"])
    _assert_iam_shape(document)
    assert document["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["s3:ListenBucketNotification", "s3:GetBucketLocation"],
            "Resource": ["arn:aws:s3:::edge-a"],
        }
    ]
    with pytest.raises(PolicyError, match="no bucket-notification stream"):
        seaweedfs_actions(model["notify-a"])


def test_committed_versions_are_retained_against_every_identity_but_a_governance_bypass(
    store: EmbeddedStore, seeded: dict[str, str | None]
) -> None:
    """Object lock on the models bucket: each version is under GOVERNANCE retention, so even the store's
    admin (which no step holds) cannot delete one without explicitly bypassing governance."""
    admin = store.client(layout.ADMIN_IDENTITY)
    lock = admin.get_object_lock_config(M)
    assert (lock.mode, lock.duration, lock.duration_unit) == (GOVERNANCE, layout.MODEL_RETENTION_DAYS, DAYS)
    retention = admin.get_object_retention(M, MODEL_KEY, version_id=seeded["model"])
    assert retention.mode == GOVERNANCE
    assert retention.retain_until_date > datetime.now(UTC) + timedelta(days=layout.MODEL_RETENTION_DAYS - 1)
    with pytest.raises(S3Error, match="AccessDenied"):
        admin.remove_object(M, MODEL_KEY, version_id=seeded["model"])
    assert _get(admin, M, MODEL_KEY, version_id=seeded["model"]) == b"w1"
