"""A store that goes away: the steps' clients retry with backoff long enough for it to restart, and when it
stays away a step says so in a sentence (which store, what happened, how long it tried), exit 1 (retried
by the template), never urllib3's raw ``MaxRetryError``."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import urllib3
from minio import Minio

from edgefed.steps import cli, layout, store
from edgefed.steps.interface import Env, StepExit
from edgefed.steps.store import Endpoint, get_bytes, put_bytes
from edgefed.workflows.embedded.store import EmbeddedStore


def _client(running: EmbeddedStore) -> Minio:
    # the pool client_from_env gives every step
    return running.client(
        layout.ADMIN_IDENTITY, http_client=store._http_client(Endpoint.parse(f"http://{running.endpoint}"))
    )


@pytest.mark.slow
def test_a_store_restarted_mid_request_is_waited_for(tmp_path: Path) -> None:
    private = EmbeddedStore(tmp_path / "store")  # its own: the session's store is not stopped under others
    private.start()
    try:
        private.provision([])
        client = _client(private)
        put_bytes(client, layout.MODELS_BUCKET, "restart/probe", b"still here")
        private.stop()
        restarted = threading.Timer(2.0, private.start)
        restarted.start()
        started = time.monotonic()
        assert get_bytes(client, layout.MODELS_BUCKET, "restart/probe") == b"still here"
        assert time.monotonic() - started >= 1.5  # it was down, and the read waited for it
        restarted.join()
    finally:
        private.stop()


def test_an_unreachable_store_is_named_in_a_sentence(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(store, "STORE_RETRY", urllib3.Retry(total=2, connect=2, backoff_factor=0.01))
    monkeypatch.setattr(store, "_CLIENTS", {})
    monkeypatch.setenv(Env.ACCESS_KEY, "k")
    monkeypatch.setenv(Env.SECRET_KEY, "s")
    # a port nothing listens on: connections are refused
    code = cli.run(
        [
            "evaluate",
            "--task",
            "t",
            "--round",
            "1",
            "--store",
            "http://127.0.0.1:9",
            "--config",
            '{"model": {"name": "logistic", "inputShape": [4], "classes": 2}}',
            "--outputs",
            "/nonexistent-outputs",
        ]
    )
    err = capsys.readouterr().err
    assert code == StepExit.FAILED
    assert "edgefed-step evaluate: error: the store at http://127.0.0.1:9 cannot be reached" in err, err
    assert "is it running?" in err and "MaxRetryError" not in err and "Traceback" not in err


def test_a_bounded_client_gives_up_on_a_silent_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that accepts connections and never answers (packets dropped past the handshake): the client
    an edge step uses when it may work offline gives up within a few times its wait, where the steps' usual
    client would wait 300 s per attempt."""
    import socket

    monkeypatch.setattr(store, "_CLIENTS", {})
    monkeypatch.setenv(Env.ACCESS_KEY, "k")
    monkeypatch.setenv(Env.SECRET_KEY, "s")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        endpoint = Endpoint.parse(f"http://127.0.0.1:{silent.getsockname()[1]}")
        client = store.client_from_env(endpoint, wait_seconds=1)
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.HTTPError):
            get_bytes(client, layout.MODELS_BUCKET, "anything")
        assert time.monotonic() - started < 30
