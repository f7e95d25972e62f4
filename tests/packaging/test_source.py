"""The source tree keeps its shape: modules small enough to read, or saying why they are not."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, package_dirs

#: A module longer than this must say why at its top.
MAX_LINES = 600
#: The phrase that starts the reason, in the module docstring.
REASON = "Why this module is long:"


def test_long_modules_say_why() -> None:
    long = []
    for directory in package_dirs().values():
        for module in (REPO / directory).rglob("*.py"):
            text = module.read_text()
            if text.count("\n") <= MAX_LINES:
                continue
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if REASON not in docstring:
                long.append(f"{module.relative_to(REPO)} ({text.count(chr(10))} lines)")
    assert not long, f"modules over {MAX_LINES} lines whose docstring gives no '{REASON}': {long}"


def test_the_import_rules_of_the_architecture_hold() -> None:
    """pyproject.toml's [tool.importlinter] contracts: steps never import workflows, workflows never
    import TensorFlow, the engine imports nothing of edgefed but the phases, embedded and cluster
    paths are independent (import-linter follows indirect imports too)."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--config", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
