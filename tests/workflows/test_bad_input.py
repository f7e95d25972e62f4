"""Bad task files given to the CLI: each gets a message naming the file and what is wrong, exit 2, never a
traceback, and nothing is created (no store started, no run directory, no manifests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import edgefed


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, what the message must say)"""
    tmp.mkdir()
    not_yaml = tmp / "not-yaml.yaml"
    not_yaml.write_text("metadata: {name: [unclosed\n")
    empty = tmp / "empty.yaml"
    empty.write_text("\n  \n")
    huge = tmp / "huge.yaml"
    with huge.open("wb") as fh:  # 50 MB of YAML-looking text: refused from its size, never read
        line = b"# " + b"x" * 1021 + b"\n"
        for _ in range(50 * 1024):
            fh.write(line)
    binary = tmp / "binary.yaml"
    binary.write_bytes(b"apiVersion: edgefed.io/v1alpha1\nkind: \xff\xfe\x00garbage\n")
    directory = tmp / "a-directory"
    directory.mkdir()
    return {
        "not YAML": (not_yaml, "not valid YAML"),
        "empty": (empty, "empty"),
        "50 MB": (huge, "more than a task file may be"),
        "missing": (tmp / "no-such-task.yaml", "no such file"),
        "directory": (directory, "is a directory"),
        "not UTF-8": (binary, "not UTF-8 text"),
    }


@pytest.mark.parametrize("command", ["run", "generate"])
def test_bad_task_files_exit_2_with_a_clear_message(tmp_path: Path, command: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "out"
    files = _bad_files(tmp_path / "files")
    if command == "generate":  # the same reader as run's: two kinds suffice to show generate uses it
        files = {k: files[k] for k in ("50 MB", "not UTF-8")}
    for name, (path, says) in files.items():
        args = [command, str(path)] + (["-o", str(out)] if command == "generate" else [])
        done = edgefed(*args, home=home, timeout=120)
        assert done.returncode == 2, (name, done.stdout, done.stderr)
        assert "Traceback" not in done.stdout + done.stderr, name
        assert str(path) in done.stderr and says in done.stderr, (name, done.stderr)
    assert list(home.iterdir()) == []  # no store, no run directory
    assert not out.exists()
