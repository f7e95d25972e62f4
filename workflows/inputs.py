"""Reading the files a user gives the CLI, bounded and with a clear message for every way one can be wrong
(missing, a directory, too large, not UTF-8, empty, not YAML) before anything starts.

Light on purpose: ``edgefed run`` checks its file with it before it starts the fork server (whose
imports take seconds and must not begin for a file that is refused)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edgefed.steps.documents import load_yaml
from edgefed.workflows.errors import SpecError

__all__ = ["MAX_TASK_FILE_BYTES", "check_task_file", "read_task_document"]


#: The largest task file read. A 1,000-edge task is ~0.3 MB, a 10,000-edge one ~3 MB: anything near this is
#: not a task, and is refused before a byte is read (a 50 MB file took 15 s and 200 MB to refuse).
MAX_TASK_FILE_BYTES = 16 * 1024 * 1024


def check_task_file(path: str | Path) -> Path:
    """``path`` if it can be a task file: it exists, is a regular file and is not too large; otherwise
    :class:`SpecError` saying which (from the file's metadata alone, nothing read)."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise SpecError(str(path), ["(file): no such file"]) from None
    except OSError as err:
        raise SpecError(str(path), [f"(file): cannot be read: {err.strerror}"]) from None
    if path.is_dir():
        raise SpecError(str(path), ["(file): is a directory, expected a YAML file"])
    if stat.st_size > MAX_TASK_FILE_BYTES:
        raise SpecError(
            str(path),
            [
                f"(file): {stat.st_size / 2**20:.1f} MiB, more than a task file may be ({MAX_TASK_FILE_BYTES // 2**20} MiB)"
            ],
        )
    return path


def read_task_document(path: str | Path) -> Any:
    """The YAML document in a task file (:func:`check_task_file` first); :class:`SpecError` when the file
    cannot be read, is not UTF-8 text, is empty or is not YAML."""
    path = check_task_file(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_TASK_FILE_BYTES + 1)  # bounded even if the file grew since its stat
    except OSError as err:
        raise SpecError(str(path), [f"(file): cannot be read: {err.strerror}"]) from None
    if len(raw) > MAX_TASK_FILE_BYTES:
        raise SpecError(
            str(path), [f"(file): more than a task file may be ({MAX_TASK_FILE_BYTES // 2**20} MiB)"]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(
            str(path), [f"(file): not UTF-8 text (byte {err.start}: {raw[err.start]:#04x})"]
        ) from None
    if not text.strip():
        raise SpecError(str(path), ["(file): empty, expected a FederatedTask document"])
    try:
        return load_yaml(text)
    except yaml.YAMLError as err:
        raise SpecError(str(path), [f"(file): not valid YAML: {err}"]) from None
