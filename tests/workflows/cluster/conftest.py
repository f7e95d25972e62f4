"""Fixtures of the cluster tests: a fake Argo server (playbook mode), a client of it, no leftover threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edgefed.workflows.cluster.client import ArgoClient, ArgoOptions
from tests.workflows.cluster.fake_argo import FakeArgo
from tests.workflows.cluster.support import NS, TOKEN


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Every server, request and timer thread a test starts is gone when it ends."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while (left := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not left, f"threads left running: {left}"


@pytest.fixture
def argo() -> Iterator[FakeArgo]:
    with FakeArgo(token=TOKEN, namespace=NS) as fake:
        yield fake


@pytest.fixture
def client_of() -> Iterator[Callable[..., ArgoClient]]:
    """``client_of(argo, token=..., **options)``: a client of the fake with fast polls and backoff,
    closed at the end of the test."""
    opened: list[ArgoClient] = []

    def make(argo: FakeArgo, *, token: str | None = TOKEN, **kwargs: Any) -> ArgoClient:
        cancel = kwargs.pop("cancel", None)
        options: dict[str, Any] = {"poll": 0.01, "backoff": 0.01, "timeout": 20}
        options.update(kwargs)
        client = ArgoClient(argo.url, NS, token=token, options=ArgoOptions(**options), cancel=cancel)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()
