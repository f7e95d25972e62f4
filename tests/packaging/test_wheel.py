"""The built wheel holds every package of the source tree: a new subpackage cannot be left out.

The editable install finds any directory under workflows/ and steps/, so a package missing from the
wheel (and so from the step image) would pass every other test. Here the wheel is built for real,
offline, from a copy of what the image build copies (setup.py discovers packages with
``find_packages``), and compared with the directories on disk.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO, package_dirs

pytestmark = pytest.mark.timeout(300)

#: What the image build copies into its context (images/Dockerfile) and the wheel is built from.
SOURCES = ("pyproject.toml", "setup.py", "README.md")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        shutil.copy(REPO / name, src / name)
    for directory in package_dirs().values():
        shutil.copytree(REPO / directory, src / directory, ignore=shutil.ignore_patterns("__pycache__"))
    dist = src / "dist"
    build = "from setuptools import build_meta; print(build_meta.build_wheel('dist'))"
    dist.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", build], cwd=src, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return zipfile.ZipFile(dist / done.stdout.strip().splitlines()[-1])


def _source_packages() -> dict[str, Path]:
    """``edgefed.x.y`` -> directory, for every directory with an ``__init__.py`` under the package dirs."""
    found = {}
    for package, directory in package_dirs().items():
        for init in (REPO / directory).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(REPO / directory)
            found[".".join((package, *rel.parts))] = init.parent
    return found


def test_every_package_directory_ships_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    packages = _source_packages()
    assert {"edgefed.workflows.embedded.engine", "edgefed.steps.strategies"} <= set(packages)
    missing = [p for p in packages if f"{p.replace('.', '/')}/__init__.py" not in names]
    assert not missing, f"packages left out of the wheel: {missing}"
    for package, directory in packages.items():
        for module in directory.glob("*.py"):
            assert f"{package.replace('.', '/')}/{module.name}" in names, module


def test_the_contracts_and_entry_points_ship(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for contract in (REPO / "data_contracts").glob("*.yaml"):
        assert f"edgefed/data_contracts/{contract.name}" in names, contract.name
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = wheel.read(entry_points).decode()
    assert "edgefed = edgefed.workflows.cli:main" in text
    assert "edgefed-step = edgefed.steps.cli:main" in text


def test_nothing_of_the_tests_ships(wheel: zipfile.ZipFile) -> None:
    assert not [n for n in wheel.namelist() if n.startswith("tests/") or "/tests/" in n]


def test_every_directory_of_python_modules_is_a_package() -> None:
    """A directory of modules without ``__init__.py`` imports in the editable install (as a namespace
    package) but ``find_packages`` skips it: it would be missing from the wheel."""
    for directory in package_dirs().values():
        for module in (REPO / directory).rglob("*.py"):
            if "__pycache__" not in module.parts:
                assert (module.parent / "__init__.py").is_file(), (
                    f"{module.parent.relative_to(REPO)}: no __init__.py"
                )
