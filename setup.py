"""Package discovery, the one thing ``pyproject.toml`` cannot say here.

The design card keeps the control plane in ``workflows/`` and the data plane in ``steps/`` at the top
of the repository; they install as ``edgefed.workflows`` and ``edgefed.steps``. Setuptools' declarative
``packages.find`` cannot add that ``edgefed.`` prefix, so the packages are found here with
:func:`setuptools.find_packages` (every directory with an ``__init__.py``, nothing listed by hand) and
prefixed. Everything else is in ``pyproject.toml``. ``tests/packaging/test_wheel.py`` builds the wheel
and checks that every package directory is in it.
"""

from setuptools import find_packages, setup

PLANES = ("workflows", "steps")
#: Data-only package: the contracts, shipped as ``edgefed.data_contracts`` (package-data in pyproject).
DATA = "data_contracts"
#: Installed package -> source directory, for the top of each tree (subpackages follow their parent).
PACKAGE_DIR = {f"edgefed.{d}": d for d in (*PLANES, DATA)}
PACKAGES = [f"edgefed.{p}" for p in find_packages(include=[f"{d}*" for d in PLANES])] + [f"edgefed.{DATA}"]

if __name__ == "__main__":  # setuptools runs this file as __main__; tests import the constants
    setup(packages=PACKAGES, package_dir=PACKAGE_DIR)
