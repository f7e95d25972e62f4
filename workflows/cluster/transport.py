"""Talking to an Argo server: Hera's ``WorkflowsService`` behind one retry policy, the token kept out of sight.

Rules: 5xx (but 501) and connection errors are retried with exponential backoff up to ``retries``
times; other 4xx are not (409 surfaces as :class:`ArgoConflictError` for create-or-update to handle);
401/403 raise :class:`ArgoAuthError`. A call whose first attempt may have taken effect (a create
that met a 5xx or lost its response) passes ``recover``, which runs before each retry and may return
the result instead. The token goes only into the ``Authorization`` header; it is scrubbed from every
error message this package raises or logs. Every wait returns early, raising
:class:`WatchCancelledError`, when ``cancel`` is set.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
from hera.exceptions import HeraException

from edgefed.workflows.cluster.errors import (
    DEFAULT_TOKEN_ENV,
    ArgoAuthError,
    ArgoConflictError,
    ArgoError,
    ArgoRequestError,
    ArgoUnavailableError,
    WatchCancelledError,
)

__all__ = ["ArgoConnection", "normalize_server", "read_token"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_MAX_BACKOFF = 30.0


def normalize_server(url: str) -> str:
    """``https://host[:port][/prefix]`` with a trailing slash, so Hera's ``urljoin`` keeps the prefix."""
    url = url.strip()
    if "://" not in url:
        url = f"https://{url}"
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the Argo server URL must be http:// or https://, got {url!r}")
    return url if url.endswith("/") else f"{url}/"


def read_token(token_file: Path | None = None, env: str = DEFAULT_TOKEN_ENV) -> str | None:
    """The bearer token from ``token_file`` or else environment variable ``env``; None when neither."""
    if token_file is not None:
        token = token_file.read_text().strip()
        if not token:
            raise ArgoError(f"token file {token_file} is empty")
        return token
    token = os.environ.get(env, "").strip()
    return token or None


class _Session(requests.Session):
    """A session with a default request timeout that remembers each thread's last HTTP status
    (Hera raises a bare ``HeraException`` for statuses it has no class for, such as 503)."""

    def __init__(self, timeout: float | tuple[float, float]) -> None:
        super().__init__()
        self.default_timeout = timeout
        self._local = threading.local()

    @property
    def last_status(self) -> int | None:
        return getattr(self._local, "status", None)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self._local.status = None
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        response = super().request(method, url, *args, **kwargs)
        self._local.status = response.status_code
        return response


class ArgoConnection:
    """One Argo server and namespace: the ``service`` (Hera's ``WorkflowsService``) and :meth:`call`.

    ``token``: the bearer token (``None``: Hera's global config token, if any, else none); it goes to
    this service instance, never to Hera's process-wide ``global_config``.
    """

    def __init__(
        self,
        server: str,
        namespace: str,
        *,
        token: str | None,
        verify_ssl: bool = True,
        retries: int = 3,
        backoff: float = 1.0,
        request_timeout: float = 30.0,
        token_env: str = DEFAULT_TOKEN_ENV,
        cancel: threading.Event | None = None,
    ) -> None:
        self.server = normalize_server(server)
        self.namespace = namespace
        self.retries = retries
        self.backoff = backoff
        self.token_env = token_env
        self.cancel = cancel if cancel is not None else threading.Event()
        #: The workflow being watched, named by the errors a cancellation raises.
        self.active: str | None = None
        self._secret = token.strip() if token else None
        self._session = _Session((min(10.0, request_timeout), request_timeout))
        from hera.workflows import WorkflowsService

        self.service = WorkflowsService(
            host=self.server,
            verify_ssl=verify_ssl,
            token=self._secret,
            namespace=namespace,
            session=self._session,
        )

    @property
    def verify_ssl(self) -> bool:
        return bool(self.service.verify_ssl)

    def close(self) -> None:
        self._session.close()

    def scrub(self, text: str) -> str:
        """``text`` with the token replaced by ``***``."""
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, returning early (with :class:`WatchCancelledError`) on cancel."""
        if self.cancel.wait(max(0.0, seconds)):
            raise WatchCancelledError(self.active, self.namespace)

    def call(self, action: str, fn: Callable[[], T], *, recover: Callable[[], T | None] | None = None) -> T:
        """``fn()`` with the retry policy; ``recover()`` runs before each retry and may return
        the result instead (for creates whose first attempt may have taken effect)."""
        attempt = 0
        while True:
            if self.cancel.is_set():
                raise WatchCancelledError(self.active, self.namespace)
            try:
                return fn()
            except HeraException as err:
                status = self._session.last_status or getattr(err, "status_code", None)
                detail = self.scrub(str(err))
                if status in (401, 403):
                    raise ArgoAuthError(status, action, self.namespace, self.token_env) from None
                if status == 409:
                    raise ArgoConflictError(action, status, detail) from None
                if status is None or status < 500 or status == 501:
                    raise ArgoRequestError(action, status, detail) from None
                reason = f"HTTP {status}"
                if attempt >= self.retries:
                    raise ArgoUnavailableError(
                        f"cannot {action}: the Argo server kept failing ({detail}) after {attempt + 1} attempt(s)"
                    ) from None
            except requests.exceptions.SSLError as err:
                raise ArgoUnavailableError(
                    f"cannot {action}: TLS verification of {self.server} failed ({self.scrub(str(err))}); "
                    "point REQUESTS_CA_BUNDLE at the server's CA, or pass --insecure-skip-verify"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as err:
                reason = type(err).__name__
                if attempt >= self.retries:
                    raise ArgoUnavailableError(
                        f"cannot {action}: cannot reach the Argo server at {self.server} "
                        f"({self.scrub(str(err))}) after {attempt + 1} attempt(s)"
                    ) from None
            except (requests.RequestException, ValueError) as err:  # incl. pydantic's ValidationError
                raise ArgoRequestError(
                    action,
                    self._session.last_status,
                    f"unexpected response from {self.server} (is it the Argo server's URL?): "
                    f"{self.scrub(str(err))[:300]}",
                ) from None
            delay = min(self.backoff * 2**attempt, _MAX_BACKOFF)
            attempt += 1
            log.warning("%s: %s; retry %d/%d in %.2fs", action, reason, attempt, self.retries, delay)
            self.wait(delay)
            if recover is not None:
                found = recover()
                if found is not None:
                    return found
