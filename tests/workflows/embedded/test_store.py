"""The embedded SeaweedFS store, against a real ``weed mini`` (no mocks).

Most tests share the session ``store`` (conftest); the restart test runs last in this file and leaves
it running again. Tests that need their own server use their own state dir and stop it themselves.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from minio import Minio
from minio.error import S3Error

from edgefed.steps import layout
from edgefed.workflows.embedded.store import (
    GRPC_OFFSET,
    SERVICES,
    Credentials,
    EmbeddedStore,
    StoreError,
    identity_actions,
    validate_edge,
)
from edgefed.workflows.embedded.store.identities import CredentialFiles
from tests.workflows.embedded.s3 import get as _get
from tests.workflows.embedded.s3 import put as _put

pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------------------------------- helpers


def _update_key(edge: str, round_: int) -> str:
    """A key under ``edge``'s update prefix (the only place ``edge`` may write in the updates bucket)."""
    return f"{layout.update_prefix(edge)}heart/round-{round_:05d}/update.npz"


def _denied(action: Callable[[], object]) -> str:
    """The S3 error code of ``action``, which must fail."""
    with pytest.raises(S3Error) as caught:
        action()
    return caught.value.code


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _tcp_listeners(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, IPv4 and IPv6."""
    inodes = _socket_inodes(pid)
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            addr_hex, port_hex = local.split(":")
            raw = bytes.fromhex(addr_hex)
            # /proc prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((socket.inet_ntop(family, raw), int(port_hex, 16)))
    return found


def _unix_listeners(pid: int) -> list[str]:
    inodes = _socket_inodes(pid)
    paths = []
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes and int(fields[3], 16) & 0x10000:  # __SO_ACCEPTCON
            paths.append(fields[7])
    return paths


def _weed_pids_for(state_dir: Path) -> list[int]:
    """Every live process whose command line names ``state_dir``'s data dir (zombies excluded)."""
    marker = f"-dir={state_dir / 'data'}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            named = marker in (proc / "cmdline").read_bytes().split(b"\0")
            if named and (proc / "stat").read_text().rpartition(")")[2].split()[0] not in "ZX":
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


# ---------------------------------------------------------------------------------------- no server


def test_edge_names_and_memory_limit_are_validated(tmp_path: Path) -> None:
    assert validate_edge("site-01") == "site-01"
    for bad in ("", "A", "-a", "a-", "a_b", "a/b", "x" * 59):
        with pytest.raises(StoreError, match="invalid edge name"):
            validate_edge(bad)
    with pytest.raises(StoreError, match="invalid memory_limit"):
        EmbeddedStore(tmp_path, memory_limit="1 gigabyte")


def test_identity_model_matches_the_layout() -> None:
    actions = identity_actions(["a"])
    assert actions[layout.ADMIN_IDENTITY][0] == "Admin"
    assert sorted(actions[layout.CLOUD_IDENTITY]) == sorted(
        [
            "Read:edgefed-updates",
            "List:edgefed-updates",
            "Read:edgefed-models",
            "Write:edgefed-models",
            "List:edgefed-models",
            "Tagging:edgefed-models",
            "Read:edgefed-eval",
            "List:edgefed-eval",
            "Read:edgefed-secagg",
            "List:edgefed-secagg",
            "Write:edgefed-secagg/_server/*",
        ]
    )
    assert sorted(actions[layout.edge_identity("a")]) == sorted(
        [
            "Write:edgefed-updates/a/*",
            "Read:edgefed-models",
            "List:edgefed-models",
            "Write:edgefed-secagg/a/*",
            "Read:edgefed-secagg",
            "List:edgefed-secagg",
        ]
    )
    assert sorted(actions[layout.site_identity("a")]) == sorted(
        ["Read:edge-a", "List:edge-a", "Write:edge-a"]
    )


def test_credentials_of_an_older_installation_gain_site_identities(tmp_path: Path) -> None:
    """Before issue 10 an edge had one identity; the store's config renders, giving it its site identity."""
    files = CredentialFiles(tmp_path)
    files.add_edges(["a"])
    creds = json.loads(files.path.read_text())
    old_edge = creds["identities"]["edge-a"]
    del creds["identities"][layout.site_identity("a")]
    files.path.write_text(json.dumps(creds))
    assert files.render_s3_config()
    assert files.get(layout.edge_identity("a")).access_key == old_edge["access_key"]
    assert files.get(layout.site_identity("a")).access_key != old_edge["access_key"]
    names = {i["name"] for i in json.loads(files.s3_config.read_text())["identities"]}
    assert {"edge-a", "site-a"} <= names


def test_credentials_repr_hides_the_secret() -> None:
    creds = Credentials("AKID-visible", "s3cr3t-value")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "s3cr3t-value" not in text
        assert "AKID-visible" in text


# ---------------------------------------------------------------------------------------- lifecycle


def test_second_object_reuses_the_running_server(store: EmbeddedStore) -> None:
    pid = store.pid
    assert pid is not None and store.running
    assert store.endpoint.startswith("127.0.0.1:")
    assert store.region == layout.REGION
    with EmbeddedStore(store.state_dir) as again:  # start() inside: must reuse, not spawn
        assert again.pid == pid
        assert again.endpoint == store.endpoint
        assert again.credentials(layout.ADMIN_IDENTITY) == store.credentials(layout.ADMIN_IDENTITY)
    # Leaving the block of an object that did not start the server must not stop it.
    assert store.running and store.pid == pid
    assert _weed_pids_for(store.state_dir) == [pid]


def test_start_timeout_kills_the_server_and_reports_its_log(tmp_path: Path) -> None:
    doomed = EmbeddedStore(tmp_path / "doomed")
    with pytest.raises(StoreError, match=r"did not answer on S3 port \d+ within") as caught:
        doomed.start(timeout=0.01)
    assert "last lines" in str(caught.value)
    assert _weed_pids_for(doomed.state_dir) == []
    assert "pid" not in json.loads((doomed.state_dir / "store.json").read_text())
    assert doomed.pid is None and not doomed.running


def test_detached_server_outlives_its_process_and_an_owned_one_does_not(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from edgefed.workflows.embedded.store import EmbeddedStore\n"
        "EmbeddedStore(sys.argv[1]).start(detach=sys.argv[2] == 'detach')\n"
    )
    detached, owned = EmbeddedStore(tmp_path / "detached"), EmbeddedStore(tmp_path / "owned")
    try:
        for store_, mode in ((detached, "detach"), (owned, "own")):
            subprocess.run([sys.executable, "-c", code, str(store_.state_dir), mode], check=True, timeout=90)
        assert detached.running, "a detached server must survive the process that started it"
        assert not owned.running and _weed_pids_for(owned.state_dir) == []
        pid = detached.pid
        detached.start()
        assert detached.pid == pid
    finally:
        detached.stop()
        owned.stop()
    assert _weed_pids_for(detached.state_dir) == []
    assert detached.pid is None


# ---------------------------------------------------------------------------------------- hygiene


def test_listens_only_on_loopback_on_recorded_ports(store: EmbeddedStore) -> None:
    pid = store.pid
    assert pid is not None
    listeners = _tcp_listeners(pid)
    assert listeners, "weed listens on no TCP port"
    assert {addr for addr, _ in listeners} == {"127.0.0.1"}, listeners
    record = json.loads((store.state_dir / "store.json").read_text())
    chosen = set(record["ports"].values()) | {p + GRPC_OFFSET for p in record["ports"].values()}
    assert {port for _, port in listeners} <= chosen, "weed opened a port we did not choose"
    assert int(store.endpoint.rsplit(":", 1)[1]) in {port for _, port in listeners}


def test_unix_sockets_stay_in_the_state_dir(store: EmbeddedStore) -> None:
    pid = store.pid
    assert pid is not None
    ports = json.loads((store.state_dir / "store.json").read_text())["ports"]
    for name in ("s3.sock", "filer.sock"):
        assert stat.S_ISSOCK((store.state_dir / "run" / name).stat().st_mode)
    # The defaults the -s3.localSocket / -filer.localSocket flags replace:
    assert not Path(f"/tmp/seaweedfs-s3-{ports['s3']}.sock").exists()
    assert not Path(f"/tmp/seaweedfs-filer-{ports['filer']}.sock").exists()
    # weed mini 4.48 hard-codes one gRPC socket per service in /tmp; nothing else may be outside.
    allowed_tmp = {f"/tmp/seaweedfs-{s}-grpc-{ports[s] + GRPC_OFFSET}.sock" for s in SERVICES}
    for path in _unix_listeners(pid):
        assert not path.startswith("/") or path in allowed_tmp, path


def test_secrets_stay_private(store: EmbeddedStore) -> None:
    pid = store.pid
    assert pid is not None
    for name in ("credentials.json", "s3-identities.json"):
        assert stat.S_IMODE((store.state_dir / name).stat().st_mode) == 0o600, name
    identities = json.loads((store.state_dir / "credentials.json").read_text())["identities"]
    secrets_ = [pair["secret_key"] for pair in identities.values()]
    assert len(secrets_) == len(set(secrets_)) >= 2 + 2  # admin, cloud, edge-a, edge-b
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    environ = Path(f"/proc/{pid}/environ").read_bytes().decode()
    assert "GOMEMLIMIT=1GiB" in environ.split("\0")
    logs = "".join(p.read_text(errors="replace") for p in (store.state_dir / "logs").iterdir() if p.is_file())
    for identity, pair in identities.items():
        shown = [repr(store.credentials(identity)), str(store.credentials(identity)), repr(store)]
        for text in [*shown, cmdline, environ, logs]:
            assert pair["secret_key"] not in text, identity


# ---------------------------------------------------------------------------------------- permissions


def test_edge_reads_only_its_bucket_and_writes_only_its_update_prefix(
    store: EmbeddedStore, store_client: Callable[[str], Minio]
) -> None:
    admin, edge_a = store_client(layout.ADMIN_IDENTITY), store_client(layout.edge_identity("a"))
    site_a = store_client(layout.site_identity("a"))
    _put(admin, "edge-a", "heart/train.parquet", b"rows of a")
    _put(admin, "edge-b", "heart/train.parquet", b"rows of b")

    # its own site's data with its site identity, never with its cloud one
    assert _get(site_a, "edge-a", "heart/train.parquet") == b"rows of a"
    assert [o.object_name for o in site_a.list_objects("edge-a", prefix="heart/")] == ["heart/train.parquet"]
    _put(site_a, "edge-a", "reports/validation.json", b"{}")  # its own validation reports
    assert _denied(lambda: _get(site_a, "edge-b", "heart/train.parquet")) == "AccessDenied"
    assert _denied(lambda: list(site_a.list_objects("edge-b"))) == "AccessDenied"
    assert _denied(lambda: _get(edge_a, "edge-a", "heart/train.parquet")) == "AccessDenied"
    assert _denied(lambda: _put(site_a, layout.UPDATES_BUCKET, _update_key("a", 1))) == "AccessDenied"

    _put(edge_a, layout.UPDATES_BUCKET, _update_key("a", 1))
    assert _denied(lambda: _put(edge_a, layout.UPDATES_BUCKET, _update_key("b", 1))) == ("AccessDenied")
    assert _denied(lambda: _put(edge_a, layout.UPDATES_BUCKET, "ab/sneaky")) == "AccessDenied"
    assert _denied(lambda: _put(edge_a, layout.MODELS_BUCKET, "heart/latest.npz")) == "AccessDenied"
    assert _denied(lambda: _get(edge_a, layout.EVAL_BUCKET, "heart/test.parquet")) == "AccessDenied"

    _put(admin, layout.MODELS_BUCKET, "heart/rounds/00000/model.npz", b"w0")
    assert _get(edge_a, layout.MODELS_BUCKET, "heart/rounds/00000/model.npz") == b"w0"


def test_cloud_writes_models_reads_updates_and_not_edge_data(
    store_client: Callable[[str], Minio],
) -> None:
    admin, cloud = store_client(layout.ADMIN_IDENTITY), store_client(layout.CLOUD_IDENTITY)
    edge_b = store_client(layout.edge_identity("b"))
    _put(edge_b, layout.UPDATES_BUCKET, _update_key("b", 2), b"delta of b")
    _put(admin, layout.EVAL_BUCKET, "heart/test.parquet", b"held out")

    _put(cloud, layout.MODELS_BUCKET, "heart/rounds/00002/model.npz", b"w2")
    assert _get(cloud, layout.UPDATES_BUCKET, _update_key("b", 2)) == b"delta of b"
    assert any(o.object_name == "b/" for o in cloud.list_objects(layout.UPDATES_BUCKET))
    assert _get(cloud, layout.EVAL_BUCKET, "heart/test.parquet") == b"held out"
    assert _denied(lambda: _get(cloud, "edge-a", "heart/train.parquet")) == "AccessDenied"
    assert _denied(lambda: _put(cloud, layout.UPDATES_BUCKET, "b/forged")) == "AccessDenied"


def test_models_bucket_keeps_every_version(store_client: Callable[[str], Minio]) -> None:
    cloud = store_client(layout.CLOUD_IDENTITY)
    assert cloud.get_bucket_versioning(layout.MODELS_BUCKET).status == "Enabled"
    key = "versioning-test/latest.npz"
    first, second = (
        _put(cloud, layout.MODELS_BUCKET, key, b"round 1"),
        _put(cloud, layout.MODELS_BUCKET, key, b"round 2"),
    )
    assert first and second and first != second
    versions = {
        o.version_id: o.is_latest
        for o in cloud.list_objects(layout.MODELS_BUCKET, prefix=key, include_version=True)
    }
    assert set(versions) == {first, second}
    assert _get(cloud, layout.MODELS_BUCKET, key) == b"round 2"
    assert _get(cloud, layout.MODELS_BUCKET, key, version_id=first) == b"round 1"


def test_new_edge_gets_working_credentials_without_restart(store: EmbeddedStore) -> None:
    pid = store.pid
    before = store.credentials(layout.edge_identity("a"))
    store.ensure_edges(["a", "c"])
    store.ensure_edges(["c"])  # idempotent: keys are generated once
    keys_c = store.credentials(layout.edge_identity("c"))
    store.provision(["c"])
    assert store.credentials(layout.edge_identity("c")) == keys_c
    assert store.credentials(layout.edge_identity("a")) == before
    assert store.pid == pid, "SeaweedFS was restarted instead of reloading its identities"
    assert "c" in store.edges

    edge_c, site_c = store.client(layout.edge_identity("c")), store.client(layout.site_identity("c"))
    _put(site_c, "edge-c", "reports/validation.json", b"{}")
    assert _get(site_c, "edge-c", "reports/validation.json") == b"{}"
    _put(edge_c, layout.UPDATES_BUCKET, _update_key("c", 1))
    assert _denied(lambda: _get(edge_c, "edge-a", "heart/train.parquet")) == "AccessDenied"
    assert _denied(lambda: _put(edge_c, layout.UPDATES_BUCKET, "a/forged")) == "AccessDenied"
    with pytest.raises(StoreError, match="unknown store identity 'edge-zz'"):
        store.client("edge-zz")


def test_waiting_for_a_reload_never_tries_a_new_identitys_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SeaweedFS logs every access key it does not know ("attempted key '...' not found", flushed to
    weed.WARNING within 30 s), so a key tried before the reload lands in its logs. The wait tries only the
    rightless reload probe's key. Made certain: the config gains an edge the store has not loaded (no
    reload signal), so the wait runs out trying; every client the store module made meanwhile is recorded."""
    from edgefed.workflows.embedded.store import server

    store = EmbeddedStore(tmp_path / "store")
    store.start()
    files = store._files  # the rendered config, ahead of the running store on purpose
    tried: list[str] = []

    def recording(endpoint: str, access_key: str, *args: object, **kwargs: object) -> Minio:
        tried.append(access_key)
        return Minio(endpoint, access_key, *args, **kwargs)

    try:
        files.add_edges(["late"])
        assert files.render_s3_config()
        late = [layout.edge_identity("late"), layout.site_identity("late")]
        with monkeypatch.context() as patch:
            patch.setattr(server, "Minio", recording)
            assert not store._wait_identities(late, timeout=0.5)
            assert tried and set(tried) == {files.probe_credentials().access_key}
            store._apply_identities(store.pid, late)  # the reload ensure_edges would have sent
        assert set(tried) == {files.probe_credentials().access_key}
        store.provision(["late"])
        list(store.client(layout.site_identity("late")).list_objects("edge-late"))  # usable at once
    finally:
        store.stop()


# ---------------------------------------------------------------------------------------- restart (last)


def test_data_versions_and_ports_survive_a_restart(store: EmbeddedStore) -> None:
    admin = store.client(layout.ADMIN_IDENTITY)
    endpoint, old_pid = store.endpoint, store.pid
    ports = json.loads((store.state_dir / "store.json").read_text())["ports"]
    key = "restart-test/latest.npz"
    v1, v2 = (
        _put(admin, layout.MODELS_BUCKET, key, b"before 1"),
        _put(admin, layout.MODELS_BUCKET, key, b"before 2"),
    )
    _put(admin, "edge-a", "restart/data.bin", b"\x00\x01 kept")

    store.stop()
    assert not store.running and store.pid is None
    assert "pid" not in json.loads((store.state_dir / "store.json").read_text())
    assert _weed_pids_for(store.state_dir) == []
    for service in SERVICES:  # the gRPC sockets weed leaves in /tmp are cleaned up
        assert not Path(f"/tmp/seaweedfs-{service}-grpc-{ports[service] + GRPC_OFFSET}.sock").exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{endpoint}/", timeout=2)

    store.start()
    assert store.pid not in (None, old_pid)
    assert store.endpoint == endpoint, "recorded ports must be reused so object URLs stay stable"
    admin = store.client(layout.ADMIN_IDENTITY)
    assert _get(admin, "edge-a", "restart/data.bin") == b"\x00\x01 kept"
    versions = {
        o.version_id for o in admin.list_objects(layout.MODELS_BUCKET, prefix=key, include_version=True)
    }
    assert versions == {v1, v2}
    assert _get(admin, layout.MODELS_BUCKET, key, version_id=v1) == b"before 1"
    assert _get(admin, layout.MODELS_BUCKET, key) == b"before 2"
    assert _get(store.client(layout.site_identity("a")), "edge-a", "restart/data.bin") == b"\x00\x01 kept"
