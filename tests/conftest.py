"""Shared fixtures. The embedded S3 store: one real SeaweedFS per test session, started on first use.

Tests that need the store ask for ``store`` (an :class:`EmbeddedStore`, provisioned for the edges in
:data:`STORE_EDGES`: every bucket exists, ``edgefed-models`` is versioned) or for ``store_client``
(``store_client("edge-a")`` is a ``minio`` client acting as that identity). More edges:
``store.provision(["c"])``. Tests that do not ask for them never start a server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from minio import Minio

from edgefed.workflows.embedded.store import EmbeddedStore

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
