"""The runtime dependency set (what the step image installs: `uv sync --no-dev`) carries no test-only package."""

from __future__ import annotations

import ast
import tomllib

from tests.helpers import REPO

#: Packages only the tests use: the image must not carry them.
TEST_ONLY = {"tensorflow-federated": "tensorflow_federated"}


def _runtime_requirements() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = set()
    for requirement in project["dependencies"]:
        name = requirement.split(";")[0].strip()
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        names.add(name.lower())
    return names


def _imported_modules() -> set[str]:
    found = set()
    for package in ("steps", "workflows"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found


def test_test_only_packages_are_dev_dependencies_and_no_runtime_code_imports_them():
    runtime = _runtime_requirements()
    lock = (REPO / "uv.lock").read_text()
    imported = _imported_modules()
    for package, module in TEST_ONLY.items():
        assert package not in runtime, f"{package} is a runtime dependency: the step image would carry it"
        assert module not in imported, f"runtime code imports {module}: it must stay a test-only oracle"
        assert f'name = "{package}"' in lock  # still locked, for the tests (the dev group)
