"""Shared fixtures. The embedded S3 store: one real SeaweedFS per test session, started on first use.

Tests that need the store ask for ``store`` (an :class:`EmbeddedStore`, provisioned for the edges in
:data:`STORE_EDGES`: every bucket exists, ``edgefed-models`` is versioned) or for ``store_client``
(``store_client("edge-a")`` is a ``minio`` client acting as that identity). More edges:
``store.provision(["c"])``. Tests that do not ask for them never start a server.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from minio import Minio

from edgefed.workflows.embedded.store import EmbeddedStore


def _cache_bytecode() -> None:
    """Every Python process the suite starts (``edgefed`` commands, warm workers, fork servers) shares one
    bytecode cache for the session: the venv holds no ``.pyc`` files and ``PYTHONDONTWRITEBYTECODE`` may
    be set, so each process would otherwise compile TensorFlow, hera and pydantic from source again (a
    TensorFlow import: ~11 s cold, ~4 s cached). The cache lives outside the source tree and the venv
    (``PYTHONPYCACHEPREFIX``; one the user set is kept) and is checked against each source's mtime and
    size like any ``__pycache__``, so no process runs other code than it would have."""
    prefix = os.environ.get("PYTHONPYCACHEPREFIX")
    if not prefix:
        prefix = tempfile.mkdtemp(prefix="edgefed-tests-pycache-")
        atexit.register(shutil.rmtree, prefix, ignore_errors=True)
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.pycache_prefix = prefix
    sys.dont_write_bytecode = False


_cache_bytecode()

#: Edges the session store is provisioned for (buckets ``edge-a``, ``edge-b``; identities ``edge-a``...).
STORE_EDGES: tuple[str, ...] = ("a", "b")


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    """A running, provisioned embedded store in a session temp dir; stopped when the session ends."""
    embedded = EmbeddedStore(tmp_path_factory.mktemp("store"))
    embedded.start()
    try:
        embedded.provision(STORE_EDGES)
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def store_client(store: EmbeddedStore) -> Callable[[str], Minio]:
    """``store_client(identity)``: a client of the session store acting as ``identity``."""
    return store.client


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Nothing a test runs (in-process or as a subprocess) writes to the user's ~/.local/state/edgefed."""
    mp = pytest.MonkeyPatch()
    mp.setenv("EDGEFED_HOME", str(tmp_path_factory.mktemp("edgefed-home")))
    yield
    mp.undo()
    leaked = _leaked_stores(str(tmp_path_factory.getbasetemp()))
    if leaked:  # a test started a store (edgefed's CLI detaches one) and never stopped it
        raise RuntimeError("stores left running by the suite (killed now): " + "; ".join(leaked))


def _leaked_stores(basetemp: str) -> list[str]:
    """Kill the SeaweedFS processes whose command line names this session's temp dir; their data dirs."""
    import signal

    leaked = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"weed") and any(basetemp.encode() in a for a in argv):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGKILL)
            leaked += [a.decode().removeprefix("-dir=") for a in argv if a.startswith(b"-dir=")]
    return leaked
