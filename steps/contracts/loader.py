"""Where contracts are found, and a contract file or document turned into a :class:`Contract`.

``load_contract("heart")`` searches the directories of ``$EDGEFED_CONTRACTS`` (colon-separated), then
the project's ``data_contracts/`` (installed as the package ``edgefed.data_contracts``, in the wheel
and the step image). A path or the document itself works too.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from edgefed.steps.contracts.document import parse_document
from edgefed.steps.contracts.errors import ContractError
from edgefed.steps.contracts.expansion import Contract, expand
from edgefed.steps.documents import load_yaml

__all__ = ["CONTRACTS_ENV", "DEFAULT_CONTRACTS_DIR", "contract_path", "load_contract", "parse_contract"]

#: Colon-separated directories searched (first) for ``<name>.yaml`` when a contract is named.
CONTRACTS_ENV = "EDGEFED_CONTRACTS"


def _default_contracts_dir() -> Path:
    """``data_contracts/``: installed as the package ``edgefed.data_contracts`` (wheel and editable)."""
    try:
        spec = importlib.util.find_spec("edgefed.data_contracts")
    except ImportError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "data_contracts"  # a source checkout


#: The project's ``data_contracts/``.
DEFAULT_CONTRACTS_DIR = _default_contracts_dir()


def contract_path(name: str) -> Path:
    """Where contract ``name`` lives: ``$EDGEFED_CONTRACTS`` directories first, then ``data_contracts/``."""
    dirs = [Path(d) for d in os.environ.get(CONTRACTS_ENV, "").split(os.pathsep) if d]
    dirs.append(DEFAULT_CONTRACTS_DIR)
    for directory in dirs:
        for suffix in (".yaml", ".yml"):
            candidate = directory / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    searched = ", ".join(str(d) for d in dirs)
    raise ContractError(f"contract {name!r}: no {name}.yaml in {searched} (set ${CONTRACTS_ENV} to add one)")


def load_contract(name_or_path: str | os.PathLike[str] | Mapping[str, Any]) -> Contract:
    """Load a contract by name (``heart``), by path (``data_contracts/heart.yaml``) or from its document.

    Raises :class:`ContractError` naming the file and field of every problem.
    """
    if isinstance(name_or_path, Mapping):
        return parse_contract(name_or_path, source="<inline contract>")
    text = os.fspath(name_or_path)
    looks_like_path = os.sep in text or text.endswith((".yaml", ".yml")) or Path(text).is_file()
    path = Path(text) if looks_like_path else contract_path(text)
    try:
        raw = path.read_text()
    except OSError as err:
        raise ContractError(f"{path}: cannot be read: {err.strerror}") from None
    return _parse_text(raw, str(path))


@functools.lru_cache(maxsize=64)
def _parse_text(raw: str, source: str) -> Contract:
    """A contract file's text, parsed and expanded. Cached by its text: a warm worker checks the same
    contract for every edge of every round, and parsing plus expanding it costs more than reading it.
    (A Contract is not changed by its users.)"""
    try:
        document = load_yaml(raw)
    except yaml.YAMLError as err:
        raise ContractError(f"{source}: not valid YAML: {err}") from None
    return parse_contract(document, source=source)


def parse_contract(document: Any, *, source: str = "<contract>") -> Contract:
    """Validate a contract document and expand it into GE expectation specs."""
    return expand(parse_document(document, source=source), source=source)
