"""Copying a process's output streams into the node log, line by line, with secret redaction."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import BinaryIO

__all__ = ["REDACTED", "pump_lines", "redact_bytes"]

REDACTED = b"[redacted]"


def redact_bytes(data: bytes, redact: Sequence[bytes]) -> bytes:
    """Replace every occurrence of a secret value with :data:`REDACTED`."""
    for secret in redact:
        if secret and secret in data:
            data = data.replace(secret, REDACTED)
    return data


def pump_lines(
    src: BinaryIO,
    sinks: Sequence[BinaryIO],
    lock: threading.Lock,
    redact: Sequence[bytes] = (),
) -> None:
    """Read ``src`` until EOF, writing each (redacted) line to every sink and flushing it."""
    try:
        for line in iter(src.readline, b""):
            line = redact_bytes(line, redact)
            with lock:
                for sink in sinks:
                    sink.write(line)
                    sink.flush()
    except (OSError, ValueError):
        pass  # the stream was closed under us (process killed): nothing more to copy
